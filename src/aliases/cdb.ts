// The cdb file format: D. J. Bernstein's constant database
// (cr.yp.to/cdb/cdb.txt), the format of Postfix's cdb: maps and of tinycdb's
// cdb(1). Leaf module: it knows bytes and files, not aliases. A file is a
// 2048-byte header of 256 (position, slots) pairs, then the records
// (key length, data length, key, data), then 256 linearly probed hash tables
// of (hash, record position) slots; numbers are 32-bit little-endian and the
// hash is h = ((h << 5) + h) ^ c from 5381. Tables have twice as many slots as
// records, as cdbmake makes them.
//
// Reading needs no native module. A file under READ_WHOLE_BYTES (about 20,000
// aliases) is read whole when opened; a bigger one keeps its descriptor, and
// each lookup is two pread(2)s (a run of slots, a record), so opening costs
// the same however big the file is. (Measured, open and lookups in a new
// process: on a 4.7 MB file one lookup took 1.2 ms by pread against 5.9 ms
// reading it whole, 300 lookups 6.3 against 7.4 ms, 3,000 lookups 82 against
// 21 ms; on a 5 KB file reading it whole won at any count. The two cross
// near 1 MB for the one lookup of a typical delivery.) Either way a
// rebuild renaming a new file over the path leaves an open CdbFile on the old
// inode. Every position read from the file is checked against its size
// first: a truncated or garbage file is a CdbError naming the file, never a
// crash or a read out of bounds.

import fs from 'node:fs';
import os from 'node:os';

export const HEADER_BYTES = 2048;
const TABLES = 256;
const SLOT_BYTES = 8;
/** Slots read per pread: most lookups end within the first one or two. */
const SLOTS_PER_READ = 8;
/** Bytes read after a record's key on the first pread: most alias values fit. */
const DATA_GUESS = 256;
/** Files smaller than this are read whole when opened. */
export const READ_WHOLE_BYTES = 1 << 20;
const LITTLE_ENDIAN = os.endianness() === 'LE';

/** A file that is not a sound cdb: the message names the file and what is wrong. */
export class CdbError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`);
  }
}

export function cdbHash(buf: Uint8Array, start: number, end: number): number {
  let h = 5381;
  for (let i = start; i < end; i++) h = Math.imul(h, 33) ^ buf[i];
  return h >>> 0;
}

// ---------------------------------------------------------------- writing

/**
 * The records area of a file being made: HEADER_BYTES left free for the
 * header, then records appended by add() or written in place by a caller that
 * knows the layout (builder.ts does, for speed); then CdbTables.
 */
export class CdbRecords {
  buf: Buffer;
  /** Bytes used, header space included: where the next record goes. */
  len = HEADER_BYTES;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, HEADER_BYTES + 1024));
  }

  /** Room for `need` more bytes; the buffer may move. */
  reserve(need: number): Buffer {
    if (this.len + need > this.buf.length) {
      const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + need));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
    }
    return this.buf;
  }

  /** Appends one record; returns its position. The key's hash is the caller's to keep. */
  add(key: Buffer, data: Buffer): number {
    const at = this.len;
    const buf = this.reserve(SLOT_BYTES + key.length + data.length);
    buf.writeUInt32LE(key.length, at);
    buf.writeUInt32LE(data.length, at + 4);
    key.copy(buf, at + 8);
    data.copy(buf, at + 8 + key.length);
    this.len = at + SLOT_BYTES + key.length + data.length;
    return at;
  }
}

/**
 * The hash tables of a file being made. Built for a known number of records
 * per table (hash & 255), each table twice that many slots, as cdbmake makes
 * them; then each record is placed, then finish() writes the header. Unlike
 * cdbmake, where the first of two records with one key is found, place() lets
 * the later take the earlier's slot and says so: an aliases file's last
 * definition wins.
 */
export class CdbTables {
  /** Each table's first slot, counted from the end of the records. */
  private readonly first = new Uint32Array(TABLES);
  private readonly sizes = new Uint32Array(TABLES);
  /** (hash, position) pairs, table after table. */
  private readonly slots: Uint32Array;

  constructor(counts: Uint32Array) {
    let total = 0;
    for (let t = 0; t < TABLES; t++) {
      this.first[t] = total;
      this.sizes[t] = 2 * counts[t];
      total += this.sizes[t];
    }
    this.slots = new Uint32Array(total * 2);
  }

  /**
   * Places the record at `position` (in `records`) whose key hashes to
   * `hash`. Returns 0, or the position of an earlier record with the same key,
   * whose slot this one now has.
   */
  place(hash: number, position: number, records: Buffer): number {
    const t = hash & 0xff;
    const size = this.sizes[t];
    const base = this.first[t] * 2;
    const slots = this.slots;
    let s = (hash >>> 8) % size;
    for (;;) {
      const at = base + s * 2;
      const there = slots[at + 1];
      if (there === 0) {
        slots[at] = hash;
        slots[at + 1] = position;
        return 0;
      }
      if (slots[at] === hash && sameKey(records, there, position)) {
        slots[at + 1] = position;
        return there;
      }
      s = s + 1 === size ? 0 : s + 1;
    }
  }

  /** The finished file as two buffers to write in order: header and records, then the tables. */
  finish(records: CdbRecords): [Buffer, Buffer] {
    const end = records.len;
    if (end + this.slots.byteLength > 0xffffffff) throw new Error('alias database over 4 GB: the cdb format cannot hold it');
    const header = new Uint32Array(TABLES * 2);
    for (let t = 0; t < TABLES; t++) {
      header[t * 2] = end + this.first[t] * SLOT_BYTES;
      header[t * 2 + 1] = this.sizes[t];
    }
    const head = Buffer.from(header.buffer, header.byteOffset, HEADER_BYTES);
    const tables = Buffer.from(this.slots.buffer, this.slots.byteOffset, this.slots.byteLength);
    if (!LITTLE_ENDIAN) {
      head.swap32();
      tables.swap32();
    }
    head.copy(records.buf, 0);
    return [records.buf.subarray(0, end), tables];
  }
}

/** Records per hash table, for these hashes. */
export function countTables(hashes: Uint32Array): Uint32Array {
  const counts = new Uint32Array(TABLES);
  for (let i = 0; i < hashes.length; i++) counts[hashes[i] & 0xff]++;
  return counts;
}

/** Whether the records at a and b have one key. */
function sameKey(records: Buffer, a: number, b: number): boolean {
  const len = records.readUInt32LE(a);
  if (len !== records.readUInt32LE(b)) return false;
  return records.compare(records, b + SLOT_BYTES, b + SLOT_BYTES + len, a + SLOT_BYTES, a + SLOT_BYTES + len) === 0;
}

// ---------------------------------------------------------------- reading

export interface CdbOpenOptions {
  /** Read the whole file now (true) or pread each lookup (false); by default, by its size. */
  whole?: boolean;
}

export class CdbFile {
  private readonly header: Uint32Array;
  /** Where the hash tables begin: every record lies between the header and here. */
  private readonly recordsEnd: number;
  private readonly slotBuf = Buffer.allocUnsafe(SLOTS_PER_READ * SLOT_BYTES);
  /** The whole file, when it was read whole; else lookups pread from fd. */
  private readonly bytes: Buffer | undefined;
  private fd: number | undefined;
  private closed = false;

  private constructor(
    readonly file: string,
    fd: number,
    readonly size: number,
    whole: boolean,
  ) {
    this.fd = fd;
    if (whole) {
      this.bytes = this.read(0, size, Buffer.allocUnsafe(size));
      this.fd = undefined;
    }
    const head = this.read(0, HEADER_BYTES);
    this.header = new Uint32Array(TABLES * 2);
    for (let i = 0; i < TABLES * 2; i++) this.header[i] = head.readUInt32LE(i * 4);
    this.recordsEnd = this.checkHeader();
  }

  /** Opens and checks the header; throws CdbError (or the open's own error). */
  static open(file: string, opts: CdbOpenOptions = {}): CdbFile {
    const fd = fs.openSync(file, 'r');
    let keep = false;
    try {
      const size = fs.fstatSync(fd).size;
      if (size < HEADER_BYTES) throw new CdbError(file, `truncated or not a cdb file (${size} bytes; a cdb file has a ${HEADER_BYTES}-byte header)`);
      if (size > 0xffffffff) throw new CdbError(file, `not a cdb file: ${size} bytes, over the format's 4 GB`);
      const whole = opts.whole ?? size < READ_WHOLE_BYTES;
      const db = new CdbFile(file, fd, size, whole);
      keep = !whole;
      return db;
    } finally {
      if (!keep) fs.closeSync(fd);
    }
  }

  /** Tables inside the file, after the header, ending exactly where the file ends. */
  private checkHeader(): number {
    let start = this.size;
    let end = HEADER_BYTES;
    for (let t = 0; t < TABLES; t++) {
      const pos = this.header[t * 2];
      if (pos < HEADER_BYTES) throw new CdbError(this.file, `not a cdb file: hash table ${t} would start at byte ${pos}, inside the header`);
      if (pos < start) start = pos;
      end = Math.max(end, pos + this.header[t * 2 + 1] * SLOT_BYTES);
    }
    if (end > this.size) throw new CdbError(this.file, `truncated or not a cdb file: its hash tables end at byte ${end}, the file has ${this.size}`);
    if (end < this.size) throw new CdbError(this.file, `not a cdb file: its hash tables end at byte ${end}, the file has ${this.size}`);
    return start;
  }

  /** The data of the first record with this key, or undefined. */
  get(key: Buffer): Buffer | undefined {
    const h = cdbHash(key, 0, key.length);
    const t = h & 0xff;
    const pos = this.header[t * 2];
    const size = this.header[t * 2 + 1];
    if (size === 0) return undefined;
    let s = (h >>> 8) % size;
    for (let probed = 0; probed < size; ) {
      const run = Math.min(SLOTS_PER_READ, size - s, size - probed);
      const slots = this.read(pos + s * SLOT_BYTES, run * SLOT_BYTES, this.slotBuf);
      for (let k = 0; k < run; k++) {
        const at = slots.readUInt32LE(k * SLOT_BYTES + 4);
        if (at === 0) return undefined;
        if (slots.readUInt32LE(k * SLOT_BYTES) === h) {
          const data = this.record(at, key);
          if (data) return data;
        }
      }
      probed += run;
      s = (s + run) % size;
    }
    return undefined;
  }

  /** The record at `at`: its data when its key is `key`. */
  private record(at: number, key: Buffer): Buffer | undefined {
    if (at < HEADER_BYTES || at + SLOT_BYTES > this.recordsEnd) throw this.corrupt(`record position ${at}`);
    const first = this.read(at, Math.min(SLOT_BYTES + key.length + DATA_GUESS, this.recordsEnd - at));
    const klen = first.readUInt32LE(0);
    const dlen = first.readUInt32LE(4);
    if (klen > this.recordsEnd - at - SLOT_BYTES || dlen > this.recordsEnd - at - SLOT_BYTES - klen) throw this.corrupt(`record at ${at} runs past the records`);
    if (klen !== key.length || !key.equals(first.subarray(SLOT_BYTES, SLOT_BYTES + klen))) return undefined;
    const start = SLOT_BYTES + klen;
    if (start + dlen <= first.length) return first.subarray(start, start + dlen);
    return this.read(at + start, dlen);
  }

  private corrupt(what: string): CdbError {
    return new CdbError(this.file, `corrupt cdb file: ${what} is out of bounds (hash tables start at ${this.recordsEnd})`);
  }

  /** Exactly `length` bytes at `position` (a view of them when the file was read whole), or a CdbError. */
  private read(position: number, length: number, into?: Buffer): Buffer {
    if (this.closed) throw new Error(`${this.file}: read after close`);
    if (this.bytes) return this.bytes.subarray(position, position + length);
    const buf = into && into.length >= length ? into : Buffer.allocUnsafe(length);
    for (let got = 0; got < length; ) {
      const n = fs.readSync(this.fd as number, buf, got, length - got, position + got);
      if (n === 0) throw new CdbError(this.file, `short read: ${got} of ${length} bytes at ${position} (the file shrank?)`);
      got += n;
    }
    return buf;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    this.closed = true;
  }
}
