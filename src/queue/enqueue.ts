// Putting a message into the queue: df<ID> (the message) and tf<ID> (the
// control file) are written and fsync'd, then commit() renames tf to qf.
// In the daemon, the commit log (commit-log.ts) makes a group durable with
// one fsync instead, and writes the same files after it.
// A process that may not write the queue (an ordinary user's sendmail; Node
// cannot be setuid) writes one finished file into the world-writable sticky
// maildrop directory instead, as Postfix's postdrop did; pickup() moves it in.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import type { Control, Recipient } from './control.ts';
import { newControl, serializeControl } from './control.ts';
import { newQueueId, type QueueId } from './id.ts';
import { PREFIX } from './state.ts';
import { commitLogFor } from './commit-log.ts';
import { commit } from './transition.ts';
import { fsyncDir, queuePath, writeDurable, writeDurableAsync } from './files.ts';

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
 * point). The writes and fsyncs run off the event loop, and the directory
 * fsync is shared with concurrent callers (group commit, see transition.ts),
 * which is what lets many SMTP sessions commit at once.
 */
export async function enqueue(config: Config, m: NewMessage): Promise<QueueId> {
  if (m.recipients.length === 0) throw new MailError('no-recipients', 'No recipient addresses found');
  let id = m.id ?? newQueueId();
  const log = commitLogFor(config);
  if (log) {
    // The daemon's path: one fdatasync of the commit log for the whole group.
    try {
      await log.append(controlFor(m, id), m.data);
    } catch (e) {
      throw new MailError('queue-write', `cannot write queue file: ${(e as Error).message}`, { file: config.queueDir, cause: e });
    }
    return id;
  }
  const df = () => queuePath(config, PREFIX.data, id);
  try {
    for (let tries = 0; ; tries++) {
      try {
        // Both files at once: the disk sees two fsyncs in flight instead of one after the other.
        const files = [df(), queuePath(config, PREFIX.temp, id)];
        const done = await Promise.allSettled([writeDurableAsync(files[0], m.data), writeDurableAsync(files[1], serializeControl(controlFor(m, id)))]);
        const failed = done.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (!failed) break;
        // Remove only what we created: an EEXIST file belongs to another process.
        done.forEach((r, i) => r.status === 'fulfilled' && removeQuietly(files[i]));
        throw failed.reason;
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
    removeQuietly(df());
    removeQuietly(queuePath(config, PREFIX.temp, id));
    if (e instanceof MailError) throw e;
    throw new MailError('queue-write', `cannot write queue file: ${(e as Error).message}`, { file: config.queueDir, cause: e });
  }
  return id;
}

function removeQuietly(file: string): void {
  try {
    fs.rmSync(file, { force: true });
  } catch {
    // The same failure that brought us here (no such directory, not a directory).
  }
}

// ---- the maildrop -------------------------------------------------------

const MAILDROP_MAGIC = 'MAILTK-MAILDROP 1\n';

/** An unprivileged submission: one file, fsync'd, renamed into the maildrop. */
export function dropMessage(config: Config, m: NewMessage): QueueId {
  const id = m.id ?? newQueueId();
  const tmp = path.join(config.maildropDir, `.tmp.${id}`);
  const final = path.join(config.maildropDir, id);
  const control = serializeControl(controlFor(m, id));
  try {
    writeDurable(tmp, Buffer.concat([Buffer.from(MAILDROP_MAGIC + control + '\n'), m.data]), 0o600);
    // link, not rename: an ID reused by another process must never overwrite.
    fs.linkSync(tmp, final);
    fs.unlinkSync(tmp);
    syncDropped(config, final);
    // COMMIT POINT for an unprivileged submission.
  } catch (e) {
    removeQuietly(tmp);
    const code = (e as NodeJS.ErrnoException).code;
    const failure = code === 'EACCES' || code === 'EPERM' ? 'not-allowed' : 'queue-write';
    throw new MailError(failure, `cannot write to the maildrop: ${(e as Error).message}`, {
      file: config.maildropDir,
      cause: e,
    });
  }
  return id;
}

/**
 * Make the new name durable. The maildrop (1733) is not readable by the user,
 * so the directory cannot be opened to fsync it; fsync of the file then commits
 * the journal transaction that holds the link on ext4 and XFS (a known limit on
 * file systems without that ordering, where root's direct writes are safer).
 */
function syncDropped(config: Config, final: string): void {
  try {
    fsyncDir(config.maildropDir);
  } catch {
    const fd = fs.openSync(final, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

export interface DroppedFile {
  name: string;
  path: string;
  uid: number;
  control: string;
  data: Buffer;
}

/**
 * Read a maildrop file: undefined when it is not a mailtk drop (to be
 * removed), 'busy' when its submitter is still between link and unlink.
 */
export function readDropped(config: Config, name: string): DroppedFile | 'busy' | undefined {
  const file = path.join(config.maildropDir, name);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.size > config.maxMessageSize + 65536) return undefined;
    if (st.nlink !== 1) return 'busy';
    const buf = Buffer.alloc(st.size);
    fs.readSync(fd, buf, 0, st.size, 0);
    if (!buf.subarray(0, MAILDROP_MAGIC.length).equals(Buffer.from(MAILDROP_MAGIC))) return undefined;
    const end = buf.indexOf('\n\n', MAILDROP_MAGIC.length);
    if (end < 0) return undefined;
    return {
      name,
      path: file,
      uid: st.uid,
      control: buf.subarray(MAILDROP_MAGIC.length, end + 1).toString('utf8'),
      data: buf.subarray(end + 2),
    };
  } finally {
    fs.closeSync(fd);
  }
}

export function listDropped(config: Config): string[] {
  try {
    return fs.readdirSync(config.maildropDir).filter((n) => !n.startsWith('.'));
  } catch {
    return [];
  }
}

export function removeDropped(config: Config, name: string): void {
  fs.rmSync(path.join(config.maildropDir, name), { force: true });
}
