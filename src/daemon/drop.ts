// Giving up root for good, the first thing a user agent does (before it
// loads anything else or reads a byte of anyone's): the user's groups plus
// the extra group the spool needs (mail, as for mail.local), then the gid,
// then the uid; checked afterwards, because a process that could get root
// back must not go on. Kept apart so that the agent's entry loads nothing more.

export function dropPrivileges(name: string, uid: number, gid: number, extraGid: number): void {
  if (!(uid > 0) || !(gid >= 0)) throw new Error(`refusing to run a user agent as uid ${uid}`);
  try {
    (process as unknown as { initgroups(user: string, extra: number): void }).initgroups(name, extraGid);
  } catch {
    // A user_db account unknown to the system: its own group and the extra one.
    process.setgroups!([gid, extraGid]);
  }
  process.setgid!(gid);
  process.setuid!(uid);
  let back = false;
  try {
    process.setuid!(0);
    back = true;
  } catch {
    // Expected: root is gone.
  }
  if (back || process.getuid!() !== uid || process.geteuid!() !== uid || process.getegid!() !== gid) {
    process.stderr.write('mailtk: could not drop privileges\n');
    process.exit(71);
  }
}
