// The per-message blobs a protocol asked a folder to keep (IMAP's ENVELOPE).
// They live in mailtk.cache, not in memory: for each field, typed arrays give
// each UID's place in the file, and a blob is read when asked for (FETCH 1:*
// asks in file order, so one 1 MiB read serves thousands). A 100,000-message
// INBOX so holds a few MB of arrays instead of 30 MB of envelopes (issue 11's
// memory target). Blobs made since (new messages, a first open) are copied
// into 1 MiB blocks in memory until the store spills them: appended to the
// file when it is still the one at its name and mostly live, else the file is
// rewritten from what is live and read back. Records are (field name, UID,
// length, bytes); appended ones may repeat a UID, the later winning. The file
// is only ever replaced by rename or appended to, never cut, so a place once
// read stays valid for the open file.

import fs from 'node:fs';

/** Where each blob of one field is: parallel arrays, `uids` ascending while `sorted`. */
class Column {
  uids = new Uint32Array(64);
  /** Index into `blocks` of each blob, or IN_FILE. */
  block = new Uint32Array(64);
  start = new Uint32Array(64);
  len = new Uint32Array(64);
  count = 0;
  sorted = true;
  /** The position last found: a FETCH 1:* asks for the next one. */
  private hint = -1;

  push(uid: number, block: number, start: number, len: number): void {
    if (this.count === this.uids.length) {
      const grow = <T extends Uint32Array>(a: T): T => {
        const b = new Uint32Array(a.length * 2) as T;
        b.set(a);
        return b;
      };
      this.uids = grow(this.uids);
      this.block = grow(this.block);
      this.start = grow(this.start);
      this.len = grow(this.len);
    }
    if (this.count > 0 && uid <= this.uids[this.count - 1]) this.sorted = false;
    const i = this.count++;
    this.uids[i] = uid;
    this.block[i] = block;
    this.start[i] = start;
    this.len[i] = len;
  }

  /** The position of `uid`, or -1. */
  find(uid: number): number {
    if (!this.sorted) this.sort();
    const next = this.hint + 1;
    if (next < this.count && this.uids[next] === uid) return (this.hint = next);
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = this.uids[mid];
      if (v === uid) return (this.hint = mid);
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Drop the blobs `keep` refuses (by position), in place. */
  keep(keep: (i: number) => boolean): void {
    let k = 0;
    for (let i = 0; i < this.count; i++) {
      if (!keep(i)) continue;
      this.uids[k] = this.uids[i];
      this.block[k] = this.block[i];
      this.start[k] = this.start[i];
      this.len[k] = this.len[i];
      k++;
    }
    this.count = k;
    this.hint = -1;
  }

  /** Order by UID; of two blobs for one UID the later one stays. */
  private sort(): void {
    const n = this.count;
    const order = Array.from({ length: n }, (_, i) => i);
    order.sort((a, b) => this.uids[a] - this.uids[b] || b - a);
    const [uids, block, start, len] = [this.uids, this.block, this.start, this.len].map((a) => new Uint32Array(Math.max(64, a.length)));
    let k = 0;
    for (const i of order) {
      if (k > 0 && uids[k - 1] === this.uids[i]) continue;
      uids[k] = this.uids[i];
      block[k] = this.block[i];
      start[k] = this.start[i];
      len[k] = this.len[i];
      k++;
    }
    Object.assign(this, { uids, block, start, len, count: k, sorted: true, hint: -1 });
  }
}

const BLOCK = 1 << 20;
/** In Column.block: the blob is in the backing file, Column.start its place there. */
const IN_FILE = 0xffffffff;
/** Memory-held blobs past this are appended to the file at once (Folder.putCache), or at the next save. */
export const SPILL_BYTES = 4 << 20;
/** A read away from the last one (a single FETCH) takes no more than this. */
const SMALL_READ = 4096;
/** Uint8Array's subarray, called directly: still a Buffer, without Buffer.subarray's JavaScript argument handling. */
const subarray = Uint8Array.prototype.subarray as (this: Buffer, start: number, end: number) => Buffer;
const MAGIC = Buffer.from('MTKCCH1\n');
const HEAD = 12;

/** a[x, x + n) equals b[y, y + n): a loop, cheaper than Buffer.compare's checks for a few bytes. */
function sameBytes(a: Buffer, x: number, b: Buffer, y: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (a[x + i] !== b[y + i]) return false;
  return true;
}

/** Fill `into` from `at`; the count read, short only at the end of the file. */
function readAt(fd: number, into: Buffer, at: number): number {
  let got = 0;
  while (got < into.length) {
    const n = fs.readSync(fd, into, got, into.length - got, at + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * An open mailtk.cache. Blobs are read through one window that a reader
 * going forward moves a MiB at a time: one buffer for the file's life, not a
 * new one a MiB, which V8 would keep as garbage until its next full
 * collection (tens of MB over a FETCH 1:* of 100,000 ENVELOPEs). So a blob
 * handed out is good only until the next read.
 */
export class CacheFile {
  private win: Buffer | undefined;
  private winAt = 0;
  private winLen = 0;

  /** `handle`: opened with O_APPEND when `writable`; `size`: how far records were read or appended (the file only grows). */
  constructor(readonly handle: fs.promises.FileHandle, public size: number, readonly writable: boolean) {}

  /** The bytes [at, at + len), good until the next read; undefined when the file is shorter. */
  read(at: number, len: number): Buffer | undefined {
    const off = at - this.winAt;
    if (this.win && off >= 0 && off + len <= this.winLen) return subarray.call(this.win, off, off + len);
    if (len > BLOCK) {
      const big = Buffer.allocUnsafe(len);
      return readAt(this.handle.fd, big, at) === len ? big : undefined;
    }
    const onward = off >= 0 && off <= this.winLen + SMALL_READ;
    this.win ??= Buffer.allocUnsafeSlow(BLOCK);
    const got = readAt(this.handle.fd, subarray.call(this.win, 0, onward ? BLOCK : Math.max(len, SMALL_READ)), at);
    this.winAt = at;
    this.winLen = got;
    return got < len ? undefined : subarray.call(this.win, 0, len);
  }

  /**
   * Append `pieces` at the end; where they start, or -1 when the file holds
   * more than was read (another writer's records, or a torn one that would
   * hide what follows from the next reader: nothing is written) or another
   * writer appended meanwhile (our places are then unknown).
   */
  append(pieces: Iterable<Buffer>): number {
    const fd = this.handle.fd;
    const before = fs.fstatSync(fd).size;
    if (before !== this.size) return -1;
    let wrote = 0;
    for (const p of pieces) {
      for (let at = 0; at < p.length; ) at += fs.writeSync(fd, p, at, p.length - at);
      wrote += p.length;
    }
    this.size = fs.fstatSync(fd).size;
    return this.size === before + wrote ? before : -1;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** Which blobs of a column to write: their positions, and (filled as they are written) where each one's bytes start. */
interface Plan {
  name: Buffer;
  col: Column;
  at: Uint32Array;
  placed: Uint32Array;
}

/** field -> UID -> bytes, for one folder. */
export class FolderCache {
  private columns = new Map<string, Column>();
  /** Blocks that blobs not (yet) in the file are copied into. */
  private blocks: Buffer[] = [];
  /** The block being filled by set(), and how far. */
  private fill = -1;
  private used = 0;
  /** Bytes held in `blocks`. */
  private held = 0;
  /** Blocks a spill emptied, filled again before any is allocated: a scan spills every few MB and would otherwise leave its blocks as garbage. */
  private spare: Buffer[] = [];
  private file: CacheFile | undefined;
  /** Counts set() calls: a rewrite that saw another one meanwhile does not read its file back. */
  sets = 0;

  /** The blob, good until the next get() (it may be a view of the file's window): copy what is kept longer. */
  get(field: string, uid: number): Buffer | undefined {
    const c = this.columns.get(field);
    if (!c) return undefined;
    const i = c.find(uid);
    return i < 0 ? undefined : this.blob(c, i);
  }

  private blob(c: Column, i: number): Buffer | undefined {
    const s = c.start[i];
    if (c.block[i] === IN_FILE) return this.file?.read(s, c.len[i]);
    return subarray.call(this.blocks[c.block[i]], s, s + c.len[i]);
  }

  has(field: string, uid: number): boolean {
    return (this.columns.get(field)?.find(uid) ?? -1) >= 0;
  }

  /** The mailtk.cache blobs are read from, if any. */
  get openFile(): CacheFile | undefined {
    return this.file;
  }

  /** Blobs held in memory, not in the file: past SPILL_BYTES, the store should spill them. */
  get heldBytes(): number {
    return this.held;
  }

  /** Keep a copy of `bytes`; a blob already kept for this UID is replaced. */
  set(field: string, uid: number, bytes: Buffer): void {
    this.sets++;
    let c = this.columns.get(field);
    if (!c) this.columns.set(field, (c = new Column()));
    this.held += bytes.length;
    if (bytes.length > BLOCK / 4) {
      this.blocks.push(Buffer.from(bytes));
      c.push(uid, this.blocks.length - 1, 0, bytes.length);
      return;
    }
    if (this.fill < 0 || this.used + bytes.length > BLOCK) {
      this.blocks.push(this.spare.pop() ?? Buffer.allocUnsafeSlow(BLOCK));
      this.fill = this.blocks.length - 1;
      this.used = 0;
    }
    const at = this.used;
    this.blocks[this.fill].set(bytes, at); // TypedArray's set: no Buffer.copy argument handling
    this.used += bytes.length;
    c.push(uid, this.fill, at, bytes.length);
  }

  /**
   * Read the places of an open mailtk.cache's blobs, for UIDs `want` accepts,
   * and keep the file open to read them from; blobs made since the open (new
   * messages) win over the file's. With `fresh`, what is held is dropped
   * first (the file was just written from it). False, and the file not kept,
   * when it is not one of ours or is for another UIDVALIDITY.
   */
  attach(file: CacheFile, uidValidity: number, want: (uid: number) => boolean, fresh = false): boolean {
    const fd = file.handle.fd;
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(HEAD);
    if (size >= IN_FILE || readAt(fd, head, 0) < HEAD || !head.subarray(0, 8).equals(MAGIC) || head.readUInt32LE(8) !== uidValidity) return false;
    if (fresh) this.drop();
    void this.file?.close().catch(() => undefined);
    this.file = file;
    const read = new Map<string, Column>();
    // Record heads are read a MiB at a time; their blobs are skipped, not read.
    const chunk = Buffer.allocUnsafe(BLOCK);
    let chunkAt = 0;
    let chunkLen = 0;
    let lastName = Buffer.alloc(0);
    let col: Column | undefined;
    let at = HEAD;
    while (at < size) {
      if (at + 1 + 255 + 8 > chunkAt + chunkLen) {
        chunkAt = at;
        chunkLen = readAt(fd, chunk, at);
      }
      const p = at - chunkAt;
      const n = chunk[p];
      if (p + 1 + n + 8 > chunkLen) break;
      const uid = chunk.readUInt32LE(p + 1 + n);
      const len = chunk.readUInt32LE(p + 5 + n);
      const start = at + 9 + n;
      if (start + len > size) break;
      // Field names repeat record after record: compare bytes before making a string.
      if (col === undefined || lastName.length !== n || !sameBytes(chunk, p + 1, lastName, 0, n)) {
        lastName = Buffer.from(chunk.subarray(p + 1, p + 1 + n));
        const field = lastName.toString('latin1');
        col = read.get(field);
        if (!col) read.set(field, (col = new Column()));
      }
      if (want(uid)) col.push(uid, IN_FILE, start, len);
      at = start + len;
    }
    file.size = at;
    for (const [field, fromFile] of read) {
      const have = this.columns.get(field);
      if (!have || have.count === 0) {
        this.columns.set(field, fromFile);
        continue;
      }
      // Blobs made since the open (new messages) win over the file's: pushed later, kept by the sort.
      const both = new Column();
      for (const c of [fromFile, have]) for (let i = 0; i < c.count; i++) both.push(c.uids[i], c.block[i], c.start[i], c.len[i]);
      this.columns.set(field, both);
    }
    return true;
  }

  /**
   * mailtk.cache for these UIDs (ascending), of every field, in pieces of
   * about 1 MiB, each made when the last has been taken, in the same buffer:
   * a piece is valid only until the next is asked for. So a 30 MB cache is
   * never held whole while it is written. The blobs of other UIDs are left
   * out. The UIDs must not change meanwhile; attach() the file after.
   */
  encode(uidValidity: number, uids: ArrayLike<number>): Generator<Buffer> {
    const plans: Plan[] = [];
    for (const [field, col] of this.columns) {
      const at = new Uint32Array(uids.length);
      let n = 0;
      for (let k = 0; k < uids.length; k++) {
        const i = col.find(uids[k]);
        if (i >= 0) at[n++] = i;
      }
      plans.push({ name: Buffer.from(field, 'latin1'), col, at: at.subarray(0, n), placed: new Uint32Array(0) });
    }
    const head = Buffer.alloc(HEAD);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(uidValidity >>> 0, 8);
    return this.records(head, plans);
  }

  /**
   * Append the blobs held in memory, of UIDs `live` accepts, to the open file,
   * and read them from there from now on; the memory is let go. False (nothing
   * changed in memory) when there is no file open for writing, when it holds
   * more dead bytes than live (rewrite it instead), or when another writer
   * appended meanwhile.
   */
  spill(live: (uid: number) => boolean): boolean {
    const file = this.file;
    if (!file?.writable) return false;
    let liveInFile = 0;
    const plans: Plan[] = [];
    for (const [field, col] of this.columns) {
      const name = Buffer.from(field, 'latin1');
      const at: number[] = [];
      for (let i = 0; i < col.count; i++) {
        if (!live(col.uids[i])) continue;
        if (col.block[i] === IN_FILE) liveInFile += 9 + name.length + col.len[i];
        else at.push(i);
      }
      plans.push({ name, col, at: Uint32Array.from(at), placed: new Uint32Array(at.length) });
    }
    if (file.size - HEAD > 2 * liveInFile + BLOCK) return false;
    const base = plans.some((p) => p.at.length > 0) ? file.append(this.records(undefined, plans)) : 0;
    if (base < 0) return false;
    for (const p of plans) {
      for (let k = 0; k < p.at.length; k++) {
        p.col.block[p.at[k]] = IN_FILE;
        p.col.start[p.at[k]] = base + p.placed[k];
      }
      // What stays in memory now is of UIDs gone: dropped with the blocks.
      p.col.keep((i) => p.col.block[i] === IN_FILE);
    }
    for (const b of this.blocks) if (b.length === BLOCK && this.spare.length < SPILL_BYTES / BLOCK + 1) this.spare.push(b);
    this.blocks = [];
    this.fill = -1;
    this.used = 0;
    this.held = 0;
    return true;
  }

  /** Records for the plans' blobs (after `head`), in pieces of about 1 MiB made in one buffer; each plan's `placed` learns where its blobs start. */
  private *records(head: Buffer | undefined, plans: Plan[]): Generator<Buffer> {
    let out = Buffer.allocUnsafe(BLOCK);
    let at = 0;
    let done = 0;
    if (head) at += head.copy(out, 0);
    for (const { name, col, at: which, placed } of plans) {
      for (let k = 0; k < which.length; k++) {
        const i = which[k];
        const blob = this.blob(col, i);
        if (!blob) continue; // the file lost it: recomputed when asked for
        const len = blob.length;
        const need = 9 + name.length + len;
        if (at + need > out.length) {
          yield subarray.call(out, 0, at);
          done += at;
          if (need > out.length) out = Buffer.allocUnsafe(need);
          at = 0;
        }
        out[at] = name.length;
        name.copy(out, at + 1);
        out.writeUInt32LE(col.uids[i], at + 1 + name.length);
        out.writeUInt32LE(len, at + 5 + name.length);
        at += 9 + name.length;
        if (placed.length) placed[k] = done + at;
        out.set(blob, at);
        at += len;
      }
    }
    yield subarray.call(out, 0, at);
  }

  /** Let the spare blocks go: a burst of spills (a scan) is over. */
  trim(): void {
    this.spare = [];
  }

  /** Forget every blob (the file too, not closed: the caller's). */
  private drop(): void {
    this.columns = new Map();
    this.blocks = [];
    this.spare = [];
    this.fill = -1;
    this.used = 0;
    this.held = 0;
  }

  /** Close the file; what was read from it is forgotten. */
  async close(): Promise<void> {
    const file = this.file;
    this.file = undefined;
    for (const c of this.columns.values()) c.keep((i) => c.block[i] !== IN_FILE);
    await file?.close();
  }
}
