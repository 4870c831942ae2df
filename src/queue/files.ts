// The queue's file primitives: where an entry's files are, how a directory
// is made durable, and the daemon's pid lock.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { processAlive } from '../config/process.ts';
import type { QueueId } from './id.ts';

export function queuePath(config: Config, prefix: string, id: QueueId): string {
  return path.join(config.queueDir, prefix + id);
}

export function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

type LockOptions = { stale: number; update: number; onCompromised?: (e: Error) => void };

const OWNERLESS_POLL_MS = 500;

/**
 * proper-lockfile's lock on `target`, with the holder's pid written to
 * `ownerFile`. A lock whose holder is gone (SIGKILL, a crash) is taken over
 * at once instead of after it goes stale, so that a daemon restarted by
 * systemd a moment after a crash starts. Undefined while a live process holds it.
 */
export async function lockOwned(target: string, ownerFile: string, opts: LockOptions): Promise<(() => Promise<void>) | undefined> {
  const { default: lockfile } = await import('proper-lockfile');
  for (let attempt = 0; ; attempt++) {
    try {
      const unlock = await lockfile.lock(target, { realpath: false, retries: 0, ...opts });
      fs.writeFileSync(ownerFile, `${process.pid}\n`);
      return unlock;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      let pid = 0;
      try {
        pid = Number(fs.readFileSync(ownerFile, 'utf8').trim());
      } catch {
        // no owner written yet: the holder is between lock and write
      }
      if (!Number.isInteger(pid) || pid <= 0) {
        // No holder named (its owner file was removed, or is not written yet): a live holder
        // refreshes the lock, a dead one's goes stale; wait for one or the other.
        if (attempt * OWNERLESS_POLL_MS >= (opts.stale ?? 10_000) + OWNERLESS_POLL_MS) return undefined;
        await new Promise((r) => setTimeout(r, OWNERLESS_POLL_MS));
        continue;
      }
      if (attempt > 0 || pid === process.pid || processAlive(pid)) return undefined;
      fs.rmSync(`${target}.lock`, { recursive: true, force: true });
    }
  }
}
