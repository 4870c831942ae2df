// Turns an aliases(5) file's bytes into the records of a cdb file (cdb.ts,
// format.ts), with sendmail's statistics, duplicate warnings and file:line
// errors. Guarantees the same records as parseAliases() would give: the
// byte-level fast path takes only plain lines (ASCII names, addresses,
// /files, "|programs" and :include:/paths, commas, white space) and hands
// every other logical line to parseAliases() itself; builder.test.ts compares
// the two paths on edge cases and random files.
//
// How we do it: one pass over the bytes; each alias is written straight into
// one preallocated buffer as a cdb record (lengths, lower-cased name, members
// separated by newlines) while the name's cdb hash is computed on the way.
// A second tight pass places the records in cdb's hash tables, which finds
// duplicates on the way; the few records they replace are squeezed out.
// Nothing is allocated per alias on the fast path, so the garbage collector
// stays idle: this is what lets newaliases keep up with Postfix's postalias.
// (The LMDB database this replaced grouped aliases in hashed buckets because
// a B-tree put per alias was too slow; a cdb record costs a few byte writes.)

import { CdbRecords, CdbTables, HEADER_BYTES, cdbHash, countTables } from './cdb.ts';
import { META_KEY, MEMBER_SEP, dataOf } from './format.ts';
import { parseAliases, type ParseError } from './parse.ts';

export interface Built {
  /** The cdb records, in file order, after HEADER_BYTES left for the header. */
  records: CdbRecords;
  /** Their hash tables, with one slot left for the meta record (META_KEY). */
  tables: CdbTables;
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
/** ":include:" after its colon; `| 0x20` folds the letters' case and leaves the colon. */
const INCLUDE = Buffer.from('include:');
/** Fewer bytes per alias than real files have (the benchmark's: 27). */
const ESTIMATED_ENTRY_BYTES = 16;
/** A record's key and data lengths, before them. */
const RECORD_HEAD = 8;
const META_HASH = cdbHash(Buffer.from(META_KEY), 0, META_KEY.length);

/** What a byte is to the fast path inside a right-hand side. */
const OTHER = 0; // anything the fast path leaves to parse.ts
const MEMBER = 1; // printable ASCII minus syntax
const BLANK = 2; // space, tab
const SEPARATOR = 3; // comma
const NEWLINE = 4;
const QUOTES = 5; // "|program"
const INCLUDES = 6; // :include:/path
const AT_SIGN = 7; // in a member, but neither first nor last
const CLASS = new Uint8Array(256);
for (let b = 0x21; b < 0x7f; b++) CLASS[b] = MEMBER;
for (const c of '()<>\\|') CLASS[c.charCodeAt(0)] = OTHER;
CLASS[SP] = BLANK;
CLASS[TAB] = BLANK;
CLASS[COMMA] = SEPARATOR;
CLASS[NL] = NEWLINE;
CLASS[QUOTE] = QUOTES;
CLASS[COLON] = INCLUDES;
CLASS[AT] = AT_SIGN;
/** A name byte lower-cased, or 0 for the colon and for bytes the fast path leaves to parse.ts (`@`, `/`, syntax, non-ASCII). */
const NAME_BYTE = new Uint8Array(256);
for (let b = 0; b < 256; b++) if (CLASS[b] === MEMBER && b !== SLASH) NAME_BYTE[b] = b >= 0x41 && b <= 0x5a ? b + 0x20 : b;
/** Bytes inside a quoted "|program": printable ASCII and tab, but no `"` or `\`. */
const QUOTED = new Uint8Array(256);
for (let b = 0x20; b < 0x7f; b++) QUOTED[b] = 1;
QUOTED[TAB] = 1;
QUOTED[QUOTE] = 0;
QUOTED[BACKSLASH] = 0;

export function buildAliases(src: Buffer, file: string, opts: BuildOptions = {}): Built {
  const b = new RecordBuilder(src, file, opts);
  scanFile(b);
  const tables = b.placeAll();
  return b.finish(tables);
}

/**
 * The hot loop, in one function on purpose: V8 optimises a long-running loop
 * in place (on-stack replacement) within a few thousand iterations, while a
 * per-entry function waits for its own tier-up and runs 5x slower meanwhile.
 * Plain entries are written here byte by byte as records; at the first byte
 * the fast path does not handle, the entry goes to b.slow() instead. Bytes
 * are classified by table lookups, the common case (a byte inside a member)
 * first, so that the loop is short even before V8 has optimised it.
 */
function scanFile(b: RecordBuilder): void {
  const { src, rec } = b;
  const n = src.length;
  const slowOnly = Boolean(b.opts.slowOnly);
  let out = rec.buf;
  let pos = 0;
  let line = 1;
  while (pos < n) {
    const c0 = src[pos];
    if (c0 === NL) { pos++; line++; continue; }
    if (c0 === HASH) {
      pos = lineEnd(src, pos);
      continue;
    }
    // Often enough that V8 has seen the call before it optimises this loop;
    // a call it has not seen would throw the optimised code away.
    if ((b.n & 63) === 0) b.progress();
    if (c0 === SP || c0 === TAB || slowOnly) { pos = b.slow(pos, line); line = b.line; out = rec.buf; continue; }
    // A fast record is at most its source bytes plus RECORD_HEAD: with room
    // for the rest of the file, no byte below needs a bounds check.
    const start = rec.len;
    if (out.length - start < RECORD_HEAD + n - pos) out = rec.reserve(RECORD_HEAD + n - pos);
    // Name: up to the colon, lower-cased, copied and hashed (cdb's hash) as we go.
    let o = start + RECORD_HEAD;
    let h = 5381;
    let i = pos;
    for (; i < n; i++) {
      const f = NAME_BYTE[src[i]];
      if (f === 0) break;
      h = Math.imul(h, 33) ^ f;
      out[o++] = f;
    }
    const nameLen = i - pos;
    if (src[i] !== COLON || nameLen === 0) { pos = b.slow(pos, line); line = b.line; out = rec.buf; continue; }
    const dataStart = o;
    // Members: runs of MEMBER bytes, "|programs" or :include:/paths, separated
    // by commas and blanks, up to a newline that no space or tab follows.
    let rhsStart = -1;
    let newlines = 0;
    let rhsNewlines = 0;
    let members = 0;
    let inMember = false;
    let afterMember = false; // a member ended, and no comma yet
    let ok = true;
    for (i++; i < n; i++) {
      const c = src[i];
      const cls = CLASS[c];
      if (cls === MEMBER && inMember) {
        out[o++] = c;
        continue;
      }
      if (cls === BLANK || cls === SEPARATOR || cls === NEWLINE) {
        if (inMember) {
          if (src[i - 1] === AT) { ok = false; break; } // "user@": the slow path words it
          inMember = false;
          afterMember = true;
        }
        if (cls === SEPARATOR) {
          if (rhsStart < 0) rhsStart = i;
          afterMember = false;
        } else if (cls === NEWLINE) {
          const next = src[i + 1];
          if (i + 1 >= n || (next !== SP && next !== TAB)) break;
          if (indentedComment(src, i + 1, n)) { ok = false; break; }
          newlines++;
          if (rhsStart >= 0) rhsNewlines++;
        }
        continue;
      }
      if (cls === AT_SIGN && inMember) {
        out[o++] = c;
        continue;
      }
      // The first byte of a member: after a comma (or the colon), never after
      // or inside another member ("a b", "@a", a"|b": the slow path words them).
      if (cls === OTHER || cls === AT_SIGN || afterMember || inMember) { ok = false; break; }
      if (rhsStart < 0) rhsStart = i;
      if (members > 0) out[o++] = MEMBER_SEP;
      members++;
      if (cls === MEMBER) {
        out[o++] = c;
        inMember = true;
      } else if (cls === QUOTES) {
        o = copyProgram(src, i, out, o, b);
        if (o < 0) { ok = false; break; }
        i = b.at;
        afterMember = true;
      } else {
        o = copyInclude(src, i, out, o, b);
        if (o < 0) { ok = false; break; }
        i = b.at - 1; // the path's bytes follow as a plain member's
        inMember = true;
      }
    }
    if (!ok || members === 0 || (inMember && src[i - 1] === AT)) {
      pos = b.slow(pos, line);
      line = b.line;
      out = rec.buf;
      continue;
    }
    const dlen = o - dataStart;
    out[start] = nameLen;
    out[start + 1] = nameLen >>> 8;
    out[start + 2] = nameLen >>> 16;
    out[start + 3] = nameLen >>> 24;
    out[start + 4] = dlen;
    out[start + 5] = dlen >>> 8;
    out[start + 6] = dlen >>> 16;
    out[start + 7] = dlen >>> 24;
    rec.len = o;
    b.add(start, nameLen, h >>> 0, line, i - rhsStart - rhsNewlines);
    pos = i + 1;
    line += newlines + 1;
  }
}

/**
 * A quoted "|command" at src[i] copied to out[o] without its quotes, trimmed,
 * as parse.ts does. Returns the new o, or -1 for the slow path; b.at is the
 * closing quote. (Rare members get functions of their own: V8 compiles the
 * hot loop faster without them.)
 */
function copyProgram(src: Buffer, i: number, out: Buffer, o: number, b: RecordBuilder): number {
  if (src[i + 1] !== PIPE) return -1;
  let close = i + 2;
  while (close < src.length && QUOTED[src[close]] === 1) close++;
  if (src[close] !== QUOTE) return -1;
  let from = i + 2;
  let to = close;
  while (from < to && (src[from] === SP || src[from] === TAB)) from++;
  while (to > from && (src[to - 1] === SP || src[to - 1] === TAB)) to--;
  if (from === to) return -1;
  out[o++] = PIPE;
  for (let k = from; k < to; k++) out[o++] = src[k];
  b.at = close;
  return o;
}

/**
 * :include: at src[i], written as parse.ts does: ":include:" lower-cased, the
 * path joined to it. Returns the new o, or -1 for the slow path; b.at is the
 * path's first byte, which the caller copies as a plain member's.
 */
function copyInclude(src: Buffer, i: number, out: Buffer, o: number, b: RecordBuilder): number {
  let k = 0;
  while (k < INCLUDE.length && (src[i + 1 + k] | 0x20) === INCLUDE[k]) k++;
  let path = i + 1 + k;
  while (path < src.length && (src[path] === SP || src[path] === TAB)) path++;
  if (k < INCLUDE.length || src[path] !== SLASH) return -1;
  out[o++] = COLON;
  for (k = 0; k < INCLUDE.length; k++) out[o++] = INCLUDE[k];
  b.at = path;
  return o;
}

/** The records written, the entries they hold, and what was found on the way. */
class RecordBuilder {
  readonly rec: CdbRecords;
  /** Entries recorded so far, replaced ones included. */
  n = 0;
  /** The line after the last logical line slow() handled. */
  line = 1;
  /** Where copyProgram() and copyInclude() stopped. */
  at = 0;
  /** Starts below zero so the first report (0) comes before V8 optimises the loop that makes it. */
  private reported = -PROGRESS_EVERY;
  // One slot per entry, sized from the file so they rarely grow mid-scan.
  private hashes: Uint32Array;
  private positions: Uint32Array;
  private lines: Int32Array;
  private rhs: Int32Array;
  /** Entries per cdb hash table (hash & 255). */
  private readonly counts = new Uint32Array(256);
  private dead: Uint8Array | undefined;
  private deadCount = 0;
  private longest = 0;
  private total = 0;
  private readonly warnings: string[] = [];
  private readonly errors: ParseError[] = [];

  constructor(
    readonly src: Buffer,
    private readonly file: string,
    readonly opts: BuildOptions,
  ) {
    const entries = Math.max(1024, Math.ceil(src.length / ESTIMATED_ENTRY_BYTES));
    // A plain record is its source line less ": " plus RECORD_HEAD.
    this.rec = new CdbRecords(HEADER_BYTES + src.length + entries * RECORD_HEAD);
    this.rec.buf.fill(0, 0, HEADER_BYTES);
    this.hashes = new Uint32Array(entries);
    this.positions = new Uint32Array(entries);
    this.lines = new Int32Array(entries);
    this.rhs = new Int32Array(entries);
  }

  /** Calls onProgress every PROGRESS_EVERY entries. */
  progress(): void {
    if (this.n < this.reported + PROGRESS_EVERY) return;
    this.reported = this.n;
    this.opts.onProgress?.(this.n);
  }

  /** One more entry, whose record is at `position`. */
  add(position: number, nameLen: number, hash: number, line: number, rhs: number): void {
    if (this.n === this.hashes.length) this.grow();
    const e = this.n++;
    this.hashes[e] = hash;
    this.positions[e] = position;
    this.lines[e] = line;
    this.rhs[e] = rhs;
    this.counts[hash & 0xff]++;
    this.total += nameLen + rhs;
    if (rhs > this.longest) this.longest = rhs;
  }

  private grow(): void {
    const size = this.hashes.length * 2;
    this.hashes = resized(this.hashes, new Uint32Array(size));
    this.positions = resized(this.positions, new Uint32Array(size));
    this.lines = resized(this.lines, new Int32Array(size));
    this.rhs = resized(this.rhs, new Int32Array(size));
  }

  /**
   * The logical line at pos, whatever it holds: parseAliases() decides, and
   * its record is added. Returns where the next line starts; sets `line`.
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
    const key = Buffer.from(name, 'utf8');
    const position = this.rec.add(key, Buffer.from(dataOf(members), 'utf8'));
    this.add(position, key.length, cdbHash(key, 0, key.length), line, rhsBytes);
  }

  /**
   * The cdb hash tables, a slot kept for the meta record. Placing the
   * records finds duplicates too: a later entry of a name takes the earlier's
   * slot. When there were any (rare), the replaced records are squeezed out
   * and the tables made again, so that the file holds none of them.
   */
  placeAll(): CdbTables {
    let tables = this.placeEntries(this.counts);
    if (this.dead) {
      this.squeeze(this.dead);
      tables = this.placeEntries(countTables(this.hashes.subarray(0, this.n)));
    }
    return tables;
  }

  /** A loop of its own, not a step of scanFile(): its rare branches would send V8 back to the interpreter there. */
  private placeEntries(counts: Uint32Array): CdbTables {
    const withMeta = counts.slice();
    withMeta[META_HASH & 0xff]++;
    const tables = new CdbTables(withMeta);
    const { hashes, positions, n } = this;
    const buf = this.rec.buf;
    for (let e = 0; e < n; e++) {
      const earlier = tables.place(hashes[e], positions[e], buf);
      if (earlier !== 0) this.replace(this.entryAt(earlier, e), e);
    }
    return tables;
  }

  /** The entry whose record is at `position`, among the first `below`: records are in entry order. */
  private entryAt(position: number, below: number): number {
    let lo = 0;
    let hi = below - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.positions[mid] < position) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A later entry of the same name: the earlier one is dropped, with sendmail's warning. */
  private replace(old: number, now: number): void {
    const buf = this.rec.buf;
    const at = this.positions[old];
    const nameLen = buf.readUInt32LE(at);
    this.dead ??= new Uint8Array(this.hashes.length);
    this.dead[old] = 1;
    this.deadCount++;
    this.total -= nameLen + this.rhs[old];
    const name = buf.toString('utf8', at + RECORD_HEAD, at + RECORD_HEAD + nameLen);
    this.warnings.push(
      `${this.file}:${this.lines[now]}: warning: duplicate alias name ${name} (also on line ${this.lines[old]}; the last one wins)`,
    );
  }

  finish(tables: CdbTables): Built {
    return {
      records: this.rec,
      tables,
      count: this.n - this.deadCount,
      longest: this.longest,
      total: this.total,
      warnings: this.warnings,
      errors: this.errors,
    };
  }

  /** Records after replaced ones move down over them; the entries follow, and `longest` is counted again. */
  private squeeze(dead: Uint8Array): void {
    const buf = this.rec.buf;
    let to = HEADER_BYTES;
    let live = 0;
    this.longest = 0;
    for (let e = 0; e < this.n; e++) {
      if (dead[e]) continue;
      const at = this.positions[e];
      const length = RECORD_HEAD + buf.readUInt32LE(at) + buf.readUInt32LE(at + 4);
      if (at !== to) buf.copy(buf, to, at, at + length);
      this.hashes[live] = this.hashes[e];
      this.positions[live] = to;
      this.lines[live] = this.lines[e];
      this.rhs[live++] = this.rhs[e];
      to += length;
      if (this.rhs[e] > this.longest) this.longest = this.rhs[e];
    }
    this.rec.len = to;
    this.n = live;
    this.dead = undefined;
    this.deadCount = 0;
  }
}

function resized<T extends Uint32Array | Int32Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
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
