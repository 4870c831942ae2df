// The one-pass scan behind the per-mailbox index (POP3, IMAP). It finds
// messages by scan.ts's rules (a "From " line at the start of the file or
// after a blank line; that blank line separates and belongs to no message),
// and in the same pass measures what the protocols need and scanMbox does not
// give: each message's size as served (CRLF line ends, ^>+From  unquoted,
// the mbox bookkeeping headers of HIDDEN left out, as Dovecot hides them), its
// header block, and the From_ line's date. It can start at any message
// boundary, so a delivery costs a scan of the new bytes only. A test checks
// that it agrees with scanMbox on every fixture.

import fs from 'node:fs';
import { fromLineDepth } from './mboxrd.ts';

/** Headers an mbox reader keeps its own state in; never shown to clients, so sizes stay fixed. */
export const HIDDEN = ['status', 'x-status', 'x-keywords', 'x-uid', 'x-imap', 'x-imapbase', 'content-length'];

export interface ScannedMessage {
  /** Offset of the From_ line. */
  offset: number;
  /** From the From_ line to the message's end, without the separating blank line (as MboxEntry.length). */
  length: number;
  /** Bytes of the From_ line, newline included. */
  fromLen: number;
  /** Stored header block, blank line included (capped to the message). */
  headerLength: number;
  /** Size as served: CRLF line ends, unquoted, hidden headers left out. */
  size: number;
  /** Served size of the header block (blank line included). */
  headerSize: number;
  /** Date of the From_ line (ms), or NaN when it has none we can read. */
  internalDate: number;
  /** The stored header block, at most HEADER_KEEP bytes of it; valid only during the onMessage call. */
  header: Buffer;
  /**
   * Body lines matching ^>>+From : the served body was this many bytes longer
   * when readers unquoted ^>From  only (mboxo), as indexes written then counted.
   */
  deepQuoted: number;
}

const CHUNK = 1 << 20;
const HEADER_KEEP = 256 << 10;
const LF = 0x0a;
const CR = 0x0d;
const FROM = Buffer.from('From ');
/**
 * Uint8Array's indexOf, called directly: a V8 builtin, where Buffer's goes
 * through JavaScript argument handling that costs more than the search on a
 * mail line in a session agent (which runs without the optimizing compiler).
 */
const indexOf = Uint8Array.prototype.indexOf;

interface Draft {
  offset: number;
  fromLen: number;
  served: number;
  inHeader: boolean;
  headerLength: number;
  headerSize: number;
  hiding: boolean;
  /** Pieces of the header block kept so far (copies, once a chunk is reused). */
  header: Buffer[];
  /** The piece being grown, a range of `hBuf` (the chunk or a joined line), not yet in `header`. */
  hBuf: Buffer | undefined;
  hStart: number;
  hEnd: number;
  headerKept: number;
  internalDate: number;
  /** A blank line seen last: it separates if a From_ line follows, else it is content. */
  pendingBlank: number;
  deepQuoted: number;
}

function startsWith(buf: Buffer, at: number, end: number, prefix: Buffer): boolean {
  if (end - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}

/** Does the header line at `at` name one of HIDDEN? */
function isHidden(buf: Buffer, at: number, end: number): boolean {
  const c = buf[at] | 0x20;
  if (c !== 0x73 && c !== 0x78 && c !== 0x63) return false; // s, x, c
  const colon = indexOf.call(buf, 0x3a, at);
  if (colon < 0 || colon >= end || colon - at > 16) return false;
  return HIDDEN.includes(buf.toString('latin1', at, colon).trimEnd().toLowerCase());
}

const MONTHS: Record<string, number> = { Jan: 0, Feb: 1, Mar: 2, Apr: 3, May: 4, Jun: 5, Jul: 6, Aug: 7, Sep: 8, Oct: 9, Nov: 10, Dec: 11 };
const ASCTIME = /(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) +(\d{1,2}) (\d{1,2}):(\d\d)(?::(\d\d))?(?: +([+-]\d{4}|[A-Z]{3,4}))? +(\d{4})/;

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

/** The header range being grown becomes a piece of the header (a view, not a copy). */
function piece(c: Draft): void {
  if (!c.hBuf) return;
  c.header.push(c.hBuf.subarray(c.hStart, c.hEnd));
  c.hBuf = undefined;
}

/** Splits chunks into lines and keeps the accounts of the message being read. */
class FolderScanner {
  count = 0;
  private cur: Draft | undefined;
  private prevBlank: boolean;
  private carry: Buffer[] = [];
  private carryLen = 0;
  private lineStart: number;

  constructor(private readonly file: string, start: number, private readonly onMessage: (m: ScannedMessage) => void) {
    this.lineStart = start;
    // Starting mid-file, we start at a boundary: as if a blank line came before.
    this.prevBlank = true;
  }

  feed(chunk: Buffer, base: number): void {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = indexOf.call(chunk, LF, pos);
      if (nl === -1) {
        this.carry.push(Buffer.from(chunk.subarray(pos)));
        this.carryLen += chunk.length - pos;
        this.keepHeader();
        return;
      }
      if (this.carryLen === 0) this.line(chunk, pos, nl + 1);
      else {
        this.carry.push(chunk.subarray(pos, nl + 1));
        const joined = Buffer.concat(this.carry);
        this.carry = [];
        this.carryLen = 0;
        this.line(joined, 0, joined.length);
      }
      this.lineStart = base + nl + 1;
      pos = nl + 1;
    }
    this.keepHeader();
  }

  /** The chunk buffer is about to be reused: copy the header of the message not yet ended. */
  private keepHeader(): void {
    const c = this.cur;
    if (!c) return;
    piece(c);
    if (c.header.length > 0) c.header = [Buffer.concat(c.header)];
  }

  finish(): number {
    if (this.carryLen > 0) {
      // A last line without its LF (a file others wrote, or cut short): part of the last message.
      const last = Buffer.concat(this.carry);
      this.line(last, 0, last.length);
      this.lineStart += last.length;
    }
    if (this.cur) this.close(this.lineStart - (this.cur.pendingBlank ? 1 : 0));
    return this.count;
  }

  /** One line: buf[at, end) is the whole line, its LF (if any) included; it starts at this.lineStart. */
  private line(buf: Buffer, at: number, end: number): void {
    const start = this.lineStart;
    const len = end - at;
    const terminated = buf[end - 1] === LF;
    const blank = terminated && (len === 1 || (len === 2 && buf[at] === CR));
    if (this.prevBlank && startsWith(buf, at, end, FROM)) {
      if (this.cur) this.close(start - (this.cur.pendingBlank ? 1 : 0));
      this.open(start, buf, at, end);
      this.prevBlank = false;
      return;
    }
    if (!this.cur) throw new Error(`${this.file}: not an mbox file: no "From " line at offset ${start}`);
    const c = this.cur;
    if (c.pendingBlank) {
      c.served += c.pendingBlank;
      c.pendingBlank = 0;
    }
    const depth = buf[at] === 0x3e ? fromLineDepth(buf, at, end) : 0;
    const served = len - (depth > 0 ? 1 : 0) + (terminated && (len < 2 || buf[end - 2] !== CR) ? 1 : 0);
    if (depth > 1 && !c.inHeader) c.deepQuoted++;
    if (c.inHeader) this.headerLine(c, buf, at, end, start, served, blank);
    else if (blank && len === 1) c.pendingBlank = served;
    else c.served += served;
    this.prevBlank = blank && len === 1;
  }

  private headerLine(c: Draft, buf: Buffer, at: number, end: number, start: number, served: number, blank: boolean): void {
    if (c.headerKept < HEADER_KEEP) {
      // A range of the chunk, grown line by line; copied only if the chunk is reused before the message ends.
      const e = Math.min(end, at + HEADER_KEEP - c.headerKept);
      if (c.hBuf === buf && c.hEnd === at) c.hEnd = e;
      else {
        piece(c);
        c.hBuf = buf;
        c.hStart = at;
        c.hEnd = e;
      }
      c.headerKept += e - at;
    }
    if (blank) {
      c.inHeader = false;
      c.headerLength = start + (end - at) - (c.offset + c.fromLen);
      c.headerSize = c.served + served;
      // The blank line ending the header may also be the separator before the next From_.
      if (end - at === 1) c.pendingBlank = served;
      else c.served += served;
      return;
    }
    const continuation = buf[at] === 0x20 || buf[at] === 0x09;
    if (!continuation) c.hiding = isHidden(buf, at, end);
    if (!c.hiding) c.served += served;
  }

  private open(start: number, buf: Buffer, at: number, end: number): void {
    const fromLine = buf.toString('latin1', at, Math.min(end, at + 1000));
    this.cur = {
      offset: start, fromLen: end - at, served: 0, inHeader: true, headerLength: -1, headerSize: -1, hiding: false,
      header: [], hBuf: undefined, hStart: 0, hEnd: 0, headerKept: 0, internalDate: fromLineDate(fromLine), pendingBlank: 0, deepQuoted: 0,
    };
  }

  private close(end: number): void {
    const c = this.cur!;
    piece(c);
    const content = end - c.offset - c.fromLen;
    // Handed on without a copy when it is one piece: onMessage must use it at once, not keep it.
    const header = c.header.length === 1 ? c.header[0] : Buffer.concat(c.header);
    let headerLength = c.headerLength;
    let headerSize = c.headerSize;
    if (headerLength < 0 || headerLength > content) {
      // All header (no blank line inside the message): the served header is the whole message.
      headerLength = content;
      headerSize = c.served;
    }
    this.count++;
    this.onMessage({
      offset: c.offset, length: end - c.offset, fromLen: c.fromLen, headerLength, size: c.served, headerSize,
      internalDate: c.internalDate, header: header.length > headerLength ? header.subarray(0, headerLength) : header,
      deepQuoted: c.deepQuoted,
    });
    this.cur = undefined;
  }
}

/**
 * Scan an open mbox from `start` (0, or the end of a message as an earlier
 * scan found it) to `end` (the size the caller saw, under the dotlock),
 * handing each message to onMessage as soon as it ends, so that no more than
 * one header block is held at a time. Returns the number of messages.
 */
export async function scanFolder(fh: fs.promises.FileHandle, file: string, start: number, end: number, onMessage: (m: ScannedMessage) => void): Promise<number> {
  const scanner = new FolderScanner(file, start, onMessage);
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = start;
  while (pos < end) {
    const { bytesRead } = await fh.read(buf, 0, Math.min(CHUNK, end - pos), pos);
    if (bytesRead === 0) break;
    scanner.feed(buf.subarray(0, bytesRead), pos);
    pos += bytesRead;
  }
  return scanner.finish();
}
