// Messages as POP3 and IMAP serve them: stored mbox bytes turned into the
// network form a chunk at a time, so that a 50 MB message passes through a
// few fixed buffers. Lines that mboxrd quoting stored as ^>+From  lose one
// '>' (mboxrd.ts), bare LF line ends become CRLF (a CRLF already stored stays
// as it is), and in a header the mbox bookkeeping fields of HIDDEN are left
// out, as Dovecot hides them. ServedConverter is the one implementation of
// that form: push() yields the bytes and count() only their number, through
// the same code (every byte pushed out is a byte counted), so the size the
// folder scan promises a client (scan.ts drives count()) is the size of what
// is sent. Also POP3's byte-stuffing and IMAP's <partial> window. Pure: no
// files here.

const LF = 0x0a;
const CR = 0x0d;
const GT = 0x3e;
const COLON = 0x3a;
const CRLF = Buffer.from('\r\n');
const FROM = Buffer.from('From ');
const QUOTE = Buffer.from('>');
const EMPTY = Buffer.alloc(0);
/**
 * Uint8Array's indexOf, called directly: a V8 builtin, where Buffer's goes
 * through JavaScript argument handling that costs more than the search on a
 * mail line in a session agent (which runs without the optimizing compiler).
 */
const indexOf = Uint8Array.prototype.indexOf;

/** Headers an mbox reader keeps its own state in; never shown to clients, so sizes stay fixed. */
export const HIDDEN = ['status', 'x-status', 'x-keywords', 'x-uid', 'x-imap', 'x-imapbase', 'content-length'];
/**
 * A field is looked up in HIDDEN only when its colon comes within this many
 * bytes of the line start (RFC 5322's line limit), so that a header line cut
 * across chunks is held back at most this much.
 */
const NAME_MAX = 998;

/**
 * Is the header line starting at buf[at] (up to `end`) a field of HIDDEN?
 * 1 yes, 0 no, -1 cannot tell yet (the name runs past `end`: more bytes needed).
 */
function hiddenField(buf: Buffer, at: number, end: number): number {
  const c = buf[at] | 0x20;
  if (c !== 0x73 && c !== 0x78 && c !== 0x63) return 0; // every HIDDEN name begins with s, x or c
  const lim = Math.min(end, at + NAME_MAX);
  for (let i = at; i < lim; i++) {
    const b = buf[i];
    if (b === COLON) return HIDDEN.includes(buf.toString('latin1', at, i).trimEnd().toLowerCase()) ? 1 : 0;
    if (b === LF) return 0;
  }
  return lim === at + NAME_MAX ? 0 : -1;
}

export interface ServedOptions {
  /** The first byte pushed begins a line (default true). */
  atLineStart?: boolean;
  /** The bytes begin with a header block: HIDDEN fields are left out until body() is called. */
  header?: boolean;
}

/**
 * Stored -> served. Feed chunks in order with push() (the served bytes) or
 * count() (their number only); `size` is the total so far either way.
 */
export class ServedConverter {
  private lineStart: boolean;
  private prevCR = false;
  /**
   * Inside a line that so far is only '>': its first '>' is held back until
   * what follows the run shows whether the line is ^>+From . The others pass
   * at once (they are all the same byte, so which one is held does not matter).
   */
  private inRun = false;
  /** A short piece too short to decide on: after such a run, or a header field's name. */
  private hold: Buffer | undefined;
  private header: boolean;
  /** The current header field is hidden (its continuation lines with it). */
  private hiding = false;
  /** Inside a hidden line: skip to its LF. */
  private skipping = false;
  /** Where push() collects its output; undefined while counting. */
  private parts: Buffer[] | undefined;
  private total = 0;

  constructor(opts: boolean | ServedOptions = {}) {
    const o = typeof opts === 'boolean' ? { atLineStart: opts } : opts;
    this.lineStart = o.atLineStart ?? true;
    this.header = o.header ?? false;
  }

  /** Served bytes so far (pushed or counted). */
  get size(): number {
    return this.total;
  }

  /** The served form of input[start, end). */
  push(input: Buffer, start = 0, end = input.length): Buffer {
    const out: Buffer[] = (this.parts = []);
    try {
      this.convert(input, start, end);
    } finally {
      this.parts = undefined;
    }
    return out.length === 1 ? out[0] : out.length === 0 ? EMPTY : Buffer.concat(out);
  }

  /** How many bytes push() would have yielded for input[start, end); the state moves on the same. */
  count(input: Buffer, start = 0, end = input.length): number {
    const before = this.total;
    this.convert(input, start, end);
    return this.total - before;
  }

  /** The header block is over: from here on nothing is hidden. */
  body(): void {
    this.header = false;
  }

  /** Whatever is held back at the end (a short last line). */
  end(): Buffer {
    const out: Buffer[] = (this.parts = []);
    try {
      this.flush();
    } finally {
      this.parts = undefined;
    }
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  /** end(), counted. */
  endCount(): number {
    const before = this.total;
    this.flush();
    return this.total - before;
  }

  private flush(): void {
    // Held back at the end: the rest of a lone run of '>' (no "From " followed), or a field name with no colon.
    if (this.inRun) this.emit(QUOTE, 0, 1);
    if (this.hold) this.emit(this.hold, 0, this.hold.length);
    this.hold = undefined;
    this.inRun = false;
  }

  private emit(buf: Buffer, start: number, end: number): void {
    if (end <= start) return;
    this.total += end - start;
    if (this.parts) this.parts.push(buf.subarray(start, end));
  }

  private convert(input: Buffer, start: number, end: number): void {
    let chunk = input;
    let pos = start;
    if (this.hold) {
      chunk = Buffer.concat([this.hold, input.subarray(start, end)]);
      pos = 0;
      end = chunk.length;
      this.hold = undefined;
    }
    while (pos < end) {
      if (this.skipping) {
        const nl = indexOf.call(chunk, LF, pos);
        if (nl < 0 || nl >= end) return;
        this.skipping = false;
        this.lineStart = true;
        pos = nl + 1;
        continue;
      }
      if (this.lineStart && this.header) {
        const c = chunk[pos];
        if (c !== 0x20 && c !== 0x09) {
          const h = hiddenField(chunk, pos, end);
          if (h < 0) {
            this.hold = Buffer.from(chunk.subarray(pos, end));
            return;
          }
          this.hiding = h === 1;
        }
        if (this.hiding) {
          this.lineStart = false;
          this.skipping = true;
          this.prevCR = false;
          continue;
        }
      }
      if (this.lineStart && chunk[pos] === GT) {
        // Most such lines ("> quoted text") are decided here, in this chunk, and pass as one slice.
        let q = pos + 1;
        while (q < end && chunk[q] === GT) q++;
        if (end - q >= FROM.length) {
          if (chunk.compare(FROM, 0, FROM.length, q, q + FROM.length) === 0) pos++;
        } else {
          const nl = indexOf.call(chunk, LF, q);
          if (nl < 0 || nl >= end) {
            this.lineStart = false;
            this.inRun = true;
            pos++;
            continue;
          }
        }
      } else if (this.inRun) {
        let q = pos;
        while (q < end && chunk[q] === GT) q++;
        this.emit(chunk, pos, q);
        this.prevCR = false;
        if (q === end) return;
        if (end - q < FROM.length) {
          const nl = indexOf.call(chunk, LF, q);
          if (nl < 0 || nl >= end) {
            this.hold = Buffer.from(chunk.subarray(q, end));
            return;
          }
        }
        this.inRun = false;
        const from = end - q >= FROM.length && chunk.compare(FROM, 0, FROM.length, q, q + FROM.length) === 0;
        if (!from) this.emit(QUOTE, 0, 1);
        pos = q;
      }
      this.lineStart = false;
      let nl = indexOf.call(chunk, LF, pos);
      if (nl < 0 || nl >= end) {
        this.emit(chunk, pos, end);
        this.prevCR = chunk[end - 1] === CR;
        return;
      }
      let cr = nl > pos ? chunk[nl - 1] === CR : this.prevCR;
      // This line, then in a body the lines after it that begin with anything but '>' (most lines:
      // nothing to decide), in a tight loop; a line not ended in this chunk goes the long way.
      for (;;) {
        this.line(chunk, pos, nl, cr);
        pos = nl + 1;
        if (this.header || pos >= end || chunk[pos] === GT) break;
        nl = indexOf.call(chunk, LF, pos);
        if (nl < 0 || nl >= end) break;
        cr = nl > pos && chunk[nl - 1] === CR;
      }
      this.lineStart = true;
      this.prevCR = false;
    }
  }

  /** A whole line buf[s, nl] (nl: its LF), as CRLF: kept as it is when `cr` (it has one), else LF becomes CRLF. */
  private line(buf: Buffer, s: number, nl: number, cr: boolean): void {
    if (cr) this.emit(buf, s, nl + 1);
    else {
      this.total += nl - s + 2;
      if (this.parts) {
        if (nl > s) this.parts.push(buf.subarray(s, nl));
        this.parts.push(CRLF);
      }
    }
  }
}

/** The served form of a small stored piece that starts at a line start. */
export function toServed(stored: Buffer): Buffer {
  const c = new ServedConverter();
  const a = c.push(stored);
  const b = c.end();
  return b.length ? Buffer.concat([a, b]) : a;
}

/** The served form of a stored header block: HIDDEN fields left out, as the folder scan counts it. */
export function servedHeader(stored: Buffer): Buffer {
  const c = new ServedConverter({ header: true });
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
