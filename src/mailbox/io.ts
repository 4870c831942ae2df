// Appending bytes to an open mailbox: all or nothing. Writes the slices with
// few writev(2) calls, then fdatasync (enough for an append: it flushes the new
// size with the data); on any error it ftruncates the file back to the size it
// had before, so a failed delivery leaves the mbox byte-identical, as Postfix's
// mail_copy() does. Also maps errno codes onto rows of the failure table.

import fs from 'node:fs';
import path from 'node:path';
import type { Failure } from '../message/status.ts';

const IOV_MAX = 1024; // Linux's limit on buffers per writev
const CHUNK = 1 << 20; // small slices are joined into chunks of about this size
const BIG = 256 << 10; // slices this large are written in place, never copied

/** The failure an errno stands for. ENOSPC, EDQUOT and EFBIG mean the mailbox cannot grow. */
export function failureFor(err: unknown, denied: Failure = 'mailbox-io'): Failure {
  switch ((err as NodeJS.ErrnoException)?.code) {
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return 'mailbox-full';
    case 'EACCES':
    case 'EPERM':
      return denied;
    default:
      return 'mailbox-io';
  }
}

/** Join runs of small slices so one writev carries a whole batch of small messages. */
export function coalesce(pieces: Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let run: Buffer[] = [];
  let runBytes = 0;
  const flush = () => {
    if (run.length) out.push(run.length === 1 ? run[0] : Buffer.concat(run, runBytes));
    run = [];
    runBytes = 0;
  };
  for (const p of pieces) {
    if (p.length >= BIG) {
      flush();
      out.push(p);
      continue;
    }
    run.push(p);
    runBytes += p.length;
    if (runBytes >= CHUNK) flush();
  }
  flush();
  return out;
}

function writev(fd: number, bufs: Buffer[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, bufs, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** Write every byte, carrying on after short writes. The fd was opened O_APPEND. */
export async function writeAll(fd: number, pieces: Buffer[]): Promise<void> {
  const queue = coalesce(pieces).filter((b) => b.length > 0);
  let i = 0;
  while (i < queue.length) {
    const batch = queue.slice(i, i + IOV_MAX);
    let n = await writev(fd, batch);
    if (n === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    while (i < queue.length && n >= queue[i].length) n -= queue[i++].length;
    if (n > 0) queue[i] = queue[i].subarray(n);
  }
}

/** Append and sync, or leave the file exactly `sizeBefore` bytes long and throw the system error. */
export async function appendAllOrNothing(fd: number, pieces: Buffer[], sizeBefore: number): Promise<void> {
  try {
    await writeAll(fd, pieces);
    await new Promise<void>((resolve, reject) => fs.fdatasync(fd, (e) => (e ? reject(e) : resolve())));
  } catch (e) {
    try {
      fs.ftruncateSync(fd, sizeBefore);
      fs.fdatasyncSync(fd);
    } catch {
      // Nothing more we can do; the original error is the one to report.
    }
    throw e;
  }
}

/** fsync a directory, so that a file just created in it survives a crash. */
export function syncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Replace `file` whole, never half-written: a temporary file beside it, made
 * with O_EXCL and O_NOFOLLOW (a link planted under its name is not followed),
 * written, fsync'd and renamed over it; `syncParent` fsyncs the directory too,
 * so that the rename itself survives a crash.
 */
export function replaceFile(file: string, data: string | Buffer, mode: number, syncParent = false): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.rmSync(tmp, { force: true }); // left by a process of the same pid that died
  const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;
  const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode);
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  if (syncParent) syncDir(path.dirname(file));
}
