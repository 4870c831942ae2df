// The MIME structure of a stored message (RFC 2045/2046), for IMAP's
// BODYSTRUCTURE and BODY[section] fetches. One streaming pass over the
// stored lines records, for every part, where its header and body begin and
// end in stored bytes (to read just that range from the mbox), and the size
// and line count of its body as served. Memory stays at a few chunks
// whatever the message's size, so one attachment of a 50 MB message is read
// from disk alone.
//
// How sizes are counted: by served.ts's ServedConverter, the code that makes
// the bytes BODY[n] sends (which runs a fresh converter over the part's
// stored range). Every line of a body is counted once by one converter (runs
// of lines that hold no boundary in one call), and after a whole line the
// converter is back where it starts, so each line's count is what a fresh
// converter gives for it, and a part's size is the sum over its lines. The CRLF before a boundary line belongs to the
// boundary (RFC 2046 5.1.1), so the last line of a part that a boundary ends
// is counted again without its line end, by a fresh converter. A part's
// lines (RFC 3501 body-fld-lines) are those of its body as BODY[n] serves
// it: each CRLF-ended line, and a last line without one when it is not
// empty; so an empty line just before a boundary is not the part's, and the
// boundary lines of a multipart inside a message/rfc822 part are that
// part's. The top-level header loses the hidden mbox fields, as the
// converter's header mode decides.

import { type FolderReader, type MessageRecord, ServedConverter } from '../mailbox/index.ts';
import { decodeExtended, languageTags, type MimeParam, paramValue, parseParams } from '../message/index.ts';
import { envelopeOf, headerMap } from './imap-envelope.ts';
import { nstr, str } from './imap-wire.ts';

export interface Part {
  /** Stored offsets, counted from the message's first header byte. */
  sHeaderStart: number;
  sBodyStart: number;
  sBodyEnd: number;
  /** The body's size as served (BODY[n]'s length), counted by the converter that makes those bytes. */
  size: number;
  lines: number;
  /** The part's header block as stored (hidden fields left out at the top), capped. */
  header: Buffer;
  type: string;
  subtype: string;
  params: MimeParam[];
  boundary?: string;
  children: Part[];
  /** message/rfc822 (and message/global for IMAP4rev2): the message inside. */
  message?: Part;
  phase: 'header' | 'body' | 'closed';
  parent?: Part;
  hdr: Buffer[];
  hdrLen: number;
  digest: boolean;
}

const HEADER_CAP = 64 << 10;
const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const NL_DASH = Buffer.from('\n-');

function newPart(stored: number, parent: Part | undefined, digest = false): Part {
  return {
    sHeaderStart: stored, sBodyStart: -1, sBodyEnd: -1, size: 0, lines: 0,
    header: Buffer.alloc(0), type: 'TEXT', subtype: 'PLAIN', params: [], children: [], phase: 'header', parent, hdr: [], hdrLen: 0, digest,
  };
}

/** "type/sub; a=b; c="d"" -> parts; a missing or broken type is text/plain (RFC 2045 5.2), whose charset is us-ascii. */
export function parseContentType(v: string | undefined, digestChild: boolean): { type: string; subtype: string; params: MimeParam[] } {
  const params = parseParams(v ?? '');
  const m = /^\s*([^\s/;]+)\s*\/\s*([^\s;]+)/.exec(v ?? '');
  const [type, subtype] = m ? [m[1].toUpperCase(), m[2].toUpperCase()] : digestChild ? ['MESSAGE', 'RFC822'] : ['TEXT', 'PLAIN'];
  if (type === 'TEXT' && !params.some(([k]) => k === 'CHARSET')) params.push(['CHARSET', 'us-ascii']);
  return { type, subtype, params };
}

/** parseStructure's read size. */
const PARSE_CHUNK = 256 << 10;

/** The served size of a piece of a line that starts at a line start, as a fresh converter (BODY[n]'s) makes it. */
function servedSize(buf: Buffer, end: number): number {
  const c = new ServedConverter();
  return c.count(buf, 0, end) + c.endCount();
}

/**
 * Lines go to line() in order, whole (LF included) but for the message's
 * last, or several at once to run() when they are body lines that cannot be
 * boundaries; the bytes given must stay unchanged until the next call (the
 * last line is looked at again when a boundary follows it).
 */
class MimeParser {
  readonly root: Part;
  private cur: Part;
  private stored = 0;
  /** The top-level header as served: a line it makes nothing of is a hidden mbox field. */
  private readonly head = new ServedConverter({ header: true });
  /** Every line after the top-level header. */
  private readonly body = new ServedConverter();
  /** The line before this one, and its stored line end (0: none). */
  private prev: Buffer | undefined;
  private prevEol = 0;

  /** `global`: message/global parts enclose a message, as message/rfc822 ones do (IMAP4rev2). */
  constructor(private readonly global: boolean) {
    this.root = newPart(0, undefined);
    this.cur = this.root;
  }

  line(buf: Buffer): void {
    const len = buf.length;
    const terminated = buf[len - 1] === LF;
    const blank = terminated && (len === 1 || (len === 2 && buf[0] === CR));
    const p = this.cur;
    if (p === this.root && p.phase === 'header') {
      const served = this.head.count(buf) + (terminated ? 0 : this.head.endCount());
      if (served > 0) record(p, buf);
      this.advance(buf);
      if (blank) this.endHeader(p);
      return;
    }
    const served = this.body.count(buf) + (terminated ? 0 : this.body.endCount());
    const counted = terminated || served > 0 ? 1 : 0;
    if (p.phase === 'header') {
      record(p, buf);
      addToBody(p.parent, served, counted);
      this.advance(buf);
      if (blank) this.endHeader(p);
      return;
    }
    if (buf[0] === DASH && buf[1] === DASH && this.boundaryLine(buf, served, counted)) {
      this.advance(buf);
      return;
    }
    addToBody(p, served, counted);
    this.advance(buf);
  }

  /** Is the current part in its body, where lines not beginning with '-' can go to run()? */
  get inBody(): boolean {
    return this.cur.phase === 'body';
  }

  /**
   * Whole lines buf[start, end) of the current part's body, none of them
   * beginning with '-' (so no boundary): counted in one call, the
   * converter's fast path.
   */
  run(buf: Buffer, start: number, end: number): void {
    const served = this.body.count(buf, start, end);
    let lines = 0;
    for (let i = start; (i = buf.indexOf(LF, i) + 1) > 0 && i <= end; ) lines++;
    addToBody(this.cur, served, lines);
    const last = end - 1 === start ? start : Math.max(start, buf.lastIndexOf(LF, end - 2) + 1);
    this.stored += last - start;
    this.advance(buf.subarray(last, end));
  }

  /** The buffer the last line was read into is about to be read into again: keep that line as it is. */
  keepPrev(): void {
    if (this.prev) this.prev = Buffer.from(this.prev);
  }

  private advance(buf: Buffer): void {
    const len = buf.length;
    this.stored += len;
    this.prev = buf;
    this.prevEol = buf[len - 1] !== LF ? 0 : len >= 2 && buf[len - 2] === CR ? 2 : 1;
  }

  private endHeader(p: Part): void {
    p.header = Buffer.concat(p.hdr);
    p.hdr = [];
    p.sBodyStart = this.stored;
    p.phase = 'body';
    const h = headerMap(p.header);
    const ct = parseContentType(h.get('content-type'), p.digest);
    Object.assign(p, ct);
    if (p.type === 'MULTIPART') {
      p.boundary = paramValue(p.params, 'boundary');
      if (!p.boundary) Object.assign(p, parseContentType(undefined, false));
    } else if (p.type === 'MESSAGE' && (p.subtype === 'RFC822' || (this.global && p.subtype === 'GLOBAL'))) {
      p.message = newPart(this.stored, p);
      this.cur = p.message;
    }
  }

  /** A "--boundary" line of an open multipart: close what it ends, maybe open a new part. */
  private boundaryLine(buf: Buffer, served: number, counted: number): boolean {
    const text = buf.toString('latin1', 2, Math.min(buf.length, 200)).replace(/[ \t]*\r?\n$/, '');
    for (let q: Part | undefined = this.cur; q; q = q.parent) {
      if (q.type !== 'MULTIPART' || !q.boundary || q.phase !== 'body') continue;
      const last = text === `${q.boundary}--`;
      if (!last && text !== q.boundary) continue;
      if (this.cur !== q) {
        // What the parts it ends lose: the line end before it (RFC 2046 5.1.1).
        const prev = this.prev;
        const piece = prev && this.prevEol > 0 ? servedSize(prev, prev.length - this.prevEol) : 0;
        const cut = prev && this.prevEol > 0 ? servedSize(prev, prev.length) - piece : 0;
        for (let c: Part | undefined = this.cur; c && c !== q; c = c.parent) this.close(c, cut, piece === 0);
      }
      // The boundary line is a line of q's body, and so of every part q lies in.
      addToBody(q, served, counted);
      if (last) {
        // The epilogue: lines after it belong to q, and no boundary of q follows.
        this.cur = q;
        q.boundary = undefined;
        return true;
      }
      const child = newPart(this.stored + buf.length, q, q.subtype === 'DIGEST');
      q.children.push(child);
      this.cur = child;
      return true;
    }
    return false;
  }

  /**
   * The part is over; before a boundary, `cut` is what the boundary's line
   * end takes off its last line as served (-1 for none: the message ended),
   * and `emptied` says that nothing else was on that line.
   */
  private close(p: Part, cut = -1, emptied = false): void {
    if (p.phase === 'closed') return;
    if (p.phase === 'header') this.endHeader(p);
    const eol = cut >= 0 ? this.prevEol : 0;
    const hasBody = p.sBodyStart < this.stored;
    // A header whose empty line is followed at once by the boundary: that line is the
    // boundary's CRLF (RFC 2046 5.1.1), so the part is a header with no empty line and no
    // body, and its MIME header is fetched without one (RFC 3501 6.4.5: "except in the case
    // of a message which has no body and no blank line").
    if (eol > 0 && p.sBodyStart === this.stored && p.header.length >= eol && isEmptyLineEnd(p.header, eol)) {
      p.header = p.header.subarray(0, p.header.length - eol);
      p.sBodyStart -= eol;
    }
    // The line before the boundary is the part's when its body has bytes: it loses its
    // line end, and is no line at all when nothing else was on it.
    if (eol > 0 && hasBody) {
      p.size -= cut;
      if (emptied) p.lines--;
    }
    p.sBodyEnd = Math.max(p.sBodyStart, this.stored - eol);
    p.phase = 'closed';
    if (p.message) this.close(p.message, cut, emptied);
  }

  finish(): Part {
    for (let c: Part | undefined = this.cur; c; c = c.parent) this.close(c);
    return this.root;
  }
}

/** A line of the part's header block, kept up to the cap. */
function record(p: Part, buf: Buffer): void {
  if (p.hdrLen >= HEADER_CAP) return;
  p.hdr.push(Buffer.from(buf));
  p.hdrLen += buf.length;
}

/** Lines of the body of p, and of each part around it whose body has begun: their served size and count. */
function addToBody(p: Part | undefined, served: number, counted: number): void {
  for (let q = p; q; q = q.parent) {
    if (q.phase !== 'body') continue;
    q.size += served;
    q.lines += counted;
  }
}

/** The header block ends in an empty line of `eol` bytes (LF or CRLF) after another line's end. */
function isEmptyLineEnd(h: Buffer, eol: number): boolean {
  const n = h.length;
  return h[n - 1] === LF && (eol === 1 || h[n - 2] === CR) && (n === eol || h[n - eol - 1] === LF);
}

/**
 * Parse the stored message behind a record, a chunk at a time. With
 * `global` (an IMAP4rev2 session), a message/global part (RFC 6532) encloses
 * a message as message/rfc822 does: RFC 9051's media-message is "MESSAGE"
 * ("RFC822" / "GLOBAL"), with envelope, body and lines. RFC 3501's is RFC822
 * alone, so for IMAP4rev1 it is a part like any other (as Dovecot 2.3 has it).
 */
export async function parseStructure(reader: FolderReader, rec: MessageRecord, global = false): Promise<Part> {
  const parser = new MimeParser(global);
  let carry: Buffer[] = [];
  // One buffer read into again and again: a new one a chunk is garbage that fast parsing makes
  // faster than V8 collects it (fetching a part of a 50 MB message grew the process by 26 MB, not 11).
  const into = Buffer.allocUnsafe(PARSE_CHUNK);
  for await (const chunk of reader.chunks(rec, 0, rec.length - rec.fromLen, into)) {
    let pos = 0;
    for (;;) {
      if (parser.inBody && !carry.length && chunk[pos] !== DASH) {
        // Body lines up to the next one beginning with '-' (or the chunk's last whole line), at once.
        const dash = chunk.indexOf(NL_DASH, pos);
        const end = dash >= 0 ? dash + 1 : chunk.lastIndexOf(LF) + 1;
        if (end > pos) {
          parser.run(chunk, pos, end);
          pos = end;
          continue;
        }
      }
      const nl = chunk.indexOf(LF, pos);
      if (nl < 0) break;
      if (carry.length) {
        carry.push(chunk.subarray(pos, nl + 1));
        parser.line(Buffer.concat(carry));
        carry = [];
      } else parser.line(chunk.subarray(pos, nl + 1));
      pos = nl + 1;
    }
    if (pos < chunk.length) carry.push(Buffer.from(chunk.subarray(pos)));
    // A line without an end for megabytes: look at it in pieces (it cannot be a boundary).
    if (carry.length > 64) carry = [Buffer.concat(carry)];
    parser.keepPrev();
  }
  if (carry.length) parser.line(Buffer.concat(carry));
  return parser.finish();
}

/**
 * The part a section's numbers name ("1.2"), as RFC 3501 6.4.5 numbers them
 * and Dovecot's imap_msgpart_find (lib-imap-storage/imap-msgpart.c) walks
 * them: the parts of a multipart are 1..n; a message that is not multipart
 * has only a part 1, its body, so part 1 of a top-level message/rfc822
 * message is the root itself (BODY[1] the whole enclosed message, 1.MIME the
 * top-level header, 1.HEADER and 1.TEXT the enclosed message's); a number
 * after a message/rfc822 part counts in the message it encloses ("3.1"),
 * and after any other non-multipart part there is none.
 */
export function findPart(root: Part, path: number[]): Part | undefined {
  let p: Part | undefined = root;
  for (let i = 0; i < path.length && p; i++) {
    const n = path[i];
    const more = i + 1 < path.length;
    if (p.type === 'MULTIPART') p = p.children[n - 1];
    else if (n !== 1 || (more && !p.message)) p = undefined;
    if (p?.message && more) p = p.message;
  }
  return p;
}

/**
 * body-fld-param. For an IMAP4rev2 session (`utf8`) an RFC 2231 encoded
 * value (`NAME*`, its sections already joined) is decoded and sent as UTF-8
 * under the same name, as RFC 9051 7.5.2 asks: "if the message contains
 * parameters "foo*0*" and "foo*1*", the server should decode them per
 * [RFC2231], convert to UTF-8, concatenate, and return the resulting value as
 * a parameter "foo*"" (a value in a charset not known here stays encoded).
 * Disposition parameters alike: for them RFC 9051 names only continuations,
 * but one rule for every parameter list lets a client read FILENAME* as it
 * reads NAME*. A decoded value with two apostrophes stays encoded: under a
 * name ending in '*' it would read as `charset'lang'value` again (imapflow
 * takes "Rock 'n' Roll.txt" for charset "Rock " and shows "_Roll.txt").
 * IMAP4rev1 (RFC 3501) says nothing of RFC 2231; there the value stays in
 * its `charset'lang'%XX` form, as Dovecot 2.3 sends it.
 */
function paramList(params: MimeParam[], utf8: boolean): string {
  if (!params.length) return 'NIL';
  const decoded = (v: string) => {
    const text = decodeExtended(v);
    return text === undefined || LOOKS_ENCODED.test(text) ? v : text;
  };
  const value = (k: string, v: string) => (utf8 && k.endsWith('*') ? decoded(v) : v);
  return `(${params.map(([k, v]) => `${str(k)} ${str(value(k, v))}`).join(' ')})`;
}

/** The `charset'lang'` head of an RFC 2231 extended value. */
const LOOKS_ENCODED = /^[^']*'[^']*'/;

function disposition(h: Map<string, string>, utf8: boolean): string {
  const v = h.get('content-disposition');
  if (!v) return 'NIL';
  const word = /^\s*([^\s;]+)/.exec(v)?.[1] ?? 'attachment';
  return `(${str(word.toUpperCase())} ${paramList(parseParams(v), utf8)})`;
}

/** body-fld-lang (RFC 3501 7.4.2): one tag as a string, several as a list. */
function language(h: Map<string, string>): string {
  const v = h.get('content-language');
  if (v === undefined) return 'NIL';
  const tags = languageTags(v);
  return tags.length > 1 ? `(${tags.map(str).join(' ')})` : nstr(tags[0] ?? v);
}

/** BODYSTRUCTURE (extensible = true) or BODY of a part; `utf8` for an IMAP4rev2 session (paramList). */
export function bodyStructure(p: Part, extensible: boolean, utf8 = false): string {
  const h = headerMap(p.header);
  if (p.type === 'MULTIPART') {
    // A multipart with no delimiter line has no parts; one empty text/plain part stands in,
    // described as any other (RFC 2045 5.2's default charset, extension data when asked), as Dovecot does.
    const kids = p.children.length ? p.children.map((c) => bodyStructure(c, extensible, utf8)).join('') : `("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0${extensible ? ' NIL NIL NIL NIL' : ''})`;
    const ext = extensible ? ` ${paramList(p.params, utf8)} ${disposition(h, utf8)} ${language(h)} ${nstr(h.get('content-location'))}` : '';
    return `(${kids} ${str(p.subtype)}${ext})`;
  }
  const enc = (h.get('content-transfer-encoding') ?? '7BIT').trim().toUpperCase() || '7BIT';
  const fields = [str(p.type), str(p.subtype), paramList(p.params, utf8), nstr(h.get('content-id')), nstr(h.get('content-description')), str(enc), String(p.size)];
  if (p.type === 'TEXT') fields.push(String(p.lines));
  if (p.message) fields.push(envelopeOf(p.message.header), bodyStructure(p.message, extensible, utf8), String(p.lines));
  if (extensible) fields.push(nstr(h.get('content-md5')), disposition(h, utf8), language(h), nstr(h.get('content-location')));
  return `(${fields.join(' ')})`;
}
