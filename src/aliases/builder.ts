// Turns an aliases(5) file's bytes into the hashed buckets of format.ts, with
// sendmail's statistics, duplicate warnings and file:line errors. Guarantees
// the same records as parseAliases() would give: the byte-level fast path
// takes only plain lines (ASCII names, addresses, /files and "|programs",
// commas, white space) and hands every other logical line to parseAliases()
// itself; builder.test.ts compares the two paths on edge cases and random files.
//
// How we do it: one pass over the bytes; each record is written straight into
// its bucket's slice of one preallocated slab (a bucket that outgrows its
// slice moves to a buffer of its own). A second tight pass over the entries'
// name hashes (open addressing) finds duplicates. Nothing is allocated per
// alias on the fast path, so the garbage collector stays idle: this is what
// lets newaliases keep up with Postfix's postalias.

import { BUCKET_BYTES, DEAD, FIELD, RECORD, hashBytes, recordText } from './format.ts';
import { parseAliases, type ParseError } from './parse.ts';

export interface Built {
  /** Bucket contents by bucket number; empty buckets are zero-length. */
  buckets: Buffer[];
  count: number;
  longest: number;
  total: number;
  warnings: string[];
  errors: ParseError[];
}

export interface BuildOptions {
  onProgress?: (done: number) => void;
  /** Send every line through parseAliases(): tests compare the two paths. */
  slowOnly?: boolean;
}

const NL = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const QUOTE = 0x22;
const HASH = 0x23;
const SLASH = 0x2f;
const COLON = 0x3a;
const COMMA = 0x2c;
const AT = 0x40;
const BACKSLASH = 0x5c;
const PIPE = 0x7c;
const PROGRESS_EVERY = 10000;
/** Fewer bytes per alias than real files have (the benchmark's: 27). */
const ESTIMATED_ENTRY_BYTES = 16;
/** Entry fields, in one Int32Array: bucket, offset in bucket, name bytes, hash, line, RHS bytes. */
const STRIDE = 6;

/** Bytes the fast path takes in a member: printable ASCII minus syntax. */
const PLAIN = new Uint8Array(256);
for (let b = 0x21; b < 0x7f; b++) PLAIN[b] = 1;
for (const c of '"()<>\\|:,') PLAIN[c.charCodeAt(0)] = 0;
/** ... in a name, where `@` and `/` are errors the slow path words. */
const PLAIN_NAME = PLAIN.slice();
PLAIN_NAME[AT] = 0;
PLAIN_NAME[SLASH] = 0;
/** ... and inside a quoted "|program": printable ASCII and tab, but no `"` or `\`. */
const QUOTED = new Uint8Array(256);
for (let b = 0x20; b < 0x7f; b++) QUOTED[b] = 1;
QUOTED[TAB] = 1;
QUOTED[QUOTE] = 0;
QUOTED[BACKSLASH] = 0;

export function buildBuckets(src: Buffer, file: string, opts: BuildOptions = {}): Built {
  const b = new BucketBuilder(src, file, opts);
  scanFile(b);
  b.resolveDuplicates();
  return b.finish();
}

/**
 * The hot loop, in one function on purpose: V8 optimises a long-running loop
 * in place (on-stack replacement) within a few thousand iterations, while a
 * per-entry function waits for its own tier-up and runs 5x slower meanwhile.
 * Plain entries are written here byte by byte into their bucket; at the first
 * byte the fast path does not handle, the entry goes to b.slow() instead.
 */
function scanFile(b: BucketBuilder): void {
  const { src, mask, bufs, lens } = b;
  const n = src.length;
  const slowOnly = Boolean(b.opts.slowOnly);
  let pos = 0;
  let line = 1;
  while (pos < n) {
    const c0 = src[pos];
    if (c0 === NL) { pos++; line++; continue; }
    if (c0 === HASH) {
      while (pos < n && src[pos] !== NL) pos++;
      continue;
    }
    // Often enough that V8 has seen the call before it optimises this loop;
    // a call it has not seen would throw the optimised code away.
    if ((b.n & 63) === 0) b.progress();
    if (c0 === SP || c0 === TAB || slowOnly) { pos = b.slow(pos, line); line = b.line; continue; }
    // Name: plain ASCII up to the colon, folded and hashed (FNV-1a) as we go.
    const entryStart = pos;
    let i = pos;
    let h = 0x811c9dc5 | 0;
    for (; i < n; i++) {
      let c = src[i];
      if (c === COLON || PLAIN_NAME[c] === 0) break;
      if (c >= 0x41 && c <= 0x5a) c += 0x20;
      h = Math.imul(h ^ c, 0x01000193);
    }
    const nameLen = i - entryStart;
    if (src[i] !== COLON || nameLen === 0) { pos = b.slow(pos, line); line = b.line; continue; }
    const hash = h >>> 0;
    const bucket = hash & mask;
    const out = bufs[bucket];
    const start = lens[bucket];
    const room = out.length - 2;
    let o = start;
    for (let k = entryStart; k < i && o < room; k++) {
      const c = src[k];
      out[o++] = c >= 0x41 && c <= 0x5a ? c + 0x20 : c;
    }
    out[o++] = FIELD;
    // Members: runs of PLAIN bytes, or "|programs", separated by commas and
    // white space, up to a newline that no space or tab follows.
    let rhsStart = -1;
    let newlines = 0;
    let rhsNewlines = 0;
    let members = 0;
    let inMember = false;
    let afterMember = false; // a member ended, and no comma yet
    let ok = true;
    for (i++; i < n; i++) {
      const c = src[i];
      if (c === NL) {
        const next = src[i + 1];
        if (i + 1 >= n || (next !== SP && next !== TAB)) break;
        if (indentedComment(src, i + 1, n)) { ok = false; break; }
        newlines++;
        if (rhsStart >= 0) rhsNewlines++;
      } else if (c !== SP && c !== TAB) {
        if (rhsStart < 0) rhsStart = i;
        if (c === COMMA) {
          if (inMember && src[i - 1] === AT) { ok = false; break; }
          inMember = false;
          afterMember = false;
          continue;
        }
        if (!inMember && (afterMember || c === AT)) { ok = false; break; } // "a b": the slow path words it
        if (c === QUOTE && !inMember) {
          // "|command": copied without its quotes, trimmed, as parse.ts does.
          if (src[i + 1] !== PIPE) { ok = false; break; }
          let close = i + 2;
          while (close < n && QUOTED[src[close]] === 1) close++;
          if (src[close] !== QUOTE || o + (close - i) > room) { ok = false; break; }
          let from = i + 2;
          let to = close;
          while (from < to && (src[from] === SP || src[from] === TAB)) from++;
          while (to > from && (src[to - 1] === SP || src[to - 1] === TAB)) to--;
          if (from === to) { ok = false; break; }
          if (members > 0) out[o++] = FIELD;
          members++;
          out[o++] = PIPE;
          for (let k = from; k < to; k++) out[o++] = src[k];
          i = close;
          afterMember = true;
          continue;
        }
        if (PLAIN[c] === 0 || o >= room) { ok = false; break; }
        if (!inMember) {
          if (members > 0) out[o++] = FIELD;
          members++;
          inMember = true;
        }
        out[o++] = c;
        continue;
      }
      if (inMember) {
        if (src[i - 1] === AT) { ok = false; break; }
        inMember = false;
        afterMember = true;
      }
    }
    if (!ok || members === 0 || (inMember && src[i - 1] === AT)) {
      if (o >= room) b.grow(bucket, i - entryStart + 2);
      pos = b.slow(entryStart, line);
      line = b.line;
      continue;
    }
    out[o++] = RECORD;
    lens[bucket] = o;
    b.add(bucket, start, nameLen, hash, line, i - rhsStart - rhsNewlines);
    pos = i + 1;
    line += newlines + 1;
  }
}

/** Buckets under construction, the entries written, and what was found on the way. */
class BucketBuilder {
  readonly mask: number;
  readonly bufs: Buffer[] = [];
  readonly lens: Int32Array;
  /** Entries recorded so far. */
  n = 0;
  /** The line after the last logical line slow() handled. */
  line = 1;
  private reported = 0;
  /** STRIDE fields per entry; sized from the file so it rarely grows mid-scan. */
  private ent: Int32Array;
  private dead: Uint8Array;
  private readonly deadBuckets = new Set<number>();
  private readonly warnings: string[] = [];
  private readonly errors: ParseError[] = [];

  constructor(
    readonly src: Buffer,
    private readonly file: string,
    readonly opts: BuildOptions,
  ) {
    let nb = 1;
    while (nb * BUCKET_BYTES < src.length) nb *= 2;
    this.mask = nb - 1;
    this.lens = new Int32Array(nb);
    const slice = Math.ceil((src.length / nb) * 1.5) + 256;
    const slab = Buffer.allocUnsafe(slice * nb);
    for (let i = 0; i < nb; i++) this.bufs.push(slab.subarray(i * slice, (i + 1) * slice));
    const entries = Math.max(1024, Math.ceil(src.length / ESTIMATED_ENTRY_BYTES));
    this.ent = new Int32Array(entries * STRIDE);
    this.dead = new Uint8Array(entries);
  }

  /** Calls onProgress every PROGRESS_EVERY entries. */
  progress(): void {
    if (this.n < this.reported + PROGRESS_EVERY) return;
    this.reported = this.n;
    this.opts.onProgress?.(this.n);
  }

  add(bucket: number, offset: number, nameLen: number, hash: number, line: number, rhs: number): void {
    if ((this.n + 1) * STRIDE > this.ent.length) this.growEntries();
    const at = this.n++ * STRIDE;
    const ent = this.ent;
    ent[at] = bucket;
    ent[at + 1] = offset;
    ent[at + 2] = nameLen;
    ent[at + 3] = hash;
    ent[at + 4] = line;
    ent[at + 5] = rhs;
  }

  private growEntries(): void {
    const ent = new Int32Array(this.ent.length * 2);
    ent.set(this.ent);
    this.ent = ent;
    const dead = new Uint8Array(this.dead.length * 2);
    dead.set(this.dead);
    this.dead = dead;
  }

  /**
   * The logical line at pos, whatever it holds: parseAliases() decides, and
   * its record is copied in. Returns where the next line starts; sets `line`.
   */
  slow(pos: number, line: number): number {
    const [end, lines] = logicalEnd(this.src, pos);
    const parsed = parseAliases(this.src.toString('utf8', pos, end), this.file);
    for (const e of parsed.errors) this.errors.push({ line: e.line + line - 1, message: e.message });
    for (const entry of parsed.entries) this.addRecord(entry.name, entry.members, entry.line + line - 1, entry.rhsBytes);
    this.line = line + lines;
    return end + 1;
  }

  private addRecord(name: string, members: string[], line: number, rhsBytes: number): void {
    const record = Buffer.from(recordText(name, members), 'utf8');
    const nameLen = Buffer.byteLength(name, 'utf8');
    const hash = hashBytes(record, 0, nameLen);
    const bucket = hash & this.mask;
    if (this.lens[bucket] + record.length > this.bufs[bucket].length) this.grow(bucket, record.length);
    const start = this.lens[bucket];
    record.copy(this.bufs[bucket], start);
    this.lens[bucket] = start + record.length;
    this.add(bucket, start, nameLen, hash, line, rhsBytes);
  }

  /** Room for `need` more bytes in a bucket: it moves out of the slab (hash imbalance, rare). */
  grow(bucket: number, need: number): void {
    const buf = this.bufs[bucket];
    const len = this.lens[bucket];
    const bigger = Buffer.allocUnsafe(Math.max(buf.length * 2, len + need));
    buf.copy(bigger, 0, 0, len);
    this.bufs[bucket] = bigger;
  }

  /** An open-addressing table of name hashes; a later entry of the same name kills the earlier. */
  resolveDuplicates(): void {
    const ent = this.ent;
    let slots = 2;
    while (slots < this.n * 2) slots *= 2;
    const table = new Int32Array(slots); // entry index + 1; 0 = empty
    const mask = slots - 1;
    for (let e = 0; e < this.n; e++) {
      const hash = ent[e * STRIDE + 3];
      for (let s = hash & mask; ; s = (s + 1) & mask) {
        const x = table[s] - 1;
        if (x < 0) {
          table[s] = e + 1;
          break;
        }
        if (ent[x * STRIDE + 3] === hash && this.sameName(x, e)) {
          this.kill(x, e);
          table[s] = e + 1;
          break;
        }
      }
    }
  }

  private sameName(a: number, b: number): boolean {
    const ent = this.ent;
    const len = ent[a * STRIDE + 2];
    if (len !== ent[b * STRIDE + 2] || ent[a * STRIDE] !== ent[b * STRIDE]) return false;
    const buf = this.bufs[ent[a * STRIDE]];
    const oa = ent[a * STRIDE + 1];
    const ob = ent[b * STRIDE + 1];
    for (let i = 0; i < len; i++) if (buf[oa + i] !== buf[ob + i]) return false;
    return true;
  }

  private kill(old: number, now: number): void {
    const ent = this.ent;
    const bucket = ent[old * STRIDE];
    const buf = this.bufs[bucket];
    const offset = ent[old * STRIDE + 1];
    const name = buf.toString('utf8', offset, offset + ent[old * STRIDE + 2]);
    buf[offset] = DEAD;
    this.dead[old] = 1;
    this.deadBuckets.add(bucket);
    this.warnings.push(
      `${this.file}:${ent[now * STRIDE + 4]}: warning: duplicate alias name ${name} (also on line ${ent[old * STRIDE + 4]}; the last one wins)`,
    );
  }

  finish(): Built {
    let count = 0;
    let longest = 0;
    let total = 0;
    for (let e = 0; e < this.n; e++) {
      if (this.dead[e]) continue;
      const rhs = this.ent[e * STRIDE + 5];
      count++;
      total += this.ent[e * STRIDE + 2] + rhs;
      if (rhs > longest) longest = rhs;
    }
    const buckets = this.bufs.map((buf, i) => (this.deadBuckets.has(i) ? compact(buf, this.lens[i]) : buf.subarray(0, this.lens[i])));
    return { buckets, count, longest, total, warnings: this.warnings, errors: this.errors };
  }
}

/** A bucket without the records that later duplicates replaced. */
function compact(buf: Buffer, len: number): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < len; ) {
    let end = buf.indexOf(RECORD, at);
    if (end < 0 || end >= len) end = len - 1;
    if (buf[at] !== DEAD) parts.push(buf.subarray(at, end + 1));
    at = end + 1;
  }
  return Buffer.concat(parts);
}

function lineEnd(src: Buffer, pos: number): number {
  const nl = src.indexOf(NL, pos);
  return nl < 0 ? src.length : nl;
}

/**
 * End (the newline, or the end of input) of the logical line starting at pos
 * and the physical lines it spans, by the joining rules of parse.ts. A line
 * that starts with white space stands alone: it continues nothing.
 */
function logicalEnd(src: Buffer, pos: number): [number, number] {
  const n = src.length;
  let end = lineEnd(src, pos);
  if (src[pos] === SP || src[pos] === TAB) return [end, 1];
  let lines = 1;
  let backslash = endsInBackslash(src, pos, end);
  while (end + 1 < n) {
    const c = src[end + 1];
    if (!backslash && c !== SP && c !== TAB) break;
    const nextEnd = lineEnd(src, end + 1);
    if (backslash || !indentedComment(src, end + 1, nextEnd)) backslash = endsInBackslash(src, end + 1, nextEnd);
    end = nextEnd;
    lines++;
  }
  return [end, lines];
}

function endsInBackslash(src: Buffer, start: number, end: number): boolean {
  let last = end - 1;
  if (last >= start && src[last] === CR) last--;
  return last >= start && src[last] === BACKSLASH;
}

/** Whether the line at pos is white space then `#` (a comment inside an entry). */
function indentedComment(src: Buffer, pos: number, end: number): boolean {
  let i = pos;
  while (i < end && (src[i] === SP || src[i] === TAB)) i++;
  return i < end && src[i] === HASH;
}
