// Acting as another user for a few synchronous system calls, as Postfix's
// set_eugid() does: supplementary groups cut to the user's primary group, then
// egid, then euid; put back in reverse order in a finally block. Only
// synchronous calls may run inside: an await would let other work run as the
// user. Linux applies seteuid to every thread of the process (glibc's setxid
// broadcast), so fs work that libuv's thread pool is doing at that instant runs
// as the user too; keep the switched window to a few metadata calls.

import assert from 'node:assert/strict';
import type { User } from '../config/users.ts';
import { isRoot } from './spool.ts';

/** Runs a synchronous function with some set of credentials. */
export type Runner = <T>(fn: () => T) => T;

export const asSelf: Runner = (fn) => fn();

/** A Runner that acts as `user` when we are root, and as ourselves otherwise. */
export function asUser(user: User): Runner {
  if (!isRoot()) return asSelf;
  return <T>(fn: () => T): T => {
    const groups = process.getgroups!();
    const egid = process.getegid!();
    process.setgroups!([user.gid]);
    process.setegid!(user.gid);
    process.seteuid!(user.uid);
    try {
      return fn();
    } finally {
      process.seteuid!(0);
      process.setegid!(egid);
      process.setgroups!(groups);
      // Going on with the wrong identity would be worse than stopping.
      assert.equal(process.geteuid!(), 0, 'could not switch back to root after acting as a user');
    }
  };
}
