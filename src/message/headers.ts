// The header block of a message (RFC 5322 2.2): splitting a message into
// fields and body, reading fields, removing them, building new ones, and
// writing the block back. A field nobody touched is written back byte for
// byte from its original bytes. A field built here is always one field:
// no value can open a new header line (see cleanValue).
// Fields are read by the one tokenizer, header-tokens.ts, whose top comment
// states the rules (where the header ends follows sendmail's collect.c).

import { HeaderTokens, unfold } from './header-tokens.ts';

export interface HeaderField {
  /** The name as written ("Subject"), without the colon. */
  name: string;
  /** Unfolded (line breaks before white space removed), trimmed, UTF-8 decoded. */
  value: string;
  /** The field's original bytes: name, colon, value, folds and final line end. */
  raw: Buffer;
}

export interface SplitMessage {
  headers: HeaderField[];
  /** Offset of the body in the input: the header fields plus the blank line, if any. */
  headerBytes: number;
  body: Buffer;
  /** The blank line that ended the header ("\n", "\r\n"), or empty when there was none. */
  separator: Buffer;
}

const LF = 0x0a;
const CRLF = Buffer.from('\r\n');
const NEWLINE = Buffer.from('\n');
const FOLD_AT = 78; // RFC 5322 2.1.1: lines SHOULD be at most 78 characters

/**
 * CRLF -> LF, with Buffer.indexOf doing the searching. A lone CR (not
 * before LF) is data and is kept, as sendmail's collect() keeps it; so is
 * the CR of "\r\r\n" (one lone CR, then a line end). Returns the input
 * itself when it has no CRLF.
 */
export function normalizeLineEnds(data: Buffer): Buffer {
  let at = data.indexOf(CRLF);
  if (at < 0) return data;
  const out = Buffer.allocUnsafe(data.length);
  let o = 0;
  let from = 0;
  while (at >= 0) {
    o += data.copy(out, o, from, at);
    out[o++] = LF;
    from = at + 2;
    at = data.indexOf(CRLF, from);
  }
  o += data.copy(out, o, from);
  return out.subarray(0, o);
}

/**
 * Split a message (LF or CRLF line ends) into its header fields and body,
 * with sendmail's rules for where the header ends (header-tokens.ts, strict).
 */
export function splitMessage(data: Buffer): SplitMessage {
  const headers: HeaderField[] = [];
  const t = new HeaderTokens(data, true);
  while (t.next()) headers.push({ name: t.name(), value: t.value(), raw: t.raw() });
  return { headers, headerBytes: t.headerEnd, body: data.subarray(t.headerEnd), separator: data.subarray(t.headerEnd - t.separator, t.headerEnd) };
}

/** The first value of the named field (case-insensitive), or undefined. */
export function getHeader(headers: readonly HeaderField[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find((h) => h.name.toLowerCase() === lower)?.value;
}

/** Every value of the named field, in order. */
export function getAll(headers: readonly HeaderField[], name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter((h) => h.name.toLowerCase() === lower).map((h) => h.value);
}

/** A copy without the named fields (case-insensitive). */
export function removeHeaders(headers: readonly HeaderField[], ...names: string[]): HeaderField[] {
  const drop = new Set(names.map((n) => n.toLowerCase()));
  return headers.filter((h) => !drop.has(h.name.toLowerCase()));
}

/**
 * Make a value safe to be one field's value. A line break followed by
 * white space and text is a fold the caller meant, and stays; any other
 * line break, and any other control character except tab, becomes a
 * space. So "x\nBcc: victim" becomes "x Bcc: victim", one field.
 */
export function cleanValue(value: string): string {
  const lines = value.split(/\r\n|\r|\n/);
  let out = lines[0];
  for (const line of lines.slice(1)) {
    if (/^[ \t]+\S/.test(line)) out += '\n' + line;
    else if (line.trim() !== '') out += ' ' + line;
  }
  return out.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, (c) => (c === '\n' ? c : ' ')).trimEnd();
}

const FIELD_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * Build a field, LF-terminated. The value goes through cleanValue; when the
 * caller gave no folds of its own, lines over 78 characters are folded at
 * white space. A bad field name is a bug in the caller, so it throws.
 */
export function makeHeader(name: string, value: string): HeaderField {
  if (!FIELD_NAME.test(name)) throw new Error(`makeHeader: invalid field name ${JSON.stringify(name)}`);
  const clean = cleanValue(value);
  const text = clean.includes('\n') ? `${name}: ${clean}` : fold(`${name}: ${clean}`);
  return { name, value: unfold(clean), raw: Buffer.from(text + '\n', 'utf8') };
}

/**
 * Fold at the last space that keeps a line within 78 characters, else at
 * the first space after that; never right after the field's colon.
 */
export function fold(line: string): string {
  let out = '';
  let rest = line;
  let min = line.indexOf(': ') + 2; // "Subject:" alone on a line helps nobody
  while (rest.length > FOLD_AT) {
    let at = rest.lastIndexOf(' ', FOLD_AT);
    if (at < min) at = rest.indexOf(' ', Math.max(FOLD_AT, min));
    min = 1;
    if (at < 1) break;
    out += rest.slice(0, at) + '\n';
    rest = rest.slice(at);
    if (rest.trim() === '') break;
  }
  return out + rest;
}

/** The header block as bytes; every field ends with a line end, even if its input did not. */
export function serializeHeaders(headers: readonly HeaderField[]): Buffer {
  const parts: Buffer[] = [];
  for (const h of headers) {
    parts.push(h.raw);
    if (h.raw.length === 0 || h.raw[h.raw.length - 1] !== LF) parts.push(NEWLINE);
  }
  return Buffer.concat(parts);
}

/** Header block, separator (a blank line by default) and body, as one message. */
export function joinMessage(headers: readonly HeaderField[], body: Buffer, separator: Buffer = NEWLINE): Buffer {
  return Buffer.concat([serializeHeaders(headers), separator.length ? separator : NEWLINE, body]);
}
