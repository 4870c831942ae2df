// The per-mailbox index on disk, beside nothing the mbox owns: a directory
// (mailbox_index_dir/NAME) holding mailtk.index (UIDVALIDITY, UIDNEXT, the
// mbox's identity when last synced, and one fixed 68-byte record a message:
// place, sizes, UID, flags, fingerprint) and mailtk.cache (per-message blobs
// a protocol asked to keep, such as IMAP's ENVELOPE; folder-cache.ts reads
// and writes it). Version 2 adds each
// message's mod-sequence (RFC 7162) to its record, now 76 bytes, and to the
// head the highest one and a bounded list of expunged UIDs with theirs; a
// version 1 index still reads, every modseq 1. The head also lists the
// messages whose keywords differ from what their X-Keywords: said when last
// scanned (changes not yet written to the mbox), and says `keywordHeaders`
// once X-Keywords: is read at all. Both are written to a
// temporary file and renamed; a file that fails its checks reads as missing,
// and the index is then rebuilt from the mbox with a new UIDVALIDITY. Files
// are reached through the held directory (safe-open.ts), never through a
// symlink, and only in a directory no one but its owner can write.

import fs from 'node:fs';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { existingParent, expectedOwner, type HeldDir, notPrivateDir, openDirBeneath } from './safe-open.ts';

export interface MboxStamp {
  dev: string;
  ino: string;
  size: number;
  mtimeNs: string;
}

export interface MessageRecord {
  uid: number;
  offset: number;
  length: number;
  fromLen: number;
  headerLength: number;
  size: number;
  headerSize: number;
  internalDate: number;
  /** fingerprint(): 12 base64 characters. */
  fp: string;
  flags: number;
  /** What the mbox's Status:/X-Status: said when last scanned. */
  headerFlags: number;
  /** Bit i set: the folder's keywords[i]. */
  keywords: number;
  /** Mod-sequence (RFC 7162): raised whenever the message's flags or keywords change. */
  modseq: number;
  /**
   * What the mbox's X-Keywords: said when last scanned, as bits like
   * `keywords`, when a change has made them differ; absent: the same.
   */
  headerKeywords?: number;
}

export interface IndexState {
  uidValidity: number;
  uidNext: number;
  /** Messages with a higher UID are \Recent for the next session that selects the folder. */
  recentUid: number;
  keywords: string[];
  stamp: MboxStamp;
  records: MessageRecord[];
  /**
   * 'mboxrd': sizes and fingerprints count ^>+From  lines unquoted. Missing in
   * indexes written when readers unquoted ^>From  only (see Folder's load()).
   */
  quoting?: 'mboxrd';
  /** The mailbox's HIGHESTMODSEQ; 1 for an index of version 1. */
  highestModseq?: number;
  /** Expunged UIDs with the modseq of their expunge, oldest first, bounded. */
  vanished?: Array<[number, number]>;
  /** Expunges up to this modseq are no longer in `vanished`. */
  vanishedFloor?: number;
  /** Records' keywords reflect X-Keywords: (absent in indexes written before it was read). */
  keywordHeaders?: true;
}

const INDEX_MAGIC = Buffer.from('MTKIDX2\n');
const INDEX_MAGIC_V1 = Buffer.from('MTKIDX1\n');
const RECORD = 76;
const RECORD_V1 = 68;
/** Index files are written in pieces of this size (indexPieces). */
const PIECE = 1 << 20;
export const INDEX_FILE = 'mailtk.index';
export const CACHE_FILE = 'mailtk.cache';
export const UIDVALIDITY_FILE = '.uidvalidity';
/** What an index directory may hold: the files above, their temporary files, and POP3's session lock. */
export const INDEX_FILES = [INDEX_FILE, CACHE_FILE, 'pop3.lock'];
const { O_RDONLY, O_RDWR, O_APPEND, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

/**
 * Latin-1 text of bytes without Buffer.toString's argument checks, which
 * cost more than the copy for a 12-byte fingerprint (Node's own fast path).
 */
type Latin1 = Buffer & { latin1Slice(start: number, end: number): string; latin1Write(s: string, at: number, len: number): number };

// Records go through a DataView: its accessors are V8 builtins, where
// Buffer's readDoubleLE and the like are JavaScript that a session agent
// (no optimizing compiler) runs slowly, 13 calls a record.
function writeRecord(b: Buffer, v: DataView, at: number, r: MessageRecord): void {
  v.setFloat64(at, r.offset, true);
  v.setFloat64(at + 8, r.length, true);
  v.setFloat64(at + 16, r.size, true);
  v.setFloat64(at + 24, Number.isFinite(r.internalDate) ? r.internalDate : -1, true);
  v.setUint32(at + 32, r.uid, true);
  v.setUint32(at + 36, r.fromLen, true);
  v.setUint32(at + 40, r.headerLength, true);
  v.setUint32(at + 44, r.headerSize, true);
  b[at + 48] = r.flags;
  b[at + 49] = r.headerFlags;
  b[at + 50] = 0;
  b[at + 51] = 0;
  v.setUint32(at + 52, r.keywords >>> 0, true);
  const fp = r.fp.length === 12 ? r.fp : r.fp.padEnd(12).slice(0, 12);
  (b as Latin1).latin1Write(fp, at + 56, 12);
  v.setFloat64(at + 68, r.modseq, true);
}

function readRecord(b: Buffer, v: DataView, at: number, v1: boolean): MessageRecord {
  const date = v.getFloat64(at + 24, true);
  return {
    offset: v.getFloat64(at, true),
    length: v.getFloat64(at + 8, true),
    size: v.getFloat64(at + 16, true),
    internalDate: date < 0 ? NaN : date,
    uid: v.getUint32(at + 32, true),
    fromLen: v.getUint32(at + 36, true),
    headerLength: v.getUint32(at + 40, true),
    headerSize: v.getUint32(at + 44, true),
    flags: b[at + 48],
    headerFlags: b[at + 49],
    keywords: v.getUint32(at + 52, true),
    fp: (b as Latin1).latin1Slice(at + 56, at + 68),
    modseq: v1 ? 1 : v.getFloat64(at + 68, true),
  };
}

/** The index file whole (tests, and small indexes). */
export function encodeIndex(s: IndexState): Buffer {
  return Buffer.concat(Array.from(indexPieces(s), (p) => Buffer.from(p)));
}

/**
 * The index file in pieces of about 1 MiB, each made in the same buffer when
 * the last has been taken (valid only until the next is asked for): a
 * 100,000-message index (7.6 MB) is never held whole while it is written,
 * which at the end of a first scan came on top of everything else. The
 * records counted at the start are the ones written.
 */
export function* indexPieces(s: IndexState): Generator<Buffer> {
  const count = s.records.length;
  const owed: Array<[number, number]> = [];
  for (let i = 0; i < count; i++) if (s.records[i].headerKeywords !== undefined) owed.push([s.records[i].uid, s.records[i].headerKeywords!]);
  const head = Buffer.from(JSON.stringify({
    uidValidity: s.uidValidity, uidNext: s.uidNext, recentUid: s.recentUid, keywords: s.keywords, stamp: s.stamp, count,
    ...(s.quoting ? { quoting: s.quoting } : {}),
    highestModseq: s.highestModseq ?? 1, vanished: s.vanished ?? [], vanishedFloor: s.vanishedFloor ?? 0,
    ...(s.keywordHeaders ? { keywordHeaders: true } : {}), ...(owed.length ? { headerKeywords: owed } : {}),
  }));
  const start = INDEX_MAGIC.length + 4 + head.length;
  const out = Buffer.allocUnsafe(Math.max(start, Math.min(PIECE, start + count * RECORD)));
  INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(head.length, INDEX_MAGIC.length);
  head.copy(out, INDEX_MAGIC.length + 4);
  let at = start;
  const view = new DataView(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < count; i++) {
    if (at + RECORD > out.length) {
      yield out.subarray(0, at);
      at = 0;
    }
    writeRecord(out, view, at, s.records[i]);
    at += RECORD;
  }
  yield out.subarray(0, at);
}

/** The index, or undefined when the bytes are not a whole index of ours. */
export function decodeIndex(b: Buffer): IndexState | undefined {
  if (b.length < INDEX_MAGIC.length + 4) return undefined;
  const magic = b.subarray(0, INDEX_MAGIC.length);
  const v1 = magic.equals(INDEX_MAGIC_V1);
  if (!v1 && !magic.equals(INDEX_MAGIC)) return undefined;
  const size = v1 ? RECORD_V1 : RECORD;
  const headLen = b.readUInt32LE(INDEX_MAGIC.length);
  const base = INDEX_MAGIC.length + 4 + headLen;
  let head: Omit<IndexState, 'records'> & { count: number; headerKeywords?: unknown };
  try {
    head = JSON.parse(b.toString('utf8', INDEX_MAGIC.length + 4, base));
  } catch {
    return undefined;
  }
  if (!Number.isInteger(head.count) || b.length !== base + head.count * size || !(head.uidValidity > 0)) return undefined;
  const records: MessageRecord[] = new Array(head.count);
  const view = new DataView(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < head.count; i++) records[i] = readRecord(b, view, base + i * size, v1);
  const quoting = head.quoting === 'mboxrd' ? { quoting: head.quoting } : {};
  const modseqs = v1 ? {} : { highestModseq: head.highestModseq, vanished: head.vanished, vanishedFloor: head.vanishedFloor };
  const keywordHeaders = head.keywordHeaders === true ? { keywordHeaders: true as const } : {};
  if (Array.isArray(head.headerKeywords)) owedKeywords(records, head.headerKeywords);
  return { uidValidity: head.uidValidity, uidNext: head.uidNext, recentUid: head.recentUid, keywords: head.keywords ?? [], stamp: head.stamp, records, ...quoting, ...modseqs, ...keywordHeaders };
}

/** The head's [uid, headerKeywords] pairs onto their records (both ascending by UID as written). */
function owedKeywords(records: MessageRecord[], pairs: unknown[]): void {
  let i = 0;
  for (const p of pairs) {
    if (!Array.isArray(p) || !Number.isSafeInteger(p[0]) || !Number.isSafeInteger(p[1])) continue;
    while (i < records.length && records[i].uid < p[0]) i++;
    if (i < records.length && records[i].uid === p[0]) records[i].headerKeywords = p[1] >>> 0;
  }
}

/** The bytes of `name` in an index directory; undefined when it or the directory is missing or it is not a regular file. */
export async function readIndexFile(dir: string, name: string, anchor?: string): Promise<Buffer | undefined> {
  const opened = await openIndexFile(dir, name, anchor, false);
  try {
    return await opened?.fh.readFile();
  } finally {
    await opened?.fh.close();
  }
}

/**
 * `name` in an index directory, opened without following a symlink, for
 * reading and appending when `write` (EACCES or EROFS: read only, and
 * `writable` says so); undefined when it or the directory is missing or it
 * is not a regular file.
 */
export async function openIndexFile(dir: string, name: string, anchor: string | undefined, write: boolean): Promise<{ fh: fs.promises.FileHandle; writable: boolean } | undefined> {
  const held = openDirBeneath(dir, anchor ?? existingParent(dir));
  if (!held) return undefined;
  let fh: fs.promises.FileHandle;
  let writable = write;
  try {
    const open = (flags: number) => fs.promises.open(held.at(name), flags | O_NOFOLLOW | O_NONBLOCK);
    fh = await open(write ? O_RDWR | O_APPEND : O_RDONLY).catch((e: NodeJS.ErrnoException) => {
      if (!write || (e.code !== 'EACCES' && e.code !== 'EROFS')) throw e;
      writable = false;
      return open(O_RDONLY);
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP') return undefined;
    throw e;
  } finally {
    held.close();
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    return undefined;
  }
  return { fh, writable };
}

/** Whether `name` in an index directory is still the file `fh` has open (not replaced by a rename since). */
export function isIndexFile(dir: string, name: string, anchor: string | undefined, fh: fs.promises.FileHandle): boolean {
  const held = openDirBeneath(dir, anchor ?? existingParent(dir));
  if (!held) return false;
  try {
    const now = fs.lstatSync(held.at(name), { throwIfNoEntry: false });
    const open = fs.fstatSync(fh.fd);
    return now !== undefined && now.ino === open.ino && now.dev === open.dev;
  } finally {
    held.close();
  }
}

/**
 * Open the index directory, made (0700, owned by `owner` when we are root)
 * with its parents below `anchor` if missing. No component below the anchor
 * may be a symlink, and the directory must be writable by its owner alone,
 * since temporary files are made in it. Without an anchor, only the
 * directory itself and what is made are checked.
 */
export function openIndexDir(dir: string, owner: { uid: number; gid: number } | undefined, anchor?: string): HeldDir {
  const held = openDirBeneath(dir, anchor ?? existingParent(dir), { owner }) as HeldDir;
  const why = notPrivateDir(held.stat, [expectedOwner(owner)]);
  if (why) {
    held.close();
    throw new MailError('mailbox-unsafe', `refusing to keep an index in ${dir}: ${why}`);
  }
  return held;
}

/** Make the index directory (and its parents), owned by `owner` when we are root; see openIndexDir. */
export function ensureIndexDir(dir: string, owner: { uid: number; gid: number } | undefined, anchor?: string): void {
  openIndexDir(dir, owner, anchor).close();
}

/**
 * Replace `name` in a held index directory: temporary file (O_EXCL|O_NOFOLLOW), rename. Mode 0600, owned by `owner` when root.
 * `data` may come in pieces, each written before the next is made (a large cache need not be held twice).
 */
export async function replaceIndexFile(dir: HeldDir, name: string, data: Buffer | Iterable<Buffer>, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const tmp = dir.at(`${name}.tmp.${process.pid}.${Math.random().toString(36).slice(2, 8)}`);
  const fh = await fs.promises.open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  try {
    if (Buffer.isBuffer(data)) await fh.writeFile(data);
    else for (const piece of data) await fh.writeFile(piece);
    if (owner && process.geteuid?.() === 0) await fh.chown(owner.uid, owner.gid);
  } finally {
    await fh.close();
  }
  try {
    await fs.promises.rename(tmp, dir.at(name));
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

/** Index file names we made: ours to remove with the index (their temporary files too). */
function ours(name: string): boolean {
  const base = name.replace(/\.tmp\.\d+\.[a-z0-9]+$/, '');
  return INDEX_FILES.includes(base) || base === UIDVALIDITY_FILE;
}

/**
 * Remove a mailbox's index (IMAP DELETE): the files the index code made, then
 * the directory if nothing else is left in it (the indexes of the mailbox's
 * children live below it). Never follows a symlink and never recurses.
 */
export function removeIndexDir(dir: string, anchor?: string): void {
  const parent = openDirBeneath(path.dirname(dir), anchor ?? existingParent(path.dirname(dir)));
  if (!parent) return;
  try {
    const held = parent.sub(path.basename(dir));
    if (!held) return;
    try {
      for (const name of fs.readdirSync(held.self)) {
        if (!ours(name)) continue;
        try {
          fs.unlinkSync(held.at(name));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'EISDIR') throw e;
        }
      }
    } finally {
      held.close();
    }
    try {
      fs.rmdirSync(parent.at(path.basename(dir)));
    } catch (e) {
      if (!['ENOENT', 'ENOTEMPTY', 'EEXIST'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  } finally {
    parent.close();
  }
}

/**
 * Move a mailbox's index with it (IMAP RENAME); a stale index under the new
 * name is removed first. When the move cannot be made, the index stays
 * behind and the renamed mailbox gets a fresh one (a new UIDVALIDITY).
 */
export function renameIndexDir(from: string, to: string, owner: { uid: number; gid: number } | undefined, anchor?: string): void {
  const src = openDirBeneath(path.dirname(from), anchor ?? existingParent(path.dirname(from)));
  if (!src) return;
  try {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(src.at(path.basename(from)));
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    removeIndexDir(to, anchor);
    const dst = openDirBeneath(path.dirname(to), anchor ?? existingParent(path.dirname(to)), { owner }) as HeldDir;
    try {
      fs.renameSync(src.at(path.basename(from)), dst.at(path.basename(to)));
    } catch {
      // A fresh index for the new name.
    } finally {
      dst.close();
    }
  } finally {
    src.close();
  }
}

/**
 * A UIDVALIDITY for a mailbox whose index is new: the time in seconds, but
 * always above the last one given out beside it (.uidvalidity in the parent
 * of the index directory, as Dovecot's dovecot-uidvalidity), so that an index
 * rebuilt within the same second still tells clients that UIDs changed.
 */
export async function nextUidValidity(indexDir: string, owner: { uid: number; gid: number } | undefined, anchor?: string): Promise<number> {
  const parent = path.dirname(indexDir);
  const last = Number((await readIndexFile(parent, UIDVALIDITY_FILE, anchor).catch(() => undefined))?.toString().trim()) || 0;
  const next = Math.max(Math.floor(Date.now() / 1000), last + 1) % 2 ** 32 || 1;
  try {
    const dir = openIndexDir(parent, owner, anchor);
    try {
      await replaceIndexFile(dir, UIDVALIDITY_FILE, Buffer.from(`${next}\n`), owner);
    } finally {
      dir.close();
    }
  } catch {
    // Not writable: the time alone, as before.
  }
  return next;
}
