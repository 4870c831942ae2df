// Messages as POP3 and IMAP serve them: stored mbox bytes turned into the
// network form a chunk at a time, so that a 50 MB message passes through a
// few fixed buffers. Lines that mboxo quoting stored as ">From " lose one
// '>', bare LF line ends become CRLF (a CRLF already stored stays as it is),
// and POP3's byte-stuffing doubles a leading '.'. Each converter carries the
// little state a line split across chunks needs. Pure: no files here.

const LF = 0x0a;
const CR = 0x0d;
const CRLF = Buffer.from('\r\n');
const QUOTED = Buffer.from('>From ');

/** Stored -> served: unquote ">From " lines, bare LF -> CRLF. Feed chunks in order. */
export class ServedConverter {
  private lineStart = true;
  private prevCR = false;
  private hold: Buffer | undefined;

  constructor(atLineStart = true) {
    this.lineStart = atLineStart;
  }

  push(input: Buffer): Buffer {
    const chunk = this.hold ? Buffer.concat([this.hold, input]) : input;
    this.hold = undefined;
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      // A line start too short to tell ">From " from other text waits for more.
      if (this.lineStart && chunk[pos] === 0x3e && chunk.length - pos < QUOTED.length && chunk.indexOf(LF, pos) < 0) {
        this.hold = Buffer.from(chunk.subarray(pos));
        break;
      }
      let start = pos;
      if (this.lineStart && chunk[pos] === 0x3e && chunk.length - pos >= 6 && chunk.compare(QUOTED, 0, 6, pos, pos + 6) === 0) start = pos + 1;
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        out.push(chunk.subarray(start));
        this.prevCR = chunk[chunk.length - 1] === CR;
        this.lineStart = false;
        break;
      }
      const crBefore = nl > start ? chunk[nl - 1] === CR : nl === pos && this.prevCR && start === pos;
      if (crBefore) out.push(chunk.subarray(start, nl + 1));
      else out.push(chunk.subarray(start, nl), CRLF);
      this.lineStart = true;
      this.prevCR = false;
      pos = nl + 1;
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** Whatever is held back at the end (a short last line). */
  end(): Buffer {
    const rest = this.hold ?? Buffer.alloc(0);
    this.hold = undefined;
    return rest;
  }
}

/** The served form of a small stored piece that starts at a line start. */
export function toServed(stored: Buffer): Buffer {
  const c = new ServedConverter();
  const a = c.push(stored);
  const b = c.end();
  return b.length ? Buffer.concat([a, b]) : a;
}

/** POP3 byte-stuffing (RFC 1939 3): a served line that begins with '.' is sent with one more. */
export class DotStuffer {
  private lineStart = true;
  /** True when the last byte pushed ended a line. */
  get atLineStart(): boolean {
    return this.lineStart;
  }

  push(chunk: Buffer): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.lineStart && chunk[pos] === 0x2e) out.push(DOT);
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      out.push(chunk.subarray(pos, end));
      this.lineStart = nl >= 0;
      pos = end;
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }
}

const DOT = Buffer.from('.');

/** Keep bytes [from, from + count) of a stream of chunks: IMAP's <partial> fetches. */
export class ByteWindow {
  private seen = 0;
  constructor(private readonly from: number, private readonly count: number) {}

  take(chunk: Buffer): Buffer {
    const start = Math.max(0, this.from - this.seen);
    const end = Math.min(chunk.length, this.from + this.count - this.seen);
    this.seen += chunk.length;
    return start < end ? chunk.subarray(start, end) : EMPTY;
  }

  get done(): boolean {
    return this.seen >= this.from + this.count;
  }
}

const EMPTY = Buffer.alloc(0);
