// The daemon's pid file, guarded by proper-lockfile so that a second daemon
// on the same pid file is refused with a clear message, and a daemon killed
// with SIGKILL leaves a lock that goes stale instead of blocking forever.

import fs from 'node:fs';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { MailError } from '../message/status.ts';

export async function claimPidFile(file: string): Promise<() => Promise<void>> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  let unlock: () => Promise<void>;
  try {
    unlock = await lockfile.lock(file, { realpath: false, stale: 10_000, update: 3_000, retries: 0 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOCKED') {
      let pid = '?';
      try {
        pid = fs.readFileSync(file, 'utf8').trim();
      } catch {
        // unreadable: say "?"
      }
      throw new MailError('unavailable', `a mailtk daemon (pid ${pid}) already runs with pid file ${file}; stop it first (kill -TERM ${pid})`);
    }
    throw e;
  }
  fs.writeFileSync(file, `${process.pid}\n`);
  return async () => {
    fs.rmSync(file, { force: true });
    await unlock().catch(() => {});
  };
}
