// The per-mailbox index on disk, beside nothing the mbox owns: a directory
// (mailbox_index_dir/NAME) holding mailtk.index (UIDVALIDITY, UIDNEXT, the
// mbox's identity when last synced, and one fixed 68-byte record a message:
// place, sizes, UID, flags, fingerprint) and mailtk.cache (per-message blobs
// a protocol asked to keep, such as IMAP's ENVELOPE). Both are written to a
// temporary file and renamed; a file that fails its checks reads as missing,
// and the index is then rebuilt from the mbox with a new UIDVALIDITY.

import fs from 'node:fs';
import path from 'node:path';

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
}

export interface IndexState {
  uidValidity: number;
  uidNext: number;
  /** Messages with a higher UID are \Recent for the next session that selects the folder. */
  recentUid: number;
  keywords: string[];
  stamp: MboxStamp;
  records: MessageRecord[];
}

const INDEX_MAGIC = Buffer.from('MTKIDX1\n');
const CACHE_MAGIC = Buffer.from('MTKCCH1\n');
const RECORD = 68;
export const INDEX_FILE = 'mailtk.index';
export const CACHE_FILE = 'mailtk.cache';

function writeRecord(b: Buffer, at: number, r: MessageRecord): void {
  b.writeDoubleLE(r.offset, at);
  b.writeDoubleLE(r.length, at + 8);
  b.writeDoubleLE(r.size, at + 16);
  b.writeDoubleLE(Number.isFinite(r.internalDate) ? r.internalDate : -1, at + 24);
  b.writeUInt32LE(r.uid, at + 32);
  b.writeUInt32LE(r.fromLen, at + 36);
  b.writeUInt32LE(r.headerLength, at + 40);
  b.writeUInt32LE(r.headerSize, at + 44);
  b[at + 48] = r.flags;
  b[at + 49] = r.headerFlags;
  b.writeUInt32LE(r.keywords >>> 0, at + 52);
  b.write(r.fp.padEnd(12).slice(0, 12), at + 56, 'latin1');
}

function readRecord(b: Buffer, at: number): MessageRecord {
  const date = b.readDoubleLE(at + 24);
  return {
    offset: b.readDoubleLE(at),
    length: b.readDoubleLE(at + 8),
    size: b.readDoubleLE(at + 16),
    internalDate: date < 0 ? NaN : date,
    uid: b.readUInt32LE(at + 32),
    fromLen: b.readUInt32LE(at + 36),
    headerLength: b.readUInt32LE(at + 40),
    headerSize: b.readUInt32LE(at + 44),
    flags: b[at + 48],
    headerFlags: b[at + 49],
    keywords: b.readUInt32LE(at + 52),
    fp: b.toString('latin1', at + 56, at + 68),
  };
}

export function encodeIndex(s: IndexState): Buffer {
  const head = Buffer.from(JSON.stringify({
    uidValidity: s.uidValidity, uidNext: s.uidNext, recentUid: s.recentUid, keywords: s.keywords, stamp: s.stamp, count: s.records.length,
  }));
  const out = Buffer.allocUnsafe(INDEX_MAGIC.length + 4 + head.length + s.records.length * RECORD);
  INDEX_MAGIC.copy(out, 0);
  out.writeUInt32LE(head.length, INDEX_MAGIC.length);
  head.copy(out, INDEX_MAGIC.length + 4);
  let at = INDEX_MAGIC.length + 4 + head.length;
  for (const r of s.records) {
    writeRecord(out, at, r);
    at += RECORD;
  }
  return out;
}

/** The index, or undefined when the bytes are not a whole index of ours. */
export function decodeIndex(b: Buffer): IndexState | undefined {
  if (b.length < INDEX_MAGIC.length + 4 || !b.subarray(0, INDEX_MAGIC.length).equals(INDEX_MAGIC)) return undefined;
  const headLen = b.readUInt32LE(INDEX_MAGIC.length);
  const base = INDEX_MAGIC.length + 4 + headLen;
  let head: Omit<IndexState, 'records'> & { count: number };
  try {
    head = JSON.parse(b.toString('utf8', INDEX_MAGIC.length + 4, base));
  } catch {
    return undefined;
  }
  if (!Number.isInteger(head.count) || b.length !== base + head.count * RECORD || !(head.uidValidity > 0)) return undefined;
  const records: MessageRecord[] = new Array(head.count);
  for (let i = 0; i < head.count; i++) records[i] = readRecord(b, base + i * RECORD);
  return { uidValidity: head.uidValidity, uidNext: head.uidNext, recentUid: head.recentUid, keywords: head.keywords ?? [], stamp: head.stamp, records };
}

/** field -> uid -> bytes */
export type Cache = Map<string, Map<number, Buffer>>;

export function encodeCache(uidValidity: number, cache: Cache, live: (uid: number) => boolean): Buffer {
  const parts: Buffer[] = [CACHE_MAGIC];
  const v = Buffer.allocUnsafe(4);
  v.writeUInt32LE(uidValidity);
  parts.push(v);
  for (const [field, byUid] of cache) {
    const name = Buffer.from(field);
    for (const [uid, bytes] of byUid) {
      if (!live(uid)) continue;
      const h = Buffer.allocUnsafe(1 + name.length + 8);
      h[0] = name.length;
      name.copy(h, 1);
      h.writeUInt32LE(uid, 1 + name.length);
      h.writeUInt32LE(bytes.length, 5 + name.length);
      parts.push(h, bytes);
    }
  }
  return Buffer.concat(parts);
}

export function decodeCache(b: Buffer, uidValidity: number): Cache {
  const cache: Cache = new Map();
  if (b.length < 12 || !b.subarray(0, 8).equals(CACHE_MAGIC) || b.readUInt32LE(8) !== uidValidity) return cache;
  let at = 12;
  while (at < b.length) {
    const n = b[at];
    if (at + 1 + n + 8 > b.length) break;
    const field = b.toString('latin1', at + 1, at + 1 + n);
    const uid = b.readUInt32LE(at + 1 + n);
    const len = b.readUInt32LE(at + 5 + n);
    const start = at + 9 + n;
    if (start + len > b.length) break;
    let m = cache.get(field);
    if (!m) cache.set(field, (m = new Map()));
    m.set(uid, b.subarray(start, start + len));
    at = start + len;
  }
  return cache;
}

export async function readIfThere(file: string): Promise<Buffer | undefined> {
  try {
    return await fs.promises.readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Make the index directory (and its parents), owned by `owner` when we are root. */
export function ensureIndexDir(dir: string, owner: { uid: number; gid: number } | undefined): void {
  const missing: string[] = [];
  for (let d = dir; !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      continue;
    }
    if (owner && process.geteuid?.() === 0) fs.chownSync(d, owner.uid, owner.gid);
  }
  // A symlink here could send root's writes anywhere.
  if (!fs.lstatSync(dir).isDirectory()) throw new Error(`${dir}: not a directory`);
}

/** Replace a file: temporary file, rename. Mode 0600, owned by `owner` when root. */
export async function replaceFile(file: string, data: Buffer, owner: { uid: number; gid: number } | undefined): Promise<void> {
  const tmp = `${file}.tmp.${process.pid}.${Math.random().toString(36).slice(2, 8)}`;
  const fh = await fs.promises.open(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile(data);
    if (owner && process.geteuid?.() === 0) await fh.chown(owner.uid, owner.gid);
  } finally {
    await fh.close();
  }
  try {
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

/**
 * A UIDVALIDITY for a mailbox whose index is new: the time in seconds, but
 * always above the last one given out beside it (.uidvalidity in the parent
 * of the index directory, as Dovecot's dovecot-uidvalidity), so that an index
 * rebuilt within the same second still tells clients that UIDs changed.
 */
export async function nextUidValidity(indexDir: string, owner: { uid: number; gid: number } | undefined): Promise<number> {
  const file = path.join(path.dirname(indexDir), '.uidvalidity');
  const last = Number((await readIfThere(file).catch(() => undefined))?.toString().trim()) || 0;
  const next = Math.max(Math.floor(Date.now() / 1000), last + 1) % 2 ** 32 || 1;
  try {
    ensureIndexDir(path.dirname(indexDir), owner);
    await replaceFile(file, Buffer.from(`${next}\n`), owner);
  } catch {
    // Not writable: the time alone, as before.
  }
  return next;
}
