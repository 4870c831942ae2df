// Whether a process lives, by pid: the one rule every lock with a pid in it
// uses (the queue's entry locks and pid lock, the POP3 lock, mbox dotlocks,
// the daemon's status).

import fs from 'node:fs';

/** True while a process with this pid exists (EPERM: it exists, as another user); a zombie holds nothing. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // A zombie (dead, its parent gone too, not yet reaped by init) holds nothing.
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true;
  }
}
