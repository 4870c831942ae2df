// Putting a message into the queue: the one way in, for the sendmail
// command, SMTP, pickup and the DSNs a run makes. The entry's one file
// (entry-file.ts) is written as tf<ID> and fsync'd, then commit() renames
// it to qf<ID> and fsyncs the directory, shared by concurrent commits.
// A process that may not write the queue (an ordinary user's sendmail; Node
// cannot be setuid) writes one finished file into the world-writable sticky
// maildrop directory instead, as Postfix's postdrop did; pickup() checks it
// (it trusts nothing in it) and moves it in.

import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import type { Control, Envelope, Recipient } from './control.ts';
import { envelopeError, newControl, serializeControl } from './control.ts';
import { newQueueId, type QueueId } from './id.ts';
import { commit, discardEntry, writeEntry } from './transition.ts';
import { fsyncDir } from './files.ts';

export interface NewMessage {
  sender: string;
  submitter: string;
  recipients: Recipient[];
  data: Buffer;
  envid?: string;
  ret?: 'full' | 'hdrs';
  bodyType?: string;
  hops?: number;
  flags?: string;
  arrival?: number;
  /** An ID chosen beforehand (the Received header already names it). */
  id?: QueueId;
}

const QUEUE_MODE = 0o711; // traversable, not listable: users reach maildrop only
const MAILDROP_MODE = 0o1733; // sticky, writable, not listable

/** True when this process writes the queue itself; false means: use the maildrop. */
export function mayWriteQueue(config: Config): boolean {
  const euid = process.geteuid?.() ?? 0;
  if (euid === 0) return true;
  try {
    const st = fs.statSync(config.queueDir);
    return st.uid === euid;
  } catch {
    // No queue yet: we may create it when its nearest existing ancestor is ours to write.
    for (let dir = path.dirname(config.queueDir); ; dir = path.dirname(dir)) {
      try {
        fs.accessSync(dir, fs.constants.W_OK);
        return true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dir === path.dirname(dir)) return false;
      }
    }
  }
}

/** Create queue_dir and its maildrop with sendmail's and Postfix's modes. */
export function ensureQueueDirs(config: Config): void {
  try {
    if (!fs.existsSync(config.queueDir)) {
      fs.mkdirSync(config.queueDir, { recursive: true, mode: QUEUE_MODE });
      fs.chmodSync(config.queueDir, QUEUE_MODE);
    }
    if (!fs.existsSync(config.maildropDir)) {
      fs.mkdirSync(config.maildropDir, { mode: MAILDROP_MODE });
      fs.chmodSync(config.maildropDir, MAILDROP_MODE);
    }
  } catch (e) {
    throw new MailError('queue-write', `cannot create queue directory: ${(e as Error).message}`, {
      file: config.queueDir,
      cause: e,
    });
  }
}

function controlFor(m: NewMessage, id: QueueId): Control {
  return newControl({
    id,
    arrival: m.arrival ?? Date.now(),
    sender: m.sender,
    submitter: m.submitter,
    envid: m.envid,
    ret: m.ret,
    bodyType: m.bodyType,
    hops: m.hops ?? 0,
    flags: m.flags ?? '',
    size: m.data.length,
    recipients: m.recipients,
  });
}

/**
 * Write and commit one message; resolves once it is durable (the commit
 * point), and only then. A full disk or a short write at any step leaves
 * nothing behind and rejects with a temporary failure (452 4.3.1, exit 75).
 */
export async function enqueue(config: Config, m: NewMessage): Promise<QueueId> {
  if (m.recipients.length === 0) throw new MailError('no-recipients', 'No recipient addresses found');
  let id = m.id ?? newQueueId();
  try {
    for (let tries = 0; ; tries++) {
      try {
        await writeEntry(config, controlFor(m, id), m.data);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' && tries === 0) {
          ensureQueueDirs(config);
          continue;
        }
        if (code !== 'EEXIST' || tries > 100) throw e;
        id = newQueueId();
      }
    }
    await commit(config, id);
  } catch (e) {
    removeQuietly(config, id);
    if (e instanceof MailError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    const failure = code === 'ENOSPC' || code === 'EDQUOT' ? 'queue-full' : 'queue-write';
    throw new MailError(failure, `cannot write queue file: ${(e as Error).message}`, { file: config.queueDir, cause: e });
  }
  return id;
}

function removeQuietly(config: Config, id: QueueId): void {
  try {
    discardEntry(config, id);
  } catch {
    // The same failure that brought us here (no such directory, not a directory).
  }
}

// ---- the maildrop -------------------------------------------------------
// The file format, written here and read by pickup.ts: MAILDROP_MAGIC, the
// control records as serializeControl writes them for a new entry, an empty
// line, then the message. Written as .tmp.NAME, fsync'd, then linked to NAME,
// where NAME is the ID and 128 random bits. The file is mode 0644 whatever
// the umask, because the picker may be mail_owner rather than root; the
// folder cannot be listed, so only the writer and the picker know the name.

export const MAILDROP_MAGIC = 'MAILTK-MAILDROP 1\n';
const DROP_MODE = 0o644; // readable by a picker that is not root (see above)
/** The writer's temporary names; pickup leaves them alone while they are young. */
export const DROP_TEMP_PREFIX = '.tmp.';
/** More recipients than this (or max_recipients, when larger) is not one submission. */
export const DROP_MAX_RECIPIENTS = 10_000;
/** The control records of a drop file: at most this many bytes. */
export const DROP_MAX_CONTROL = 4 << 20;
/** What submission adds to a message of max_message_size (Received, From, Date, Message-ID). */
export const DROP_HEADER_ALLOWANCE = 64 << 10;

/**
 * Why a message cannot go through the maildrop, or undefined. The writer
 * refuses such a message, so that pickup, which quarantines it, never
 * sees one from an honest sendmail.
 */
export function dropError(config: Config, e: Envelope, dataBytes: number, controlBytes: number): string | undefined {
  if (controlBytes > DROP_MAX_CONTROL) return `envelope records of ${controlBytes} bytes (at most ${DROP_MAX_CONTROL})`;
  const max = config.maxMessageSize + DROP_HEADER_ALLOWANCE;
  if (dataBytes > max) return `message of ${dataBytes} bytes (at most ${max}: max_message_size and the headers submission adds)`;
  return envelopeError(e, Math.max(DROP_MAX_RECIPIENTS, config.maxRecipients));
}

/**
 * Why the queue's file system cannot take this drop, or undefined. Pickup
 * copies a drop into the queue before it removes it: a drop that left less
 * than its own size free could never be picked up, so the writer keeps that
 * much free (Postfix's smtpd keeps 1.5 times the message size limit).
 */
function roomForDrop(config: Config, bytes: number): string | undefined {
  let free: number;
  try {
    const st = fs.statfsSync(config.maildropDir);
    free = st.bavail * st.bsize;
  } catch {
    return undefined; // the write below reports what is wrong
  }
  const need = 2 * bytes + DROP_SLACK;
  return free < need ? `not enough free space for the queue (${free} bytes free in ${config.maildropDir}, ${need} needed)` : undefined;
}

/** Room left for the control files and the log lines a pickup writes. */
const DROP_SLACK = 64 << 10;

/** An unprivileged submission: one file, fsync'd, linked into the maildrop. */
export function dropMessage(config: Config, m: NewMessage): QueueId {
  const id = m.id ?? newQueueId();
  const name = `${id}.${randomBytes(16).toString('hex')}`;
  const tmp = path.join(config.maildropDir, DROP_TEMP_PREFIX + name);
  const final = path.join(config.maildropDir, name);
  const control = serializeControl(controlFor(m, id));
  const bad = dropError(config, m, m.data.length, Buffer.byteLength(control));
  if (bad) throw new MailError('usage', `cannot submit: ${bad}`);
  const room = roomForDrop(config, m.data.length + control.length);
  if (room) throw new MailError('queue-full', `cannot submit: ${room}; try again later`, { file: config.maildropDir });
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, 'wx', 0o600);
    fs.fchmodSync(fd, DROP_MODE);
    fs.writeFileSync(fd, Buffer.concat([Buffer.from(MAILDROP_MAGIC + control + '\n'), m.data]));
    fs.fsyncSync(fd);
    // link, not rename: an ID reused by another process must never overwrite.
    // pickup leaves ID alone while it has two links, one of them the temp name.
    fs.linkSync(tmp, final);
    fs.unlinkSync(tmp);
    syncDropped(config, fd);
    // COMMIT POINT for an unprivileged submission.
  } catch (e) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // the same failure
    }
    const code = (e as NodeJS.ErrnoException).code;
    const failure = code === 'EACCES' || code === 'EPERM' ? 'not-allowed' : code === 'ENOSPC' || code === 'EDQUOT' ? 'queue-full' : 'queue-write';
    throw new MailError(failure, `cannot write to the maildrop: ${(e as Error).message}`, {
      file: config.maildropDir,
      cause: e,
    });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  return id;
}

/**
 * Make the new name durable. The maildrop (1733) is not readable by the user,
 * so the directory cannot be opened to fsync it; fsync of the file then commits
 * the journal transaction that holds the link on ext4 and XFS (a known limit on
 * file systems without that ordering, where root's direct writes are safer).
 * The file is synced through the descriptor still open, not by its name: a
 * picker may have taken the name already.
 */
function syncDropped(config: Config, fd: number): void {
  try {
    fsyncDir(config.maildropDir);
  } catch {
    fs.fsyncSync(fd);
  }
}
