// The POP3 session lock (RFC 1939 8: "the maildrop is locked for the
// session"): one POP3 session per maildrop, so that two clients cannot both
// download and delete. It is not the mbox dotlock, which would stop delivery
// for the whole session; delivery, IMAP and mail(1) go on meanwhile. Within
// the daemon a set of paths; across processes a file pop3.lock holding the
// pid in the mailbox's index directory, broken when that pid is gone.

import fs from 'node:fs';
import path from 'node:path';
import { ensureIndexDir } from '../mailbox/index.ts';
import { processAlive } from '../config/process.ts';

export interface MaildropLock {
  release(): void;
}

const held = new Set<string>();

/** The lock, or undefined when another session holds it. */
export function lockMaildrop(mbox: string, indexDir: string | undefined, owner?: { uid: number; gid: number }, anchor?: string): MaildropLock | undefined {
  const key = path.resolve(mbox);
  if (held.has(key)) return undefined;
  const file = indexDir ? path.join(indexDir, 'pop3.lock') : undefined;
  if (file) {
    try {
      ensureIndexDir(indexDir!, owner, anchor);
      if (!createLockFile(file)) return undefined;
    } catch {
      // No index directory we can write: the in-process lock alone.
    }
  }
  held.add(key);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      held.delete(key);
      if (file) fs.rmSync(file, { force: true });
    },
  };
}

/** O_EXCL create; a lock whose pid is dead (or is ours, left by a crash of an earlier daemon) is taken over. */
function createLockFile(file: string): boolean {
  for (let round = 0; round < 2; round++) {
    try {
      const fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
      fs.writeSync(fd, `${process.pid}\n`);
      fs.closeSync(fd);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) return false;
    fs.rmSync(file, { force: true });
  }
  return false;
}
