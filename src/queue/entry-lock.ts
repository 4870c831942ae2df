// Entry locks: which runner is delivering a queue entry (the "active" state).
// A runner process makes one token file, rt<pid>.<time>, and locks an entry
// by hard-linking its token to qf<ID>.lock. link(2) is atomic and, unlike
// the mkdir of a lock directory, allocates no inode: on ext4 without a
// journal, allocating an inode scans the recently deleted ones and is the
// most expensive thing a busy queue does. The runner touches its token every
// few seconds; every link shares the token's mtime, so a lock older than
// queue_lock_stale belongs to a runner that died and is taken over, and
// mailq reads the same mtime (isLocked in scan.ts).

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import type { QueueId } from './id.ts';
import { queuePath } from './files.ts';
import { PREFIX } from './state.ts';

const TOKEN = /^rt\d+\.\d+$/;

export interface EntryLock {
  /** False once another runner took the lock over (ours went stale). */
  held(): boolean;
  release(): void;
}

class RunToken {
  readonly path: string;
  readonly ino: number;
  private timer: NodeJS.Timeout;

  constructor(private config: Config) {
    sweepStaleTokens(config);
    this.path = path.join(config.queueDir, `rt${process.pid}.${Date.now()}`);
    fs.writeFileSync(this.path, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
    this.ino = fs.statSync(this.path).ino;
    const every = Math.max(1000, Math.floor(config.queueLockStaleMs / 3));
    this.timer = setInterval(() => {
      const now = new Date();
      try {
        fs.utimesSync(this.path, now, now);
      } catch {
        // Removed under us: held() says so to every entry it locked.
      }
    }, every);
    this.timer.unref();
  }

  lock(id: QueueId): EntryLock | undefined {
    const file = queuePath(this.config, PREFIX.control, id) + '.lock';
    for (let tries = 0; tries < 3; tries++) {
      try {
        fs.linkSync(this.path, file);
        return { held: () => this.holds(file), release: () => this.holds(file) && fs.rmSync(file, { force: true }) };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      let st: fs.Stats;
      try {
        st = fs.lstatSync(file);
      } catch {
        continue; // released meanwhile
      }
      if (Date.now() - st.mtimeMs < this.config.queueLockStaleMs) return undefined;
      // Its runner stopped touching it: dead. (A directory is an older mailtk's lock.)
      fs.rmSync(file, { force: true, recursive: st.isDirectory() });
    }
    return undefined;
  }

  private holds(file: string): boolean {
    try {
      return fs.lstatSync(file).ino === this.ino;
    } catch {
      return false;
    }
  }

  close(): void {
    clearInterval(this.timer);
    fs.rmSync(this.path, { force: true });
  }
}

/** Tokens of runners that died: their locks are stale already; the files go. */
function sweepStaleTokens(config: Config): void {
  let names: string[];
  try {
    names = fs.readdirSync(config.queueDir).filter((n) => TOKEN.test(n));
  } catch {
    return;
  }
  for (const n of names) {
    const file = path.join(config.queueDir, n);
    try {
      if (Date.now() - fs.statSync(file).mtimeMs > config.queueLockStaleMs) fs.rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }
}

const tokens = new Map<string, RunToken>();

/** Lock one entry for this process; undefined when another live runner holds it. */
export function lockEntry(config: Config, id: QueueId): EntryLock | undefined {
  let t = tokens.get(config.queueDir);
  if (!t) {
    t = new RunToken(config);
    tokens.set(config.queueDir, t);
    if (tokens.size === 1) process.once('exit', closeTokens);
  }
  return t.lock(id);
}

/** Remove this process's tokens (at exit; their locks were released entry by entry). */
export function closeTokens(): void {
  for (const t of tokens.values()) t.close();
  tokens.clear();
}
