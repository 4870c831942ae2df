// Messages as POP3 and IMAP serve them: stored mbox bytes turned into the
// network form a chunk at a time, so that a 50 MB message passes through a
// few fixed buffers. Lines that mboxrd quoting stored as ^>+From  lose one
// '>' (mboxrd.ts), bare LF line ends become CRLF (a CRLF already stored stays
// as it is), and POP3's byte-stuffing doubles a leading '.'. Each converter
// carries the little state a line split across chunks needs. Pure: no files here.

const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const CRLF = Buffer.from('\r\n');
const FROM = Buffer.from('From ');
const QUOTE = Buffer.from('>');

/** Stored -> served: unquote ^>+From  lines, bare LF -> CRLF. Feed chunks in order. */
export class ServedConverter {
  private lineStart = true;
  private prevCR = false;
  /**
   * Inside a line that so far is only '>': its first '>' is held back until
   * what follows the run shows whether the line is ^>+From . The others pass
   * at once (they are all the same byte, so which one is held does not matter).
   */
  private inRun = false;
  /** A short piece after such a run, too short to tell "From " from other text. */
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
      if (this.lineStart && chunk[pos] === GT) {
        // Most such lines ("> quoted text") are decided here, in this chunk, and pass as one slice.
        let q = pos + 1;
        while (q < chunk.length && chunk[q] === GT) q++;
        if (chunk.length - q >= FROM.length) {
          if (chunk.compare(FROM, 0, FROM.length, q, q + FROM.length) === 0) pos++;
        } else if (chunk.indexOf(LF, q) < 0) {
          this.lineStart = false;
          this.inRun = true;
          pos++;
          continue;
        }
      } else if (this.inRun) {
        let q = pos;
        while (q < chunk.length && chunk[q] === GT) q++;
        if (q > pos) out.push(chunk.subarray(pos, q));
        this.prevCR = false;
        if (q === chunk.length) break;
        if (chunk.length - q < FROM.length && chunk.indexOf(LF, q) < 0) {
          this.hold = Buffer.from(chunk.subarray(q));
          break;
        }
        this.inRun = false;
        const from = chunk.length - q >= FROM.length && chunk.compare(FROM, 0, FROM.length, q, q + FROM.length) === 0;
        if (!from) out.push(QUOTE);
        pos = q;
      }
      this.lineStart = false;
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) {
        out.push(chunk.subarray(pos));
        this.prevCR = chunk[chunk.length - 1] === CR;
        break;
      }
      const crBefore = nl > pos ? chunk[nl - 1] === CR : this.prevCR;
      if (crBefore) out.push(chunk.subarray(pos, nl + 1));
      else out.push(chunk.subarray(pos, nl), CRLF);
      this.lineStart = true;
      this.prevCR = false;
      pos = nl + 1;
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** Whatever is held back at the end (a short last line). */
  end(): Buffer {
    const rest = this.hold ?? Buffer.alloc(0);
    const held = this.inRun ? QUOTE : undefined;
    this.hold = undefined;
    this.inRun = false;
    return held ? Buffer.concat([held, rest]) : rest;
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
