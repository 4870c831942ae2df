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
  /** A virtual user's quota (src/virtual), checked under the lock against the mailbox as it is. */
  quota?: MboxQuota;
}

export interface MboxUsage {
  bytes: number;
  /** Counted only when the quota limits messages. */
  messages: number;
}

export interface MboxQuota {
  /** 0 = no limit. */
  bytes: number;
  messages: number;
  /** Over the limit: 552 5.2.2 when true, else 452 4.2.2 (the message waits). */
  bounce: boolean;
  /** Told the usage before and after a write that happened (for quota_warn_percent). */
  used?(before: MboxUsage, after: MboxUsage): void;
}

/** Deliver `messages` to `user`'s spool mbox: all of them, or none. */
export async function appendToMbox(config: Config, user: User, messages: MboxMessage[], hooks: AppendHooks = {}): Promise<void> {
  if (messages.length === 0) return;
  const file = mboxPath(config, user.name);
  ensureSpoolDir(config);
  if (user.name.includes('@')) ensureDir(path.dirname(file));
  const now = new Date();
  const lock = await acquireDotlock(file);
  try {
    // Checked here, as the mailbox's user and under its lock: a runner cannot read the mailbox.
    const there = messages.map((m) => m.placed !== undefined && m.placed.path === file && isStillThere(m.placed));
    const perMessage = messages.map((m, i) => (there[i] ? [] : formatMessage(m, now)));
    const pieces = perMessage.flat();
    const box = open(file, () => openMailbox(file, spoolPolicy(user)), 'mailbox-io');
    const usage = hooks.quota ? checkQuota(file, box, hooks.quota, byteLength(pieces), perMessage.filter((p) => p.length).length) : undefined;
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
    if (usage) hooks.quota?.used?.(usage.before, usage.after);
  } finally {
    lock.release();
  }
}

/** The mailbox's usage before and after this write, or MailError 'mailbox-full' when the write would exceed the quota. */
function checkQuota(file: string, box: OpenMailbox, q: MboxQuota, adding: number, count: number): { before: MboxUsage; after: MboxUsage } {
  let messages = 0;
  try {
    if (q.messages > 0) messages = countOpened(file, box);
  } catch (e) {
    fs.closeSync(box.fd);
    throw e instanceof MailError ? e : new MailError('mailbox-io', `cannot count the messages: ${(e as Error).message}`, { file, cause: e });
  }
  const before = { bytes: box.size, messages };
  const after = { bytes: before.bytes + adding, messages: before.messages + count };
  const over = (q.bytes > 0 && after.bytes > q.bytes) || (q.messages > 0 && after.messages > q.messages);
  if (over) {
    fs.closeSync(box.fd);
    const limit = [q.bytes > 0 ? `${q.bytes} bytes` : '', q.messages > 0 ? `${q.messages} messages` : ''].filter(Boolean).join(', ');
    const detail = `Mailbox full: quota exceeded (${before.bytes} bytes, ${before.messages || 'uncounted'} messages in use; limit ${limit})`;
    throw new MailError('mailbox-full', detail, { file }, q.bounce ? { reply: 552, status: '5.2.2' } : undefined);
  }
  return { before, after };
}

/** The messages of the mailbox just opened for appending (write-only), read through a second descriptor of the same file. */
function countOpened(file: string, box: OpenMailbox): number {
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const a = fs.fstatSync(fd);
    const b = fs.fstatSync(box.fd);
    if (a.ino !== b.ino || a.dev !== b.dev) throw new MailError('mailbox-unsafe', 'the mailbox changed while it was being opened', { file });
    return countMessages(fd, box.size);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * An empty spool mailbox for a Unix user who has none, made as a delivery
 * makes it (by the user's delivery agent, which has the mail group; an
 * existing one is only checked): asked by the master before the user's first
 * IMAP or POP3 session, which runs without the mail group (daemon/master.ts).
 */
export function ensureInbox(config: Config, user: User): void {
  if (user.name.includes('@')) return; // a virtual user's session may create its own
  const file = mboxPath(config, user.name);
  ensureSpoolDir(config);
  const box = open(file, () => openMailbox(file, spoolPolicy(user)), 'mailbox-io');
  fs.closeSync(box.fd);
}

/** A mailbox's bytes and messages now (0 and 0 when there is none), for `mailtk quota show` and IMAP QUOTA. */
export function mailboxUsage(config: Config, name: string): MboxUsage {
  let fd: number;
  try {
    fd = fs.openSync(mboxPath(config, name), fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  } catch {
    return { bytes: 0, messages: 0 };
  }
  try {
    const size = fs.fstatSync(fd).size;
    return { bytes: size, messages: countMessages(fd, size) };
  } finally {
    fs.closeSync(fd);
  }
}

/** Messages in an mbox: lines starting "From " after an empty line (or at the start), read a megabyte at a time. */
function countMessages(fd: number, size: number): number {
  const CHUNK = 1 << 20;
  const buf = Buffer.alloc(CHUNK + 6);
  const needle = Buffer.from('\n\nFrom ');
  let n = 0;
  let carry = 0;
  for (let pos = 0; pos < size; ) {
    const got = fs.readSync(fd, buf, carry, Math.min(CHUNK, size - pos), pos);
    if (got <= 0) break;
    const end = carry + got;
    if (pos === 0 && buf.subarray(0, 5).toString('latin1') === 'From ') n++;
    for (let i = buf.indexOf(needle); i >= 0 && i + needle.length <= end; i = buf.indexOf(needle, i + 1)) n++;
    pos += got;
    // Keep the last bytes, so a separator across two reads is seen once.
    carry = Math.min(needle.length - 1, end);
    buf.copy(buf, 0, end - carry, end);
    buf.fill(0, carry);
  }
  return n;
}

/** A virtual domain's mailbox directory, made when missing (0700: only its owner reads the mailboxes). */
function ensureDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new MailError('mailbox-io', `cannot create mailbox directory: ${(e as Error).message}`, { file: dir, cause: e });
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
