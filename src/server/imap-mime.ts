// The MIME structure of a stored message (RFC 2045/2046), for IMAP's
// BODYSTRUCTURE and BODY[section] fetches. One streaming pass over the
// stored lines records, for every part, where its header and body begin and
// end both in stored bytes (to read just that range from the mbox) and in
// served bytes (CRLF, unquoted: what the client counts), and the body's line
// count; memory stays at a few chunks whatever the message's size, so one
// attachment of a 50 MB message is read from disk alone. The CRLF before a
// boundary line belongs to the boundary (RFC 2046 5.1.1), so a part's body
// ends before it. A part's lines (RFC 3501 body-fld-lines) are those of its
// body as BODY[n] serves it: each CRLF-ended line, and a last line without
// one when it is not empty; so an empty line just before a boundary is not
// the part's, and the boundary lines of a multipart inside a message/rfc822
// part are that part's. The top-level header loses the hidden mbox fields.

import { type FolderReader, HIDDEN, isQuotedFromLine, type MessageRecord } from '../mailbox/index.ts';
import { HeaderTokens, languageTags, type MimeParam, paramValue, parseParams } from '../message/index.ts';
import { envelopeOf, headerMap } from './imap-envelope.ts';
import { nstr, str } from './imap-wire.ts';

export interface Part {
  /** Served offsets in the message. */
  headerStart: number;
  bodyStart: number;
  bodyEnd: number;
  /** Stored offsets, counted from the message's first header byte. */
  sHeaderStart: number;
  sBodyStart: number;
  sBodyEnd: number;
  lines: number;
  /** The last line counted in `lines` was empty: before a boundary, that line is the boundary's CRLF. */
  lastBlank: boolean;
  /** The part's header block as stored (hidden fields left out at the top), capped. */
  header: Buffer;
  type: string;
  subtype: string;
  params: MimeParam[];
  boundary?: string;
  children: Part[];
  /** message/rfc822: the message inside. */
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

function newPart(served: number, stored: number, parent: Part | undefined, digest = false): Part {
  return {
    headerStart: served, bodyStart: -1, bodyEnd: -1, sHeaderStart: stored, sBodyStart: -1, sBodyEnd: -1, lines: 0, lastBlank: false,
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

class MimeParser {
  readonly root: Part;
  private cur: Part;
  private served = 0;
  private stored = 0;
  private hiding = false;
  private prevEol = { served: 0, stored: 0 };

  constructor() {
    this.root = newPart(0, 0, undefined);
    this.cur = this.root;
  }

  line(buf: Buffer): void {
    const len = buf.length;
    const terminated = buf[len - 1] === LF;
    const crlf = terminated && len >= 2 && buf[len - 2] === CR;
    let served = len - (buf[0] === 0x3e && isQuotedFromLine(buf) ? 1 : 0) + (terminated && !crlf ? 1 : 0);
    const blank = terminated && (len === 1 || (len === 2 && crlf));
    const p = this.cur;
    if (p.phase === 'header') {
      if (p === this.root && !blank) {
        if (buf[0] !== 0x20 && buf[0] !== 0x09) this.hiding = isHiddenLine(buf);
        if (this.hiding) served = 0;
      }
      if (served > 0 && p.hdrLen < HEADER_CAP) {
        p.hdr.push(Buffer.from(buf));
        p.hdrLen += len;
      }
      countLine(p.parent, blank);
      this.advance(len, served, terminated, crlf);
      if (blank) this.endHeader(p);
      return;
    }
    if (buf[0] === 0x2d && buf[1] === 0x2d && this.boundaryLine(buf)) {
      this.advance(len, served, terminated, crlf);
      return;
    }
    countLine(p, blank);
    this.advance(len, served, terminated, crlf);
  }

  private advance(len: number, served: number, terminated: boolean, crlf: boolean): void {
    this.stored += len;
    this.served += served;
    this.prevEol = terminated ? { served: 2, stored: crlf ? 2 : 1 } : { served: 0, stored: 0 };
  }

  private endHeader(p: Part): void {
    p.header = Buffer.concat(p.hdr);
    p.hdr = [];
    p.bodyStart = this.served;
    p.sBodyStart = this.stored;
    p.phase = 'body';
    const h = headerMap(p.header);
    const ct = parseContentType(h.get('content-type'), p.digest);
    Object.assign(p, ct);
    if (p.type === 'MULTIPART') {
      p.boundary = paramValue(p.params, 'boundary');
      if (!p.boundary) Object.assign(p, parseContentType(undefined, false));
    } else if (p.type === 'MESSAGE' && p.subtype === 'RFC822') {
      p.message = newPart(this.served, this.stored, p);
      this.cur = p.message;
    }
  }

  /** A "--boundary" line of an open multipart: close what it ends, maybe open a new part. */
  private boundaryLine(buf: Buffer): boolean {
    const text = buf.toString('latin1', 2, Math.min(buf.length, 200)).replace(/[ \t]*\r?\n$/, '');
    for (let q: Part | undefined = this.cur; q; q = q.parent) {
      if (q.type !== 'MULTIPART' || !q.boundary || q.phase !== 'body') continue;
      const last = text === `${q.boundary}--`;
      if (!last && text !== q.boundary) continue;
      for (let c: Part | undefined = this.cur; c && c !== q; c = c.parent) this.close(c, true);
      // The boundary line is a line of q's body, and so of every part q lies in.
      countLine(q, false);
      if (last) {
        // The epilogue: lines after it belong to q, and no boundary of q follows.
        this.cur = q;
        q.boundary = undefined;
        return true;
      }
      const child = newPart(this.served + served(buf), this.stored + buf.length, q, q.subtype === 'DIGEST');
      q.children.push(child);
      this.cur = child;
      return true;
    }
    return false;
  }

  private close(p: Part, beforeBoundary: boolean): void {
    if (p.phase === 'closed') return;
    if (p.phase === 'header') this.endHeader(p);
    const eol = beforeBoundary ? this.prevEol : { served: 0, stored: 0 };
    // A header whose empty line is followed at once by the boundary: that line is the
    // boundary's CRLF (RFC 2046 5.1.1), so the part is a header with no empty line and no
    // body, and its MIME header is fetched without one (RFC 3501 6.4.5: "except in the case
    // of a message which has no body and no blank line").
    if (beforeBoundary && eol.stored > 0 && p.sBodyStart === this.stored && p.header.length >= eol.stored && isEmptyLineEnd(p.header, eol.stored)) {
      p.header = p.header.subarray(0, p.header.length - eol.stored);
      p.bodyStart -= eol.served;
      p.sBodyStart -= eol.stored;
    }
    p.bodyEnd = Math.max(p.bodyStart, this.served - eol.served);
    p.sBodyEnd = Math.max(p.sBodyStart, this.stored - eol.stored);
    // Without the boundary's CRLF a last empty line is no line; a last line of text stays one.
    if (beforeBoundary && p.lastBlank) p.lines--;
    p.phase = 'closed';
    if (p.message) this.close(p.message, beforeBoundary);
  }

  finish(): Part {
    for (let c: Part | undefined = this.cur; c; c = c.parent) this.close(c, false);
    return this.root;
  }
}

/** One more line in the body of p and of each part around it whose body has begun. */
function countLine(p: Part | undefined, blank: boolean): void {
  for (let q = p; q; q = q.parent) {
    if (q.phase !== 'body') continue;
    q.lines++;
    q.lastBlank = blank;
  }
}

/** The header block ends in an empty line of `eol` bytes (LF or CRLF) after another line's end. */
function isEmptyLineEnd(h: Buffer, eol: number): boolean {
  const n = h.length;
  return h[n - 1] === LF && (eol === 1 || h[n - 2] === CR) && (n === eol || h[n - eol - 1] === LF);
}

function served(buf: Buffer): number {
  const len = buf.length;
  const terminated = buf[len - 1] === LF;
  return len + (terminated && !(len >= 2 && buf[len - 2] === CR) ? 1 : 0);
}

/** Does this line of the top-level header start one of the hidden mbox fields (wherever its colon, as served.ts and visibleHeader see it)? */
function isHiddenLine(buf: Buffer): boolean {
  const t = new HeaderTokens(buf);
  return t.next() && t.colon >= 0 && HIDDEN.includes(t.name().toLowerCase());
}

/** Parse the stored message behind a record, a chunk at a time. */
export async function parseStructure(reader: FolderReader, rec: MessageRecord): Promise<Part> {
  const parser = new MimeParser();
  let carry: Buffer[] = [];
  for await (const chunk of reader.chunks(rec, 0, rec.length - rec.fromLen)) {
    let pos = 0;
    for (;;) {
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

function paramList(params: MimeParam[]): string {
  return params.length ? `(${params.map(([k, v]) => `${str(k)} ${str(v)}`).join(' ')})` : 'NIL';
}

function disposition(h: Map<string, string>): string {
  const v = h.get('content-disposition');
  if (!v) return 'NIL';
  const word = /^\s*([^\s;]+)/.exec(v)?.[1] ?? 'attachment';
  return `(${str(word.toUpperCase())} ${paramList(parseParams(v))})`;
}

/** body-fld-lang (RFC 3501 7.4.2): one tag as a string, several as a list. */
function language(h: Map<string, string>): string {
  const v = h.get('content-language');
  if (v === undefined) return 'NIL';
  const tags = languageTags(v);
  return tags.length > 1 ? `(${tags.map(str).join(' ')})` : nstr(tags[0] ?? v);
}

/** BODYSTRUCTURE (extensible = true) or BODY of a part. */
export function bodyStructure(p: Part, extensible: boolean): string {
  const h = headerMap(p.header);
  if (p.type === 'MULTIPART') {
    // A multipart with no delimiter line has no parts; one empty text/plain part stands in,
    // described as any other (RFC 2045 5.2's default charset, extension data when asked), as Dovecot does.
    const kids = p.children.length ? p.children.map((c) => bodyStructure(c, extensible)).join('') : `("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0${extensible ? ' NIL NIL NIL NIL' : ''})`;
    const ext = extensible ? ` ${paramList(p.params)} ${disposition(h)} ${language(h)} ${nstr(h.get('content-location'))}` : '';
    return `(${kids} ${str(p.subtype)}${ext})`;
  }
  const enc = (h.get('content-transfer-encoding') ?? '7BIT').trim().toUpperCase() || '7BIT';
  const fields = [str(p.type), str(p.subtype), paramList(p.params), nstr(h.get('content-id')), nstr(h.get('content-description')), str(enc), String(p.bodyEnd - p.bodyStart)];
  if (p.type === 'TEXT') fields.push(String(p.lines));
  if (p.message) fields.push(envelopeOf(p.message.header), bodyStructure(p.message, extensible), String(p.lines));
  if (extensible) fields.push(nstr(h.get('content-md5')), disposition(h), language(h), nstr(h.get('content-location')));
  return `(${fields.join(' ')})`;
}
