// The daemon's pid file, guarded by proper-lockfile so that a second daemon
// on the same pid file is refused with a clear message, and a daemon killed
// with SIGKILL leaves a lock that the next daemon takes over (its pid is gone).

import fs from 'node:fs';
import path from 'node:path';
import { lockOwned } from '../queue/index.ts';
import { MailError } from '../message/status.ts';

export async function claimPidFile(file: string): Promise<() => Promise<void>> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const unlock = await lockOwned(file, file, { stale: 10_000, update: 3_000 });
  if (!unlock) {
    let pid = '?';
    try {
      pid = fs.readFileSync(file, 'utf8').trim();
    } catch {
      // unreadable: say "?"
    }
    throw new MailError('unavailable', `a mailtk daemon (pid ${pid}) already runs with pid file ${file}; stop it first (kill -TERM ${pid})`);
  }
  return async () => {
    fs.rmSync(file, { force: true });
    await unlock().catch(() => {});
  };
}
