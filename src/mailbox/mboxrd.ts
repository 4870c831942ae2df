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
 * RFC 3461 xtext of an envelope sender's UTF-8 bytes: '!' to '~' as they
 * are except '+' and '=', every other byte (space, controls, 8-bit) as "+XX".
 * The From_ line stays ASCII and one word; Return-Path keeps the sender as is.
 */
export function xtextEncode(sender: string): string {
  if (/^[!-*,-<>-~]*$/.test(sender)) return sender;
  let out = '';
  for (const b of Buffer.from(sender, 'utf8')) {
    out += b >= 0x21 && b <= 0x7e && b !== 0x2b && b !== 0x3d ? String.fromCharCode(b) : `+${HEX[b >> 4]}${HEX[b & 15]}`;
  }
  return out;
}

/**
 * The sender xtextEncode wrote, its bytes read as UTF-8. A "+" not followed
 * by two upper-case hex digits stays as it is (other writers put raw senders
 * here).
 */
export function xtextDecode(word: string): string {
  if (!word.includes('+')) return word;
  const src = Buffer.from(word, 'utf8');
  const out = Buffer.allocUnsafe(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    if (src[i] === 0x2b && i + 2 < src.length && isUpperHex(src[i + 1]) && isUpperHex(src[i + 2])) {
      out[n++] = (hexValue(src[i + 1]) << 4) | hexValue(src[i + 2]);
      i += 2;
    } else out[n++] = src[i];
  }
  return out.toString('utf8', 0, n);
}

function isUpperHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46);
}

function hexValue(c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x37;
}
