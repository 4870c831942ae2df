// The one mbox scanner, for every reader: `mail` (the index, header blocks and
// line counts), POP3 and IMAP (the index, served sizes, header blocks and the
// From_ line's date), rewrites, tests. Reads mboxes written by Postfix
// local(8), mail.local, s-nail, mutt and mailtk: a line beginning "From " is
// a separator when it is the file's first line or follows a blank line (that
// blank line belongs to no message); Content-Length: is ignored. A body line
// "From " after a blank line that a writer failed to quote therefore starts a
// new message; every writer above quotes it. A message's header block ends at
// its first empty line (LF or CRLF).
//
// How we do it: read windows of 1 MiB and let the native Buffer.indexOf find
// "\n\nFrom " (separators), "\n\n" and "\n\r\n" (ends of headers) and ">From "
// (quoted lines, ^>+From ) instead of looking at every line in JS. A window
// ends at its last newline; the partial line and two bytes of history move to
// the front of the next. A line longer than a window is taken in pieces, so
// memory stays bounded whatever the message sizes (header blocks kept are cut
// at 256 KiB). Served sizes are counted by served.ts's ServedConverter, the
// code that makes the bytes sent. A scan can start at any message boundary,
// so a delivery costs a scan of the new bytes only. No lock is taken: a caller
// wanting a view no delivery is half-way through holds the dotlock around it.

import fs from 'node:fs';
import { MailError } from '../message/status.ts';
import { unquoteFrom } from './mboxrd.ts';
import { ServedConverter } from './served.ts';

export { unquoteFrom };

export interface MboxEntry {
  /** Byte offset of the From_ line. */
  offset: number;
  /** Bytes from `offset` to the message's end: the From_ line counts, the separating blank line does not. */
  length: number;
  /** Offset of the first header line, just past the From_ line. */
  dataOffset: number;
  /** Bytes of the header block from `dataOffset`, including the blank line that ends it (capped to the message). */
  headerLength: number;
  /** The From_ line without its newline (first 1000 bytes). */
  fromLine: string;
  /** Lines stored matching ^>+From ; the unquoted message is this many bytes shorter. */
  quoted: number;
}

export interface MboxIndex {
  path: string;
  /** Bytes scanned: the file's size when the scan began. */
  size: number;
  mtimeMs: number;
  messages: MboxEntry[];
}

/** One message as the scan found it; what was not asked for (ScanOptions) is 0 or empty. */
export interface ScannedMessage extends MboxEntry {
  /** Bytes of the From_ line, newline included. */
  fromLen: number;
  /** The stored header block (at most 256 KiB of it), when asked for; valid only during the onMessage call. */
  header: Buffer;
  /** Lines from the From_ line through the blank line before the next message: mailx's count. */
  lines: number;
  /** Size as served (served.ts: CRLF line ends, unquoted, HIDDEN headers left out). */
  size: number;
  /** Served size of the header block (blank line included). */
  headerSize: number;
  /** Date of the From_ line (ms), or NaN when it has none we can read. */
  internalDate: number;
  /**
   * Body lines matching ^>>+From : the served body was this many bytes longer
   * when readers unquoted ^>From  only (mboxo), as indexes written then counted.
   */
  deepQuoted: number;
}

export interface ScanOptions {
  /** Hand on each message's header block. */
  headers?: boolean;
  /** Count lines (ScannedMessage.lines). */
  lines?: boolean;
  /** Served sizes and the From_ line's date: what POP3 and IMAP index. */
  served?: boolean;
  /** Window size in bytes (tests make it tiny to cross every boundary). */
  chunkSize?: number;
}

const CHUNK = 1 << 20;
const HEAD_MAX = 1000; // bytes of the From_ line kept; RFC 5322's line limit
const HEADER_MAX = 256 << 10;
const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const SEP = Buffer.from('\n\nFrom ');
const BLANK = Buffer.from('\n\n');
const CR_BLANK = Buffer.from('\n\r\n');
const QUOTED = Buffer.from('>From ');
const FROM = Buffer.from('From ');
const ONE_LF = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
/** Uint8Array's indexOf, a V8 builtin (see served.ts): for single bytes. */
const indexOf = Uint8Array.prototype.indexOf;

interface Draft {
  offset: number;
  /** -1 while the From_ line has not ended (it is longer than a window). */
  dataOffset: number;
  /** The From_ line's first HEAD_MAX bytes: as text when it ended in the window it began in, else in pieces. */
  fromText: string | undefined;
  from: Buffer[];
  fromKept: number;
  /** Absolute end of the blank line that ends the header block; -1 until seen. */
  headerEnd: number;
  quoted: number;
  deepQuoted: number;
  lines: number;
  /** Header pieces: views of the current window, copied before the window moves. */
  header: Buffer[];
  headerKept: number;
  conv: ServedConverter | undefined;
  headerSize: number;
  /** Absolute offset of a blank line not yet fed to conv: the separator, if a From_ line follows. */
  pendingBlank: number;
}

/** A search that remembers its answer, so that repeated searches in one window cost one pass. */
class Finder {
  private at = -1;
  private from = Infinity;
  constructor(private readonly what: Buffer) {}
  reset(): void {
    this.from = Infinity;
  }
  next(v: Buffer, from: number): number {
    if (from < this.from || (this.at >= 0 && from > this.at)) {
      this.from = from;
      this.at = v.indexOf(this.what, from);
    }
    return this.at;
  }
}

/** The asctime date of a From_ line (local time unless it names a numeric zone). */
export function fromLineDate(line: string): number {
  const m = ASCTIME.exec(line);
  if (!m) return NaN;
  const [y, mo, d, h, mi, s] = [Number(m[7]), MONTHS[m[1]], Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5] ?? 0)];
  if (m[6] && /^[+-]\d{4}$/.test(m[6])) {
    const sign = m[6][0] === '-' ? -1 : 1;
    const off = sign * (Number(m[6].slice(1, 3)) * 60 + Number(m[6].slice(3)));
    return Date.UTC(y, mo, d, h, mi, s) - off * 60_000;
  }
  return new Date(y, mo, d, h, mi, s).getTime();
}

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const ASCTIME = /(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{1,2}):(\d\d)(?::(\d\d))?(?: +([+-]\d{4}|[A-Z]{3,4}))? +(\d{4})/;

/** Finds messages in windows of the file and keeps the accounts of the one being read. */
class Scanner {
  count = 0;
  private cur: Draft | undefined;
  private readonly quoted = new Finder(QUOTED);
  private readonly blank = new Finder(BLANK);
  private readonly crBlank = new Finder(CR_BLANK);

  constructor(private readonly opts: ScanOptions, private readonly onMessage: (m: ScannedMessage) => void) {}

  /** Scan v[from, v.length): whole lines, or a piece of one long line, or to EOF; v[from - 2, from) is history; v[0] is at `base`. */
  region(v: Buffer, base: number, from: number): void {
    let a = from;
    this.quoted.reset();
    this.blank.reset();
    this.crBlank.reset();
    for (let k = v.indexOf(SEP, a - 2); k >= 0; k = v.indexOf(SEP, k + 1)) {
      const p = k + 2;
      if (p > a) this.segment(v, base, a, p, true);
      this.open(v, base, p);
      a = p;
    }
    if (a < v.length) this.segment(v, base, a, v.length, false);
    this.keepHeader();
  }

  finish(size: number, endsBlank: boolean): void {
    const c = this.cur;
    if (!c) return;
    if (c.dataOffset < 0) c.dataOffset = size; // a From_ line without its newline, at EOF
    // The blank line that ends the file is the last message's separator, not its content.
    this.close(endsBlank && size - 1 >= c.dataOffset ? size - 1 : size);
  }

  private open(v: Buffer, base: number, p: number): void {
    if (this.cur) this.close(base + p - 1); // p - 1: the blank line before us separates
    const nl = indexOf.call(v, LF, p);
    let text = nl; // the From_ line's text ends before its CRLF or LF, or at HEAD_MAX bytes
    if (nl + 1 - p > HEAD_MAX) text = p + HEAD_MAX;
    else if (nl > p && v[nl - 1] === CR) text--;
    this.cur = {
      offset: base + p, dataOffset: nl < 0 ? -1 : base + nl + 1,
      // A From_ line that goes on past the window is collected by the segments that follow, this one's first.
      fromText: nl < 0 ? undefined : v.toString('utf8', p, text), from: [], fromKept: 0,
      headerEnd: -1, quoted: 0, deepQuoted: 0, lines: 0, header: [], headerKept: 0,
      conv: this.opts.served ? new ServedConverter({ header: true }) : undefined, headerSize: -1, pendingBlank: -1,
    };
  }

  /** Bytes v[a, b) of the current message; with `atSep`, v[b - 1] is the blank line before the next From_ line. */
  private segment(v: Buffer, base: number, a: number, b: number, atSep: boolean): void {
    const c = this.cur!;
    if (this.opts.lines) for (let p = v.indexOf(LF, a); p >= 0 && p < b; p = v.indexOf(LF, p + 1)) c.lines++;
    if (c.dataOffset < 0 && !this.fromLineRest(c, v, base, a, b)) return;
    const dIdx = c.dataOffset - base;
    const from = Math.max(a, dIdx);
    let until = b; // end of the header bytes in this segment
    if (c.headerEnd < 0) {
      const at = Math.max(a - 1, dIdx - 1);
      const k = this.blank.next(v, at);
      const r = this.crBlank.next(v, at);
      const end = r >= 0 && (k < 0 || r < k) ? r + 3 : k >= 0 ? k + 2 : -1;
      if (end >= 0 && end <= b) {
        c.headerEnd = base + end;
        until = end;
      }
    }
    if (this.opts.headers && until > from && c.headerKept < HEADER_MAX) {
      const to = Math.min(until, from + HEADER_MAX - c.headerKept);
      c.header.push(v.subarray(from, to));
      c.headerKept += to - from;
    }
    for (let k = this.quoted.next(v, a); k >= 0 && k < b; k = this.quoted.next(v, k + 1)) {
      let s = k;
      while (v[s - 1] === GT) s--;
      if (v[s - 1] !== LF || base + s < c.dataOffset) continue;
      c.quoted++;
      if (k > s && c.headerEnd >= 0 && base + s >= c.headerEnd) c.deepQuoted++;
    }
    if (c.conv) this.served(c, v, base, from, b, atSep);
  }

  /** The From_ line continues into v[a, b): keep its first bytes; false while it goes on past b. */
  private fromLineRest(c: Draft, v: Buffer, base: number, a: number, b: number): boolean {
    const nl = indexOf.call(v, LF, a);
    const ended = nl >= 0 && nl < b;
    const end = ended ? nl + 1 : b;
    const kept = Math.min(end - a, HEAD_MAX - c.fromKept);
    if (kept > 0) {
      c.from.push(Buffer.from(v.subarray(a, a + kept)));
      c.fromKept += kept;
    }
    if (ended) c.dataOffset = base + end;
    return ended;
  }

  /** Feed the content bytes of v[from, b) to the served count; a blank line at the end waits to see if it separates. */
  private served(c: Draft, v: Buffer, base: number, from: number, b: number, atSep: boolean): void {
    if (c.pendingBlank >= 0) {
      this.feed(c, ONE_LF, 0, 1, c.pendingBlank);
      c.pendingBlank = -1;
    }
    let end = b;
    if (atSep) end = b - 1;
    else if (v[b - 1] === LF && v[b - 2] === LF && b - 1 >= from) {
      end = b - 1;
      c.pendingBlank = base + end;
    }
    if (end > from) this.feed(c, v, from, end, base + from);
  }

  /** buf[s, e), which starts at file offset `at`: the header part hides HIDDEN fields, then the body. */
  private feed(c: Draft, buf: Buffer, s: number, e: number, at: number): void {
    const conv = c.conv!;
    if (c.headerSize < 0 && c.headerEnd >= 0 && at + (e - s) >= c.headerEnd) {
      const cut = s + Math.max(0, c.headerEnd - at);
      conv.count(buf, s, cut);
      c.headerSize = conv.size;
      conv.body();
      s = cut;
    }
    if (e > s) conv.count(buf, s, e);
  }

  /** The window is about to move: copy the header pieces of the message not yet ended. */
  private keepHeader(): void {
    const c = this.cur;
    if (c && c.header.length > 0) c.header = [Buffer.concat(c.header)];
  }

  private close(end: number): void {
    const c = this.cur!;
    const content = end - c.dataOffset;
    // A message with no blank line inside it is all header.
    const headerLength = c.headerEnd < 0 || c.headerEnd - c.dataOffset > content ? content : c.headerEnd - c.dataOffset;
    const header = c.header.length === 0 ? EMPTY : c.header.length === 1 ? c.header[0] : Buffer.concat(c.header);
    const fromLine = c.fromText ?? Buffer.concat(c.from).toString('utf8').replace(/\r?\n$/, '');
    let size = 0;
    let headerSize = 0;
    if (c.conv) {
      c.conv.endCount();
      size = c.conv.size;
      headerSize = c.headerSize < 0 ? size : c.headerSize;
    }
    this.cur = undefined;
    this.count++;
    this.onMessage({
      offset: c.offset, length: end - c.offset, dataOffset: c.dataOffset, headerLength, fromLine, quoted: c.quoted,
      fromLen: c.dataOffset - c.offset, header: header.length > headerLength ? header.subarray(0, headerLength) : header,
      lines: c.lines, size, headerSize, internalDate: c.conv ? fromLineDate(fromLine) : NaN, deepQuoted: c.deepQuoted,
    });
  }
}

type ReadAt = (buf: Buffer, offset: number, length: number, position: number) => Promise<number> | number;

/**
 * Scan bytes [start, end) of an open mbox, start being 0 or a message
 * boundary an earlier scan found, handing each message to onMessage as soon
 * as it ends (so that no more than one header block is held at a time).
 * Returns the number of messages and the bytes read (less than end - start
 * only when the file was cut short under us).
 */
export async function scanRange(
  read: ReadAt,
  file: string,
  start: number,
  end: number,
  opts: ScanOptions,
  onMessage: (m: ScannedMessage) => void,
): Promise<{ count: number; scanned: number }> {
  const s = new Scanner(opts, onMessage);
  const chunk = Math.max(16, opts.chunkSize ?? CHUNK);
  const buf = Buffer.allocUnsafe(chunk + 2);
  buf[0] = buf[1] = LF; // the start counts as "after a blank line"
  let filled = 2;
  let base = start - 2; // file offset of buf[0]
  let pos = start;
  let checked = false;
  while (pos < end) {
    const got = read(buf, filled, Math.min(buf.length - filled, end - pos), pos);
    const bytesRead = typeof got === 'number' ? got : await got;
    if (bytesRead === 0) break; // cut short under us
    filled += bytesRead;
    pos += bytesRead;
    if (!checked) {
      if (filled - 2 < FROM.length && pos < end) continue; // too little to tell yet
      if (filled - 2 < FROM.length || buf.compare(FROM, 0, FROM.length, 2, 2 + FROM.length) !== 0) {
        throw notMbox(file, start);
      }
      checked = true;
    }
    let cut = pos >= end ? filled : buf.lastIndexOf(LF, filled - 1) + 1;
    if (cut <= 2) {
      if (filled < buf.length) continue; // a short read: read more behind it
      cut = filled; // a line longer than the window: this piece of it now
    }
    s.region(buf.subarray(0, cut), base, 2);
    const keep = cut - 2; // two bytes of history, then the unfinished line
    buf.copy(buf, 0, keep, filled);
    filled -= keep;
    base += keep;
  }
  if (filled > 2) {
    // Cut short under us: what was read.
    if (!checked) throw notMbox(file, start);
    s.region(buf.subarray(0, filled), base, 2);
  }
  const scanned = base + filled - start;
  if (scanned > 0) s.finish(start + scanned, filled >= 2 && buf[filled - 1] === LF && buf[filled - 2] === LF);
  return { count: s.count, scanned: Math.max(0, scanned) };
}

function notMbox(file: string, start: number): MailError {
  const why = start === 0 ? 'the first line does not begin with "From "' : `no "From " line at offset ${start}, where the last scan ended`;
  return new MailError('mailbox-io', `not an mbox file: ${why}`, { file });
}

/** Open for reading, refusing symlinks and anything but a regular file (a reader may run as root). */
async function openForRead(file: string): Promise<{ fh: fs.promises.FileHandle; st: fs.Stats }> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new MailError('mailbox-unsafe', 'mailbox is a symbolic link', { file });
    throw e; // ENOENT and the like, with the path in the message, for the caller to judge
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new MailError('mailbox-unsafe', 'mailbox is not a regular file', { file });
  }
  return { fh, st };
}

/** A reader of an open file: promises, or with `blocking`, reads on this thread. */
export function readerOf(fh: fs.promises.FileHandle, blocking = false): ReadAt {
  return blocking
    ? (buf, off, len, pos) => fs.readSync(fh.fd, buf, off, len, pos)
    : async (buf, off, len, pos) => (await fh.read(buf, off, len, pos)).bytesRead;
}

/** Scan a whole file by name (refusing links and non-files), up to its size at open. */
async function scanFile(file: string, opts: ScanOptions & { blocking?: boolean }, onMessage: (m: ScannedMessage) => void): Promise<MboxIndex> {
  const { fh, st } = await openForRead(file);
  try {
    const messages: MboxEntry[] = [];
    const { scanned } = await scanRange(readerOf(fh, opts.blocking), file, 0, st.size, opts, (m) => {
      messages.push({ offset: m.offset, length: m.length, dataOffset: m.dataOffset, headerLength: m.headerLength, fromLine: m.fromLine, quoted: m.quoted });
      onMessage(m);
    });
    return { path: file, size: scanned, mtimeMs: st.mtimeMs, messages };
  } finally {
    await fh.close();
  }
}

/**
 * Index every message in an mbox. A missing file is an error (ENOENT) for the
 * caller to read as "no mail".
 */
export async function scanMbox(file: string): Promise<MboxIndex> {
  return scanFile(file, {}, () => {});
}

export interface MboxSummary {
  index: MboxIndex;
  /** Each message's header block (fields and the blank line after them, as headerLength counts), copied. */
  headers: Buffer[];
  /** Lines of each message from its From_ line through the blank line before the next: mailx's count. */
  lines: number[];
}

export interface ScanHeadersOptions {
  /** Window size in bytes (tests make it tiny to cross every boundary). */
  chunkSize?: number;
  /**
   * Read with blocking reads on this thread: right for a one-shot command
   * (`mail -H`), where handing each 1 MiB read to the thread pool and waiting
   * to be woken costs more than the read on a busy machine; servers leave it off.
   */
  blocking?: boolean;
}

/** scanMbox's index with each message's header block and line count, for `mail`'s header summary. */
export async function scanMboxHeaders(file: string, opts: ScanHeadersOptions = {}): Promise<MboxSummary> {
  const headers: Buffer[] = [];
  const lines: number[] = [];
  const arena = new Arena();
  const index = await scanFile(file, { ...opts, headers: true, lines: true }, (m) => {
    headers.push(arena.copy(m.header));
    lines.push(m.lines);
  });
  return { index, headers, lines };
}

/** Header blocks copied into shared 1 MiB blocks, to spare 20,000 small allocations. */
class Arena {
  private block = Buffer.allocUnsafe(0);
  private used = 0;
  copy(b: Buffer): Buffer {
    if (this.block.length - this.used < b.length) {
      this.block = Buffer.allocUnsafe(Math.max(b.length, 1 << 20));
      this.used = 0;
    }
    b.copy(this.block, this.used);
    this.used += b.length;
    return this.block.subarray(this.used - b.length, this.used);
  }
}

/**
 * The stored bytes of one message: headers and body as written (still
 * mboxrd-quoted; see unquoteFrom), without the From_ line or the separating
 * blank line. Throws if the mbox changed so that the entry no longer fits.
 */
export async function readMessageBytes(file: string, entry: MboxEntry): Promise<Buffer> {
  const { fh } = await openForRead(file);
  try {
    const buf = Buffer.alloc(entry.length);
    const { bytesRead } = await fh.read(buf, 0, entry.length, entry.offset);
    if (bytesRead !== entry.length || buf.compare(FROM, 0, FROM.length, 0, Math.min(FROM.length, buf.length)) !== 0) {
      throw new MailError('mailbox-io', 'mailbox changed since it was scanned; scan it again', { file });
    }
    return buf.subarray(entry.dataOffset - entry.offset);
  } finally {
    await fh.close();
  }
}
