// The per-message blobs a protocol asked a folder to keep (IMAP's ENVELOPE),
// in memory as few objects as possible: for each field, what mailtk.cache held
// stays the one buffer it was read into, found by UID through typed arrays,
// and what is added since is copied into 1 MiB blocks, likewise indexed. A
// 100,000-message mailbox so costs the GC a handful of objects, not 100,000
// Buffers in Maps. mailtk.cache's format is folder-file.ts's: records of
// (field name, UID, length, bytes); the file is written in ascending UID.

/** Where each blob of one field is: parallel arrays, `uids` ascending while `sorted`. */
class Column {
  uids = new Uint32Array(64);
  /** Index into `blocks` of each blob. */
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
/** Uint8Array's subarray, called directly: still a Buffer, without Buffer.subarray's JavaScript argument handling. */
const subarray = Uint8Array.prototype.subarray as (this: Buffer, start: number, end: number) => Buffer;

/** b[x, x + n) equals b[y, y + n): a loop, cheaper than Buffer.compare's checks for a few bytes. */
function sameBytes(b: Buffer, x: number, y: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (b[x + i] !== b[y + i]) return false;
  return true;
}
const MAGIC = Buffer.from('MTKCCH1\n');

/** field -> UID -> bytes, for one folder. */
export class FolderCache {
  private columns = new Map<string, Column>();
  /** Blob storage: buffers read from mailtk.cache, and blocks that added blobs are copied into. */
  private blocks: Buffer[] = [];
  /** The block being filled by set(), and how far. */
  private fill = -1;
  private used = 0;

  get(field: string, uid: number): Buffer | undefined {
    const c = this.columns.get(field);
    if (!c) return undefined;
    const i = c.find(uid);
    if (i < 0) return undefined;
    const s = c.start[i];
    return subarray.call(this.blocks[c.block[i]], s, s + c.len[i]);
  }

  has(field: string, uid: number): boolean {
    return (this.columns.get(field)?.find(uid) ?? -1) >= 0;
  }

  /** Keep a copy of `bytes`; a blob already kept for this UID is replaced. */
  set(field: string, uid: number, bytes: Buffer): void {
    let c = this.columns.get(field);
    if (!c) this.columns.set(field, (c = new Column()));
    if (bytes.length > BLOCK / 4) {
      this.blocks.push(Buffer.from(bytes));
      c.push(uid, this.blocks.length - 1, 0, bytes.length);
      return;
    }
    if (this.fill < 0 || this.used + bytes.length > BLOCK) {
      this.blocks.push(Buffer.allocUnsafeSlow(BLOCK));
      this.fill = this.blocks.length - 1;
      this.used = 0;
    }
    const at = this.used;
    this.blocks[this.fill].set(bytes, at); // TypedArray's set: no Buffer.copy argument handling
    this.used += bytes.length;
    c.push(uid, this.fill, at, bytes.length);
  }

  /**
   * Adopt the blobs of a mailtk.cache file (the buffer is kept, not copied),
   * for UIDs `want` accepts and this cache lacks. False when the file is not
   * one of ours or is for another UIDVALIDITY.
   */
  load(b: Buffer, uidValidity: number, want: (uid: number) => boolean): boolean {
    if (b.length < 12 || !b.subarray(0, 8).equals(MAGIC) || b.readUInt32LE(8) !== uidValidity) return false;
    const blockIdx = this.blocks.length;
    this.blocks.push(b);
    const dv = new DataView(b.buffer, b.byteOffset, b.length);
    const read = new Map<string, Column>();
    let lastName = -1;
    let col: Column | undefined;
    let at = 12;
    while (at < b.length) {
      const n = b[at];
      if (at + 1 + n + 8 > b.length) break;
      const uid = dv.getUint32(at + 1 + n, true);
      const len = dv.getUint32(at + 5 + n, true);
      const start = at + 9 + n;
      if (start + len > b.length) break;
      // Field names repeat record after record: compare bytes before making a string.
      if (col === undefined || !sameBytes(b, lastName, at, n + 1)) {
        const field = b.toString('latin1', at + 1, at + 1 + n);
        col = read.get(field);
        if (!col) read.set(field, (col = new Column()));
        lastName = at;
      }
      if (want(uid)) col.push(uid, blockIdx, start, len);
      at = start + len;
    }
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
   * neither held twice while it is written nor left behind as 30 buffers of
   * garbage, which V8 frees only at its next full collection. The blobs of
   * other UIDs are left out, and so dropped at the next load. The UIDs must
   * not change meanwhile.
   */
  *encode(uidValidity: number, uids: ArrayLike<number>): Generator<Buffer> {
    let out = Buffer.allocUnsafe(BLOCK);
    MAGIC.copy(out, 0);
    out.writeUInt32LE(uidValidity >>> 0, 8);
    let at = 12;
    for (const [field, c] of this.columns) {
      const name = Buffer.from(field, 'latin1');
      for (let k = 0; k < uids.length; k++) {
        const i = c.find(uids[k]);
        if (i < 0) continue;
        const len = c.len[i];
        const need = 9 + name.length + len;
        if (at + need > out.length) {
          yield out.subarray(0, at);
          if (need > out.length) out = Buffer.allocUnsafe(need);
          at = 0;
        }
        out[at] = name.length;
        name.copy(out, at + 1);
        out.writeUInt32LE(uids[k], at + 1 + name.length);
        out.writeUInt32LE(len, at + 5 + name.length);
        at += 9 + name.length;
        const s = c.start[i];
        out.set(this.blocks[c.block[i]].subarray(s, s + len), at);
        at += len;
      }
    }
    yield out.subarray(0, at);
  }
}
