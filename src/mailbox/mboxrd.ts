// The one rule for "From " lines in message text, shared by every writer and
// every reader of mbox files: mboxrd, the reversible convention. Writing, a
// line matching ^>*From  gets one more '>'; reading, a line matching ^>+From 
// loses one. A message's bytes therefore come back exactly as they went in,
// whatever its lines begin with. mboxo files (Postfix local, mail.local:
// only ^From  quoted) read the same way, which is right for their quoted
// "From " lines and takes one '>' from a line that was ">From " in the
// original: an ambiguity mboxo has by nature. Also the From_ line's sender,
// kept ASCII as RFC 3461 xtext. Pure: no files here.

const GT = 0x3e;
const LF = 0x0a;
const QUOTE = Buffer.from('>');
const FROM = Buffer.from('From ');
const GT_FROM = Buffer.from('>From ');

/** True when data[at] is a line start. */
function lineStart(data: Buffer, at: number): boolean {
  return at === 0 || data[at - 1] === LF;
}

/** Where the run of '>' that ends just before `end` begins. */
function runStart(data: Buffer, end: number): number {
  let s = end;
  while (s > 0 && data[s - 1] === GT) s--;
  return s;
}

/**
 * The number of '>' before "From " when the line buf[at, end) matches
 * ^>*From  (0: an unquoted "From " line), or -1 when it does not match.
 */
export function fromLineDepth(buf: Buffer, at: number, end: number): number {
  let p = at;
  while (p < end && buf[p] === GT) p++;
  if (end - p < FROM.length || buf.compare(FROM, 0, FROM.length, p, p + FROM.length) !== 0) return -1;
  return p - at;
}

/** Does the stored line buf[at, end) match ^>+From , so that a reader takes one '>' from it? */
export function isQuotedFromLine(buf: Buffer, at = 0, end = buf.length): boolean {
  return buf[at] === GT && fromLineDepth(buf, at, end) > 0;
}

/** Writing: one more '>' before every line matching ^>*From , without copying the data. */
export function quoteFromLines(data: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let hit = data.indexOf(FROM); hit !== -1; hit = data.indexOf(FROM, hit + 1)) {
    const s = runStart(data, hit);
    if (!lineStart(data, s)) continue;
    if (s > start) out.push(data.subarray(start, s));
    out.push(QUOTE);
    start = s;
  }
  if (start < data.length) out.push(data.subarray(start));
  return out;
}

/** Reading: one '>' less on every line matching ^>+From . Returns `data` itself when nothing changes. */
export function unquoteFrom(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let hit = data.indexOf(GT_FROM); hit !== -1; hit = data.indexOf(GT_FROM, hit + 1)) {
    if (!lineStart(data, runStart(data, hit))) continue;
    parts.push(data.subarray(start, hit)); // the '>' at `hit` is the one dropped
    start = hit + 1;
  }
  if (parts.length === 0) return data;
  parts.push(data.subarray(start));
  return Buffer.concat(parts);
}

/** Lines of `data` matching ^>+From : the unquoted text is this many bytes shorter. */
export function countQuoted(data: Buffer): number {
  let n = 0;
  for (let hit = data.indexOf(GT_FROM); hit !== -1; hit = data.indexOf(GT_FROM, hit + 1)) {
    if (lineStart(data, runStart(data, hit))) n++;
  }
  return n;
}

// ------------------------------------------------------------ the From_ line's sender

const HEX = '0123456789ABCDEF';

/**
 * The envelope sender for the From_ line, ASCII and one word: its bytes
 * outside '!'..'~' (8-bit UTF-8, space, controls) as RFC 3461 xtext "+XX".
 * '+' and '=' stay as they are, so that the everyday sender (user+tag@x,
 * VERP, SRS) reads the same to every other tool (procmail, mutt, Python);
 * only a sender that was not ASCII changes. Return-Path keeps it as is.
 */
export function xtextEncode(sender: string): string {
  if (/^[!-~]*$/.test(sender)) return sender;
  let out = '';
  for (const b of Buffer.from(sender, 'utf8')) out += b >= 0x21 && b <= 0x7e ? String.fromCharCode(b) : `+${HEX[b >> 4]}${HEX[b & 15]}`;
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The sender xtextEncode wrote: "+XX" for 8-bit bytes is decoded when the
 * result is UTF-8; anything else (a raw "+12" of another writer's sender,
 * an encoded space or control) stays as written.
 */
export function xtextDecode(word: string): string {
  if (!/\+[89A-F][0-9A-F]/.test(word)) return word;
  const src = Buffer.from(word, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    if (src[i] === 0x2b && i + 2 < src.length && isUpperHex(src[i + 1]) && isUpperHex(src[i + 2]) && hexValue(src[i + 1]) >= 8) {
      out[n++] = (hexValue(src[i + 1]) << 4) | hexValue(src[i + 2]);
      i += 2;
    } else out[n++] = src[i];
  }
  try {
    return UTF8.decode(out.subarray(0, n));
  } catch {
    return word;
  }
}

function isUpperHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x37;
}
