// A child process that could not be started. Node's spawn() does not throw
// when the system is out of descriptors or processes (EMFILE, ENFILE,
// EAGAIN): it returns a ChildProcess with no pid, no stdio and no IPC channel
// (no send() at all), which emits 'error' on the next tick and never 'exit'.
// Treated as a started child it kills the caller (reading child.stdio[4]
// killed the root master under a connection flood) or leaves it waiting
// forever for an 'exit'. Every spawn of the daemon's goes through here.

import type { ChildProcess } from 'node:child_process';

/**
 * True when `child` was not started; `onFail` then gets the reason (once,
 * on the next tick), and the caller must neither send to it nor wait for
 * its exit.
 */
export function notStarted(child: ChildProcess, onFail: (e: Error) => void): boolean {
  if (child.pid !== undefined) return false;
  child.once('error', onFail);
  return true;
}
