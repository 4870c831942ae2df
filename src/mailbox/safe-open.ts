// Opening a mailbox for append without being tricked, after Postfix's
// safe_open() and mail.local: an existing file must be a regular file with one
// link, not a symlink, owned by whom the policy says; it is opened with
// O_APPEND|O_NOFOLLOW|O_NONBLOCK (a FIFO swapped in cannot hang us) and the
// open file's dev/ino must match what lstat saw. A missing file is created
// with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600. Synchronous on purpose: the checks
// and the open sit as close together as possible, and /file delivery runs
// them under a switched euid, where nothing may await.

import fs from 'node:fs';
import { MailError } from '../message/status.ts';

const { O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
const MAILBOX_MODE = 0o600;
const ANY_EXEC = 0o111;

export interface OpenPolicy {
  /** An existing mailbox must be owned by this uid (set when we run as root). */
  ownerUid?: number;
  /** Give a new mailbox this owner (root only); otherwise it belongs to whoever creates it. */
  chownTo?: { uid: number; gid: number };
  /** Refuse regular files with an execute bit, as Postfix does for /file targets. */
  refuseExecutable: boolean;
  /** What an unsafe file is reported as. */
  unsafe: 'mailbox-unsafe' | 'file-denied';
}

export interface OpenMailbox {
  fd: number;
  /** Size when opened; a failed append is cut back to it. */
  size: number;
  created: boolean;
}

/** Open or create `file` for append. Throws MailError for unsafe files, system errors as they come. */
export function openMailbox(file: string, policy: OpenPolicy): OpenMailbox {
  // Two rounds: someone may create or remove the file between our lstat and open.
  for (let round = 0; round < 2; round++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const made = createExclusive(file, policy);
      if (made) return made;
      continue;
    }
    checkExisting(file, st, policy);
    return openExisting(file, st, policy);
  }
  throw new MailError(policy.unsafe, 'mailbox appeared and vanished while being opened', { file });
}

function unsafe(policy: OpenPolicy, file: string, why: string): MailError {
  return new MailError(policy.unsafe, `refusing to deliver: ${why}`, { file });
}

/** The checks on a file's lstat (before open) or fstat (after). */
function checkExisting(file: string, st: fs.Stats, policy: OpenPolicy): void {
  if (st.isSymbolicLink()) throw unsafe(policy, file, 'mailbox is a symbolic link');
  if (!st.isFile()) throw unsafe(policy, file, 'mailbox is not a regular file');
  if (st.nlink !== 1) throw unsafe(policy, file, `mailbox has ${st.nlink} hard links`);
  if (policy.ownerUid !== undefined && st.uid !== policy.ownerUid) {
    throw unsafe(policy, file, `mailbox is owned by uid ${st.uid}, not ${policy.ownerUid}`);
  }
  if (policy.refuseExecutable && (st.mode & ANY_EXEC) !== 0) throw unsafe(policy, file, 'file is executable');
}

function openExisting(file: string, before: fs.Stats, policy: OpenPolicy): OpenMailbox {
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    // ELOOP: it became a symlink after our lstat.
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw unsafe(policy, file, 'mailbox is a symbolic link');
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.dev !== before.dev || st.ino !== before.ino) {
      throw unsafe(policy, file, 'mailbox was replaced while being opened');
    }
    checkExisting(file, st, policy);
    return { fd, size: st.size, created: false };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Create a new mailbox; undefined when someone else created it first. */
function createExclusive(file: string, policy: OpenPolicy): OpenMailbox | undefined {
  let fd: number;
  try {
    fd = fs.openSync(file, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, MAILBOX_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
  try {
    if (policy.chownTo) fs.fchownSync(fd, policy.chownTo.uid, policy.chownTo.gid);
    fs.fchmodSync(fd, MAILBOX_MODE); // the umask may have taken bits away; never add any beyond 0600
    return { fd, size: 0, created: true };
  } catch (e) {
    // An empty mailbox owned by the wrong user must not stay behind; we hold the lock.
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
    throw e;
  }
}
