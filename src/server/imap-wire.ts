// IMAP's wire syntax (RFC 3501 section 9): commands arrive as text with
// literals spliced in ({n} synchronizing, {n+} LITERAL+ of RFC 7888) and are
// tokenized here into atoms, quoted strings, literals and parenthesized
// lists; an atom keeps a bracketed section whole, so that
// BODY.PEEK[HEADER.FIELDS (DATE FROM)]<0.100> is one token. Also the other
// direction (strings as quoted or literal, NIL) and sequence sets. Pure.

export type Token =
  | { kind: 'atom'; value: string }
  | { kind: 'string'; value: string; bytes: Buffer }
  | { kind: 'list'; items: Token[] };

export class ParseError extends Error {}

/** Text of the command with literals as Buffers between the pieces of text. */
export type CommandParts = Array<string | Buffer>;

export function tokenize(parts: CommandParts): Token[] {
  const stack: Token[][] = [[]];
  const top = () => stack[stack.length - 1];
  for (const part of parts) {
    if (typeof part !== 'string') {
      top().push({ kind: 'string', value: part.toString('utf8'), bytes: part });
      continue;
    }
    let i = 0;
    while (i < part.length) {
      const c = part[i];
      if (c === ' ') i++;
      else if (c === '(') {
        stack.push([]);
        i++;
      } else if (c === ')') {
        if (stack.length < 2) throw new ParseError('unbalanced ")"');
        const items = stack.pop()!;
        top().push({ kind: 'list', items });
        i++;
      } else if (c === '"') i = quoted(part, i, top());
      else i = atom(part, i, top());
    }
  }
  if (stack.length !== 1) throw new ParseError('unbalanced "("');
  return stack[0];
}

function quoted(s: string, start: number, out: Token[]): number {
  let v = '';
  for (let i = start + 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) v += s[++i];
    else if (c === '"') {
      out.push({ kind: 'string', value: v, bytes: Buffer.from(v, 'utf8') });
      return i + 1;
    } else v += c;
  }
  throw new ParseError('unterminated quoted string');
}

/** An atom runs to a space or parenthesis outside brackets. */
function atom(s: string, start: number, out: Token[]): number {
  let depth = 0;
  let i = start;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '[') depth++;
    else if (c === ']') depth = Math.max(0, depth - 1);
    else if (depth === 0 && (c === ' ' || c === '(' || c === ')')) break;
  }
  out.push({ kind: 'atom', value: s.slice(start, i) });
  return i;
}

/** An astring's value (atom or string); throws on a list. */
export function astring(t: Token | undefined, what = 'argument'): string {
  if (!t || t.kind === 'list') throw new ParseError(`${what} expected`);
  return t.value;
}

export function isAtom(t: Token | undefined, value?: string): t is { kind: 'atom'; value: string } {
  return t?.kind === 'atom' && (value === undefined || t.value.toUpperCase() === value);
}

// ------------------------------------------------------------ output

/** A string as IMAP sends it: quoted when it can be, a literal otherwise. */
export function str(v: string | Buffer): string {
  const s = typeof v === 'string' ? v : v.toString('utf8');
  // eslint-disable-next-line no-control-regex
  if (s.length < 1024 && !/[\r\n\0\x80-\uffff]/.test(s)) return `"${s.replace(/[\\"]/g, '\\$&')}"`;
  const bytes = Buffer.byteLength(s, 'utf8');
  return `{${bytes}}\r\n${s}`;
}

export function nstr(v: string | undefined | null): string {
  return v === undefined || v === null ? 'NIL' : str(v);
}

/** A mailbox name or other astring: an atom when safe, else as str(). */
export function astr(v: string): string {
  return /^[A-Za-z0-9_.\-/+&~!$:@]+$/.test(v) && v.toUpperCase() !== 'NIL' ? v : str(v);
}

// ------------------------------------------------------------ sequence sets

export interface SeqSet {
  ranges: Array<[number, number]>;
}

/** "1:3,5,7:*"; '*' becomes `max` (the largest number in use; 0 when none). */
export function parseSeqSet(s: string, max: number): SeqSet {
  if (!/^(\d+|\*)(:(\d+|\*))?(,(\d+|\*)(:(\d+|\*))?)*$/.test(s)) throw new ParseError(`bad sequence set "${s.slice(0, 40)}"`);
  const num = (x: string) => (x === '*' ? max : Number(x));
  const ranges = s.split(',').map((part): [number, number] => {
    const [a, b] = part.split(':');
    const x = num(a);
    const y = b === undefined ? x : num(b);
    if (x === 0 && a !== '*') throw new ParseError('0 is not a message number');
    return x <= y ? [x, y] : [y, x];
  });
  return { ranges };
}

export function inSet(set: SeqSet, n: number): boolean {
  for (const [a, b] of set.ranges) if (n >= a && n <= b) return true;
  return false;
}

/** Numbers as a compact set: 1:3,7 (for COPYUID, SEARCH results stay plain lists). */
export function formatSet(nums: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < nums.length; ) {
    let j = i;
    while (j + 1 < nums.length && nums[j + 1] === nums[j] + 1) j++;
    out.push(i === j ? String(nums[i]) : `${nums[i]}:${nums[j]}`);
    i = j + 1;
  }
  return out.join(',');
}

// ------------------------------------------------------------ dates

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** INTERNALDATE: "17-Jul-1996 02:44:25 -0700" in local time, day padded with a space. */
export function imapDate(ms: number): string {
  const d = new Date(Number.isFinite(ms) ? ms : 0);
  const p = (n: number) => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = `${off >= 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`;
  return `"${String(d.getDate()).padStart(2, ' ')}-${MONTHS[d.getMonth()]}-${d.getFullYear()} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${zone}"`;
}

/** APPEND's date-time; undefined when malformed. */
export function parseDateTime(s: string): Date | undefined {
  const m = /^ ?(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$/.exec(s);
  if (!m) return undefined;
  const mon = MONTHS.findIndex((x) => x.toLowerCase() === m[2].toLowerCase());
  if (mon < 0) return undefined;
  const off = (m[7] === '-' ? -1 : 1) * (Number(m[8]) * 60 + Number(m[9]));
  return new Date(Date.UTC(Number(m[3]), mon, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6])) - off * 60_000);
}

/** SEARCH's date: "1-Feb-1994" as the start of that day (local time). */
export function parseSearchDate(s: string): number | undefined {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(s);
  if (!m) return undefined;
  const mon = MONTHS.findIndex((x) => x.toLowerCase() === m[2].toLowerCase());
  return mon < 0 ? undefined : new Date(Number(m[3]), mon, Number(m[1])).getTime();
}
