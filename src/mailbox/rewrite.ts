// Rewriting an mbox in place when a reader (mail's quit, POP3's UPDATE, IMAP's
// EXPUNGE) drops messages or changes their Status:/X-Status: headers. Under the
// dotlock it checks the file still begins as the caller's index says, then
// writes the kept messages followed by every byte appended since the index was
// made, so mail that arrived during the session is never lost. In place (the
// spool directory may not be ours to create files in), so owner, mode and inode
// stay; only the part from the first change onwards is written.

// How we do it, crash-safe without a rename: the new bytes from `start` go to a
// backup file first (header line + content; fsync'd, and its directory too),
// then over the mbox from `start`, then ftruncate, fsync, and the backup is
// removed. The backup is `.mailtk-rewrite.<mbox name>.<12 hex of sha256(path)>`
// in opts.backupDir, else $HOME, else the mbox's own directory, mode 0600,
// owned by the mailbox's owner. Never in /tmp: the directory must be a real
// directory (not a symlink) owned by the mailbox's owner (or by us, when we
// are root) that no one else can write, else the rewrite is refused. A backup
// found there is trusted only as a regular file with one link, owned the same
// way and opened with O_NOFOLLOW; anything else is ignored (and reported
// through onIgnoredBackup), never replayed, and never makes an open fail.
// Recovery rule: while a backup exists, the mbox is [its own bytes before
// start] + [the backup's content] + [whatever was appended after the crash].
// The file was only ever S bytes (old size) or T = start + content bytes long
// while we worked (we grow it with one ftruncate before writing, and cut it with
// one after), so the crash-time end Z is one of the two: for T < S the old bytes
// [T, S) are still there iff their recorded sha256 matches; for T > S the bytes
// [S, T) are new or zero iff the grow happened. recoverRewrite() (run first by
// every rewriteMbox) applies this rule through the same backup-first commit.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { acquireMailboxLock } from './dotlock-helper.ts';
import type { Dotlock } from './dotlock.ts';
import { syncDir } from './io.ts';
import { type HeldDir, notPrivateDir, openDirBeneath } from './safe-open.ts';
import type { MboxEntry, MboxIndex } from './scan.ts';

export interface RewriteKeep {
  entry: MboxEntry;
  /** Replaces the header block as MboxEntry.headerLength counts it: the fields and the blank line after them. */
  headers?: Buffer;
}

export interface RewriteOptions {
  /** A lock the caller already holds; otherwise rewriteMbox takes (and releases) the mailbox lock. */
  lock?: Dotlock;
  /**
   * Where the crash backup goes: a directory of the mailbox's owner that no
   * one else can write (checked; the rewrite is refused otherwise). Default
   * $HOME, else the mbox's own directory, whichever passes the checks first.
   */
  backupDir?: string;
  /** A trusted directory above the mbox: the components below it are opened without following symlinks. */
  beneath?: string;
  /** Told why a backup found for this mbox was not trusted (it is then left alone). */
  onIgnoredBackup?: (why: string) => void;
  /** Tests only: called after each step, to kill the process there. */
  onStep?: (step: RewriteStep) => void;
}

export type RewriteStep = 'backup-written' | 'grown' | 'written' | 'truncated';

/** Bytes of the new content: a range of an open file, or bytes in memory. */
type Piece = { fd: number; from: number; to: number } | { bytes: Buffer };

interface BackupHeader {
  v: 1;
  path: string;
  dev: number;
  ino: number;
  start: number;
  newEnd: number; // T
  oldEnd: number; // S
  oldTail: string | null; // sha256 of the old bytes [T, S) when T < S
}

const MAGIC = 'mailtk-rewrite ';
const COPY_CHUNK = 1 << 20;
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/** Keep `keep` (in file order) plus everything appended after `index.size`; see the file comment. */
export async function rewriteMbox(
  file: string,
  index: MboxIndex,
  keep: RewriteKeep[],
  opts: RewriteOptions = {},
): Promise<{ kept: number; appendedMeanwhile: number }> {
  const lock = opts.lock ?? (await acquireMailboxLock(file));
  try {
    recoverRewrite(file, opts);
    const fd = openMbox(file, opts.beneath);
    try {
      const size = fs.fstatSync(fd).size;
      checkUnchanged(fd, file, index, size);
      const pieces = planPieces(fd, index, keep, size);
      commit(fd, file, pieces, size, opts);
      return { kept: keep.length, appendedMeanwhile: size - index.size };
    } finally {
      fs.closeSync(fd);
    }
  } finally {
    if (!opts.lock) lock.release();
  }
}

function openMbox(file: string, beneath?: string): number {
  let dir: HeldDir | undefined;
  try {
    if (beneath) dir = openDirBeneath(path.dirname(file), beneath);
    if (beneath && !dir) throw new Error('a directory on the way is missing');
    const fd = fs.openSync(dir ? dir.at(path.basename(file)) : file, O_RDWR | O_NOFOLLOW);
    if (!fs.fstatSync(fd).isFile()) {
      fs.closeSync(fd);
      throw new MailError('mailbox-unsafe', 'mailbox is not a regular file', { file });
    }
    return fd;
  } catch (e) {
    if (e instanceof MailError) throw e;
    throw new MailError('mailbox-io', `cannot open mailbox to rewrite it: ${(e as Error).message}`, { file, cause: e });
  } finally {
    dir?.close();
  }
}

function readAt(fd: number, from: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = fs.readSync(fd, buf, got, length - got, from + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** The file must still begin with what `index` describes; otherwise change nothing. */
function checkUnchanged(fd: number, file: string, index: MboxIndex, size: number): void {
  const changed = (why: string) =>
    new MailError('mailbox-io', `mailbox changed under us (${why}); nothing was written: open it again`, { file });
  if (size < index.size) throw changed(`it is ${size} bytes, shorter than the ${index.size} we read`);
  const msgs = index.messages;
  for (const e of msgs.length ? [msgs[0], msgs[msgs.length - 1]] : []) {
    const line = readAt(fd, e.offset, e.dataOffset - e.offset);
    const text = line.subarray(0, Math.min(line.length, 1000)).toString('utf8').replace(/\r?\n$/, '');
    if (line.length !== e.dataOffset - e.offset || text !== e.fromLine) {
      throw changed(`the message at byte ${e.offset} is not the one we read`);
    }
  }
}

/** The new content as pieces of the old file and new header blocks, in order. */
function planPieces(fd: number, index: MboxIndex, keep: RewriteKeep[], size: number): Piece[] {
  const pieces: Piece[] = [];
  let prevEnd = -1;
  for (const { entry: e, headers } of keep) {
    if (e.offset < prevEnd || e.offset + e.length > index.size) {
      throw new Error(`rewriteMbox: entries must be from the index, in file order (offset ${e.offset})`);
    }
    prevEnd = e.offset + e.length;
    if (headers) {
      if (headers.length === 0 || headers[headers.length - 1] !== 0x0a) {
        throw new Error('rewriteMbox: a header block must end with its blank line');
      }
      pieces.push({ fd, from: e.offset, to: e.dataOffset }, { bytes: headers });
      pieces.push({ fd, from: e.dataOffset + e.headerLength, to: prevEnd });
    } else {
      pieces.push({ fd, from: e.offset, to: prevEnd });
    }
    pieces.push(separatorAfter(fd, e, index.size));
  }
  if (size > index.size) pieces.push({ fd, from: index.size, to: size });
  return merge(pieces);
}

/** The blank line after a message: the old one when it is there, else a new one (and a newline it lacked). */
function separatorAfter(fd: number, e: MboxEntry, indexSize: number): Piece {
  const end = e.offset + e.length;
  const last = e.length > 0 ? readAt(fd, end - 1, 2) : Buffer.alloc(0);
  if (last[0] !== 0x0a) return { bytes: Buffer.from('\n\n') };
  if (end < indexSize && last[1] === 0x0a) return { fd, from: end, to: end + 1 };
  return { bytes: Buffer.from('\n') };
}

function merge(pieces: Piece[]): Piece[] {
  const out: Piece[] = [];
  for (const p of pieces) {
    const prev = out[out.length - 1];
    if (prev && 'fd' in prev && 'fd' in p && prev.fd === p.fd && prev.to === p.from) prev.to = p.to;
    else if (!('fd' in p) || p.to > p.from) out.push({ ...p });
  }
  return out;
}

function pieceLength(p: Piece): number {
  return 'fd' in p ? p.to - p.from : p.bytes.length;
}

/** Drop the leading pieces that are already where they would be written. */
function unchangedPrefix(pieces: Piece[], mboxFd: number): { start: number; rest: Piece[] } {
  let start = 0;
  let i = 0;
  for (; i < pieces.length; i++) {
    const p = pieces[i];
    if (!('fd' in p) || p.fd !== mboxFd || p.from !== start) break;
    start = p.to;
  }
  return { start, rest: pieces.slice(i) };
}

/** Backup first, then overwrite from `start`, then cut or keep the length; see the file comment. */
function commit(fd: number, file: string, pieces: Piece[], size: number, opts: RewriteOptions): void {
  const { start, rest } = unchangedPrefix(pieces, fd);
  const newEnd = start + rest.reduce((n, p) => n + pieceLength(p), 0);
  if (rest.length === 0 && newEnd === size) return; // nothing changes
  const st = fs.fstatSync(fd);
  const header: BackupHeader = {
    v: 1,
    path: path.resolve(file),
    dev: st.dev,
    ino: st.ino,
    start,
    newEnd,
    oldEnd: size,
    oldTail: newEnd < size ? sha256Of(fd, newEnd, size) : null,
  };
  const backup = backupPath(file, backupDirFor(file, st, opts.backupDir));
  const saved = writeBackup(backup, header, rest, st);
  const step = opts.onStep ?? (() => {});
  try {
    step('backup-written');
    if (newEnd > size) {
      fs.ftruncateSync(fd, newEnd);
      fs.fsyncSync(fd);
      step('grown');
    }
    copyBackupInto(saved.fd, saved.contentAt, newEnd - start, fd, start);
    fs.fsyncSync(fd);
    step('written');
    if (newEnd < size) {
      fs.ftruncateSync(fd, newEnd);
      fs.fsyncSync(fd);
      step('truncated');
    }
  } catch (e) {
    // The backup stays: it is what recovery needs.
    throw new MailError('mailbox-io', `rewriting the mailbox failed: ${(e as Error).message}; ${backup} holds the new content and the next open recovers it`, { file, cause: e });
  } finally {
    fs.closeSync(saved.fd);
  }
  fs.rmSync(backup, { force: true });
}

function sha256Of(fd: number, from: number, to: number): string {
  const h = createHash('sha256');
  for (let pos = from; pos < to; ) {
    const chunk = readAt(fd, pos, Math.min(COPY_CHUNK, to - pos));
    if (chunk.length === 0) break;
    h.update(chunk);
    pos += chunk.length;
  }
  return h.digest('hex');
}

/**
 * Who may own the backup and its directory: the mailbox's owner, which is
 * whoever we run as, or the mbox file's owner when we are root (and then
 * root too: only root can make a file root's).
 */
function trustedOwners(mbox: fs.Stats): number[] {
  const euid = process.geteuid?.() ?? 0;
  return euid === 0 && mbox.uid !== 0 ? [mbox.uid, 0] : [euid];
}

/** Why `dir` may not hold a backup, or undefined when it may. */
function unsafeBackupDir(dir: string, owners: number[]): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : (e as Error).message;
  }
  return notPrivateDir(st, owners);
}

/** Where a backup may be written: backupDir, or by default $HOME, else the mbox's directory. */
function writePlaces(file: string, backupDir: string | undefined): string[] {
  if (backupDir) return [path.resolve(backupDir)];
  const home = process.env.HOME;
  return [...new Set([...(home ? [path.resolve(home)] : []), path.dirname(path.resolve(file))])];
}

/** The first directory of writePlaces() that passes the checks; otherwise the rewrite is refused. */
function backupDirFor(file: string, mbox: fs.Stats, backupDir: string | undefined): string {
  const owners = trustedOwners(mbox);
  const reasons: string[] = [];
  for (const dir of writePlaces(file, backupDir)) {
    const why = unsafeBackupDir(dir, owners);
    if (!why) return dir;
    reasons.push(`${dir}: ${why}`);
  }
  throw new MailError('mailbox-unsafe', `refusing to rewrite: no safe directory for the crash backup (${reasons.join('; ')}); the mailbox is unchanged`, { file });
}

/** The backup's name for one mbox: found again from the mbox path alone. */
export function backupPath(file: string, dir: string): string {
  const abs = path.resolve(file);
  const tag = createHash('sha256').update(abs).digest('hex').slice(0, 12);
  return path.join(dir, `.mailtk-rewrite.${path.basename(abs)}.${tag}`);
}

/**
 * Write header line + content to BACKUP.new (O_EXCL|O_NOFOLLOW, 0600, owned
 * like the mbox), fsync, rename over BACKUP (so a backup being replayed is
 * replaced in one step), fsync the directory. Returns the backup, still open
 * (the content is copied from this descriptor, never by name again), and the
 * content's offset in it.
 */
function writeBackup(backup: string, header: BackupHeader, pieces: Piece[], mbox: fs.Stats): { fd: number; contentAt: number } {
  const temp = `${backup}.new`;
  try {
    fs.unlinkSync(temp); // a leftover of ours: we hold the mailbox lock
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new MailError('mailbox-io', `cannot remove an old ${temp}: ${(e as Error).message}; the mailbox is unchanged`, { cause: e });
  }
  let out: number;
  try {
    out = fs.openSync(temp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new MailError('mailbox-io', `cannot write the rewrite backup: ${(e as Error).message}; the mailbox is unchanged`, { file: temp, cause: e });
  }
  try {
    if (process.geteuid?.() === 0) fs.fchownSync(out, mbox.uid, mbox.gid);
    const head = Buffer.from(MAGIC + JSON.stringify(header) + '\n');
    let pos = writeAt(out, head, 0);
    for (const p of pieces) {
      if (!('fd' in p)) pos += writeAt(out, p.bytes, pos);
      else for (let at = p.from; at < p.to; ) {
        const chunk = readAt(p.fd, at, Math.min(COPY_CHUNK, p.to - at));
        if (chunk.length === 0) throw new Error(`mailbox shrank while being copied (at byte ${at})`);
        pos += writeAt(out, chunk, pos);
        at += chunk.length;
      }
    }
    fs.fsyncSync(out);
    fs.renameSync(temp, backup);
    syncDir(path.dirname(backup));
    return { fd: out, contentAt: head.length };
  } catch (e) {
    fs.closeSync(out);
    fs.rmSync(temp, { force: true });
    throw new MailError('mailbox-io', `cannot write the rewrite backup: ${(e as Error).message}; the mailbox is unchanged`, { file: backup, cause: e });
  }
}

function writeAt(fd: number, buf: Buffer, pos: number): number {
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
  return done;
}

function copyBackupInto(src: number, contentAt: number, length: number, fd: number, start: number): void {
  for (let done = 0; done < length; ) {
    const chunk = readAt(src, contentAt + done, Math.min(COPY_CHUNK, length - done));
    if (chunk.length === 0) throw new Error('the rewrite backup is shorter than its header says');
    writeAt(fd, chunk, start + done);
    done += chunk.length;
  }
}

interface FoundBackup {
  fd: number;
  header: BackupHeader;
  contentAt: number;
}

/**
 * Open a backup, if there is one, and trust it only as a regular file with
 * one link, owned by one of `owners` and writable by its owner alone; a
 * string says why one that is there was not trusted.
 */
function openBackup(backup: string, owners: number[]): FoundBackup | string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(backup, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    return `${backup}: ${code === 'ELOOP' ? 'it is a symbolic link' : (e as Error).message}`;
  }
  try {
    const st = fs.fstatSync(fd);
    const why = !st.isFile()
      ? 'it is not a regular file'
      : st.nlink !== 1
        ? `it has ${st.nlink} links`
        : !owners.includes(st.uid)
          ? `it is owned by uid ${st.uid}, not ${owners.join(' or ')}`
          : (st.mode & 0o022) !== 0
            ? 'it is writable by group or others'
            : undefined;
    if (why) return `${backup}: ${why}`;
    const head = readAt(fd, 0, 64 << 10);
    const nl = head.indexOf(0x0a);
    const line = head.toString('utf8', 0, nl < 0 ? head.length : nl);
    if (nl < 0 || !line.startsWith(MAGIC)) throw new MailError('mailbox-io', 'not a mailtk rewrite backup; look at it, then remove it', { file: backup });
    const found = { fd, header: JSON.parse(line.slice(MAGIC.length)) as BackupHeader, contentAt: nl + 1 };
    fd = -1;
    return found;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

/** Where a backup for this mbox may be: the places a rewrite could have chosen, given backupDir or not. */
function recoveryPlaces(file: string, backupDir: string | undefined): string[] {
  return [...new Set([...(backupDir ? [path.resolve(backupDir)] : []), ...writePlaces(file, undefined)])];
}

function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Whether something lies where a crash backup for this mbox would (cheap: no lock; recover under the lock). */
export function pendingRewrite(file: string, backupDir?: string): boolean {
  return recoveryPlaces(file, backupDir).some((d) => lexists(backupPath(file, d)));
}

/**
 * Finish a rewrite that a crash interrupted, if there is one; the caller holds
 * the mailbox lock. True when something was recovered (any index made before
 * is then stale). Mail appended after the crash is kept after the content.
 * A backup that is not trusted (see openBackup) is left alone and reported
 * through onIgnoredBackup.
 */
export function recoverRewrite(file: string, opts: Pick<RewriteOptions, 'backupDir' | 'onStep' | 'beneath' | 'onIgnoredBackup'> = {}): boolean {
  let owners: number[] | undefined;
  for (const dir of recoveryPlaces(file, opts.backupDir)) {
    const backup = backupPath(file, dir);
    if (!lexists(backup)) continue;
    if (!owners) {
      const fd = openMbox(file, opts.beneath);
      try {
        owners = trustedOwners(fs.fstatSync(fd));
      } finally {
        fs.closeSync(fd);
      }
    }
    const dirWhy = unsafeBackupDir(dir, owners);
    const found = dirWhy ? `${backup}: its directory is not safe (${dirWhy})` : openBackup(backup, owners);
    if (found === undefined) continue;
    if (typeof found === 'string') {
      opts.onIgnoredBackup?.(found);
      continue;
    }
    try {
      replay(file, backup, found, { ...opts, backupDir: dir });
    } finally {
      fs.closeSync(found.fd);
    }
    return true;
  }
  return false;
}

function replay(file: string, backup: string, found: FoundBackup, opts: RewriteOptions): void {
  const { header: h, contentAt, fd: src } = found;
  const fd = openMbox(file, opts.beneath);
  try {
    const st = fs.fstatSync(fd);
    if (h.path !== path.resolve(file) || st.dev !== h.dev || st.ino !== h.ino) {
      throw new MailError('mailbox-io', `${backup} is an interrupted rewrite of a mailbox that has since been replaced; compare the two by hand, then remove the backup`, { file });
    }
    const z = crashEnd(fd, src, contentAt, h, st.size);
    const pieces: Piece[] = [
      { fd, from: 0, to: h.start },
      { fd: src, from: contentAt, to: contentAt + (h.newEnd - h.start) },
    ];
    if (st.size > z) pieces.push({ fd, from: z, to: st.size });
    // The recovered content becomes a fresh backup (renamed over the old one), then the usual commit.
    commit(fd, file, merge(pieces), st.size, opts);
  } finally {
    fs.closeSync(fd);
  }
  fs.rmSync(backup, { force: true });
}

/** Where the file ended when the rewrite stopped: the old size S or the new size T. */
function crashEnd(fd: number, src: number, contentAt: number, h: BackupHeader, size: number): number {
  const { start, newEnd: t, oldEnd: s } = h;
  const bad = () =>
    new MailError('mailbox-io', `cannot tell how far an interrupted rewrite got (size ${size}, expected at least ${Math.min(s, t)})`);
  if (t < s) {
    if (size >= s && sha256Of(fd, t, s) === h.oldTail) return s;
    if (size < t) throw bad();
    return t;
  }
  if (t === s) {
    if (size < s) throw bad();
    return s;
  }
  if (size >= t && grownRegionOk(fd, src, contentAt + (s - start), s, t)) return t;
  if (size < s) throw bad();
  return s;
}

/** After the grow, each byte of [s, t) is either still zero or already the new byte. */
function grownRegionOk(fd: number, src: number, srcAt: number, s: number, t: number): boolean {
  for (let pos = s; pos < t; ) {
    const n = Math.min(COPY_CHUNK, t - pos);
    const cur = readAt(fd, pos, n);
    const want = readAt(src, srcAt + (pos - s), n);
    for (let i = 0; i < n; i++) if (cur[i] !== 0 && cur[i] !== want[i]) return false;
    pos += n;
  }
  return true;
}
