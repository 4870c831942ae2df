// Delivery into mbox files. appendToMbox() writes a batch of messages to one
// user's spool mbox under one dotlock and one fdatasync: the batch lands whole
// or, after any error, the file is cut back to its old size, byte-identical.
// appendToFile() does the same for an alias's /file target, opening (and
// locking) as the alias's user, as Postfix local(8) does with set_eugid().
// Mail to /dev/null is discarded unopened, as sendmail's mailfile() and
// mail.local do, which lets file delivery refuse every non-regular file.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import { MailError, type Failure } from '../message/status.ts';
import { asUser } from './creds.ts';
import { acquireDotlock, acquireDotlockVia } from './dotlock.ts';
import { byteLength, formatMessage, type MboxMessage, type PlacedMessage } from './format.ts';
import { appendAllOrNothing, failureFor, syncDir } from './io.ts';
import { openMailbox, type OpenMailbox, type OpenPolicy } from './safe-open.ts';
import { ensureSpoolDir, isRoot, mailGroupGid, mboxPath } from './spool.ts';

const DEV_NULL = '/dev/null';

export interface AppendHooks {
  /**
   * Called under the lock, just before the write, with each message's place.
   * The queue runner records these so that a runner killed after the write and
   * before crossing off can tell the mail arrived, instead of delivering twice.
   * A message whose earlier placement is still there keeps it (and is not
   * written again): its place is the one it was given.
   */
  beforeWrite?(placed: PlacedMessage[]): void | Promise<void>;
}

/** Deliver `messages` to `user`'s spool mbox: all of them, or none. */
export async function appendToMbox(config: Config, user: User, messages: MboxMessage[], hooks: AppendHooks = {}): Promise<void> {
  if (messages.length === 0) return;
  const file = mboxPath(config, user.name);
  ensureSpoolDir(config);
  const now = new Date();
  const lock = await acquireDotlock(file);
  try {
    // Checked here, as the mailbox's user and under its lock: a runner cannot read the mailbox.
    const there = messages.map((m) => m.placed !== undefined && m.placed.path === file && isStillThere(m.placed));
    const perMessage = messages.map((m, i) => (there[i] ? [] : formatMessage(m, now)));
    const pieces = perMessage.flat();
    const box = open(file, () => openMailbox(file, spoolPolicy(user)), 'mailbox-io');
    if (hooks.beforeWrite) {
      let offset = box.size;
      const placed = perMessage.map((p, i) => {
        if (there[i]) return messages[i].placed!;
        const at = { path: file, offset, length: byteLength(p), digest: digestOf(p) };
        offset += at.length;
        return at;
      });
      try {
        await hooks.beforeWrite(placed);
      } catch (e) {
        fs.closeSync(box.fd);
        throw e;
      }
    }
    await writeAndClose(file, box, pieces, 'mailbox-io');
  } finally {
    lock.release();
  }
}

/** Deliver one message to an alias's /file target, as `runAs`. */
export async function appendToFile(file: string, runAs: User, message: MboxMessage): Promise<void> {
  if (!path.isAbsolute(file) || file.includes('\0')) {
    throw new MailError('file-denied', `not an absolute path: "${file}"`);
  }
  if (path.normalize(file) === DEV_NULL) return;
  // Postfix panics here; the router maps root-owned aliases to default_privs first.
  if (isRoot() && runAs.uid === 0) {
    throw new MailError('file-denied', 'refusing to write a file as root (deliver as default_privs)', { file });
  }
  const run = asUser(runAs);
  const pieces = formatMessage(message, new Date());
  const lock = await acquireDotlockVia(file, {}, { run, mayFail: true });
  try {
    const box = open(file, () => run(() => openMailbox(file, FILE_POLICY)), 'file-denied');
    await writeAndClose(file, box, pieces, 'file-denied');
  } finally {
    lock.release(); // the lock removes itself as runAs
  }
}

const FILE_POLICY: OpenPolicy = { refuseExecutable: true, unsafe: 'file-denied' };

/** As root the mailbox must belong to its user, and a new one is made USER:mail 0600. */
function spoolPolicy(user: User): OpenPolicy {
  if (!isRoot()) return { refuseExecutable: false, unsafe: 'mailbox-unsafe' };
  return {
    ownerUid: user.uid,
    chownTo: { uid: user.uid, gid: mailGroupGid() ?? user.gid },
    refuseExecutable: false,
    unsafe: 'mailbox-unsafe',
  };
}

/** Run an opener, turning system errors into MailErrors that name the file. */
function open(file: string, opener: () => OpenMailbox, denied: Failure): OpenMailbox {
  try {
    return opener();
  } catch (e) {
    if (e instanceof MailError) throw e;
    throw new MailError(failureFor(e, denied), `cannot open mailbox: ${(e as Error).message}`, { file, cause: e });
  }
}

async function writeAndClose(file: string, box: OpenMailbox, pieces: Buffer[], denied: Failure): Promise<void> {
  try {
    // A new name in the directory must survive a crash as well as the bytes.
    if (box.created) syncDir(path.dirname(file));
    await appendAllOrNothing(box.fd, pieces, box.size);
  } catch (e) {
    throw new MailError(failureFor(e, denied), `cannot append to mailbox: ${(e as Error).message}`, {
      file,
      cause: e,
    });
  } finally {
    fs.closeSync(box.fd);
  }
}

function digestOf(pieces: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of pieces) h.update(p);
  return h.digest('base64url');
}

/** True when `placed` names bytes that are in the file now, unchanged. */
export function isStillThere(placed: PlacedMessage): boolean {
  let fd: number;
  try {
    fd = fs.openSync(placed.path, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    if (fs.fstatSync(fd).size < placed.offset + placed.length) return false;
    const buf = Buffer.alloc(placed.length);
    fs.readSync(fd, buf, 0, placed.length, placed.offset);
    return digestOf([buf]) === placed.digest;
  } finally {
    fs.closeSync(fd);
  }
}
