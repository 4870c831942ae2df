// The aliases(5) text format: logical lines, `name: member, member`, and the
// member-list syntax that :include: and ~/.forward files share. Owns no file;
// turns text into AliasEntry values once, so nothing downstream parses a
// right-hand side again. Line rules follow sendmail's readaliases(): `#` in
// column 1 and blank lines end an entry, a leading space or tab continues it,
// a backslash before the newline joins the next line. From Postfix: quoted
// names, and indented `#` lines are comments. A duplicate name warns and the
// last one wins, as sendmail's map_store replaces the earlier value.
//
// How we do it: one pass over the text with indexOf, no array of lines, and a
// fast path for the common single-line entry with plain members, because
// newaliases on a 100,000-line file is timed against Postfix's postalias
// (builder.ts has a byte-level path for plain lines that defers to this one).

import { META_KEY } from './format.ts';

export interface AliasEntry {
  /** Lower-cased, unquoted alias name: the database key. */
  name: string;
  /** Canonical members: `|cmd`, `/file`, `:include:/path`, `\user`, or an address. */
  members: string[];
  /** Line the entry starts on (1-based). */
  line: number;
  /** Bytes of the right-hand side as written, for sendmail's statistics. */
  rhsBytes: number;
}

export interface ParseError {
  line: number;
  message: string;
}

export interface ParseResult {
  entries: AliasEntry[];
  warnings: string[];
  errors: ParseError[];
}

const NL = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const HASH = 0x23;
const BACKSLASH = 0x5c;

/** One logical line: the joined text and where each physical line starts in it. */
interface Logical {
  text: string;
  line: number;
  /** [offset in text, line number] for each joined physical line after the first. */
  breaks: Array<[number, number]> | undefined;
}

export function parseAliases(text: string, file: string): ParseResult {
  const result: ParseResult = { entries: [], warnings: [], errors: [] };
  const seen = new Map<string, number>(); // name -> index in entries
  const scan = new Scanner(text);
  for (let logical = scan.next(result.errors); logical; logical = scan.next(result.errors)) {
    const entry = parseEntry(logical, result.errors);
    if (entry) addEntry(entry, seen, result, file);
  }
  return result;
}

function addEntry(entry: AliasEntry, seen: Map<string, number>, result: ParseResult, file: string): void {
  const prev = seen.get(entry.name);
  if (prev === undefined) {
    seen.set(entry.name, result.entries.length);
    result.entries.push(entry);
    return;
  }
  const first = result.entries[prev].line;
  result.warnings.push(
    `${file}:${entry.line}: warning: duplicate alias name ${entry.name} (also on line ${first}; the last one wins)`,
  );
  result.entries[prev] = entry;
}

/** Walks physical lines, yielding logical ones and skipping comments and blank lines. */
class Scanner {
  private pos = 0;
  private lineNo = 0;

  constructor(private readonly text: string) {}

  next(errors: ParseError[]): Logical | undefined {
    const { text } = this;
    while (this.pos < text.length) {
      const start = this.pos;
      const end = this.lineEnd(start);
      this.advance(end);
      const c = text.charCodeAt(start);
      if (end === start || c === HASH) continue;
      if (c === SP || c === TAB) {
        if (!isBlankOrComment(text, start, end)) {
          errors.push({ line: this.lineNo, message: 'line starts with white space but continues nothing (a blank or # line ends the alias above it)' });
        }
        continue;
      }
      return this.join(start, end);
    }
    return undefined;
  }

  /** End of the physical line at start, without its \r\n or \n. */
  private lineEnd(start: number): number {
    let nl = this.text.indexOf('\n', start);
    if (nl < 0) nl = this.text.length;
    return nl > start && this.text.charCodeAt(nl - 1) === CR ? nl - 1 : nl;
  }

  private advance(end: number): void {
    const nl = this.text.indexOf('\n', end);
    this.pos = nl < 0 ? this.text.length : nl + 1;
    this.lineNo++;
  }

  /**
   * The logical line starting with [start, end): continuation lines appended.
   * Whether a line ends in a backslash is judged per physical line, as
   * sendmail's contline() does.
   */
  private join(start: number, end: number): Logical {
    const { text } = this;
    const line = this.lineNo;
    let backslash = endsInBackslash(text, start, end);
    if (!backslash && !this.startsWithSpace(this.pos)) return { text: text.slice(start, end), line, breaks: undefined };
    let joined = text.slice(start, end);
    const breaks: Array<[number, number]> = [];
    while (this.pos < text.length && (backslash || this.startsWithSpace(this.pos))) {
      const s = this.pos;
      const e = this.lineEnd(s);
      this.advance(e);
      if (!backslash && isIndentedComment(text, s, e)) continue;
      if (backslash) joined = joined.slice(0, -1);
      breaks.push([joined.length, this.lineNo]);
      joined += text.slice(s, e);
      backslash = endsInBackslash(text, s, e);
    }
    return { text: joined, line, breaks };
  }

  private startsWithSpace(pos: number): boolean {
    const c = this.text.charCodeAt(pos);
    return c === SP || c === TAB;
  }
}

function firstNonSpace(text: string, start: number, end: number): number {
  let i = start;
  while (i < end && isSpace(text.charCodeAt(i))) i++;
  return i;
}

function endsInBackslash(text: string, start: number, end: number): boolean {
  return end > start && text.charCodeAt(end - 1) === BACKSLASH;
}

function isIndentedComment(text: string, start: number, end: number): boolean {
  const i = firstNonSpace(text, start, end);
  return i < end && text.charCodeAt(i) === HASH;
}

function isBlankOrComment(text: string, start: number, end: number): boolean {
  const i = firstNonSpace(text, start, end);
  return i === end || text.charCodeAt(i) === HASH;
}

/** The physical line holding offset `at` of a logical line. */
function lineAt(logical: Logical, at: number): number {
  let line = logical.line;
  for (const [offset, n] of logical.breaks ?? []) if (at >= offset) line = n;
  return line;
}

function parseEntry(logical: Logical, errors: ParseError[]): AliasEntry | undefined {
  const text = logical.text;
  const lhs = splitName(text);
  if (typeof lhs === 'string') {
    errors.push({ line: logical.line, message: lhs });
    return undefined;
  }
  let start = lhs.colon + 1;
  while (start < text.length && isSpace(text.charCodeAt(start))) start++;
  const rhs = text.slice(start);
  const parsed = parseMembers(rhs);
  for (const e of parsed.errors) errors.push({ line: lineAt(logical, start + e.at), message: e.message });
  if (parsed.errors.length > 0) return undefined;
  if (parsed.members.length === 0) {
    errors.push({ line: logical.line, message: `missing value for alias ${lhs.name} (give at least one address after the colon)` });
    return undefined;
  }
  return { name: lhs.name, members: parsed.members, line: logical.line, rhsBytes: byteLength(rhs) };
}

/** The left-hand side: a plain or "quoted" name, then a colon. A string is an error. */
function splitName(text: string): { name: string; colon: number } | string {
  let name: string;
  let colon: number;
  if (text.charCodeAt(0) === 0x22 /* " */) {
    const close = closingQuote(text, 0);
    if (close < 0) return 'unbalanced quote in alias name';
    name = unescapeQuoted(text.slice(1, close));
    colon = firstNonSpace(text, close + 1, text.length);
    if (text[colon] !== ':') return `missing colon after the alias name ${text.slice(0, close + 1)}`;
  } else {
    colon = text.indexOf(':');
    if (colon < 0) return `missing colon: expected "name: address, ..." but found "${clip(text)}"`;
    let end = colon;
    while (end > 0 && isSpace(text.charCodeAt(end - 1))) end--;
    name = text.slice(0, end);
    const bad = plainNameProblem(name);
    if (bad) return bad;
  }
  if (name === '') return 'empty alias name before the colon';
  if (name === META_KEY) return `the alias name ${META_KEY} is reserved for the database's own record`;
  if (hasControl(name)) return `illegal alias name "${clip(name)}": control characters`;
  return { name: name.toLowerCase(), colon };
}

function plainNameProblem(name: string): string | undefined {
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === SP || c === TAB) return `illegal alias name "${clip(name)}": quote a name that contains white space`;
    if (c === 0x22) return `illegal alias name "${clip(name)}": unbalanced quote`;
    if (c === 0x40 /* @ */) {
      return `cannot alias non-local names: "${clip(name)}" (write the local part only; aliases apply to every local domain)`;
    }
  }
  const c0 = name.charCodeAt(0);
  if (c0 === 0x7c || c0 === 0x2f || c0 === BACKSLASH) return `illegal alias name "${clip(name)}"`;
  return undefined;
}

export interface MemberList {
  members: string[];
  /** Problems, each with the offset (in the given text) of the member at fault. */
  errors: Array<{ at: number; message: string }>;
}

/**
 * The right-hand-side syntax, also used line by line for :include: and
 * .forward files: members separated by commas outside "", <> and ().
 */
export function parseMembers(text: string): MemberList {
  const out: MemberList = { members: [], errors: [] };
  if (!needsScanner(text)) {
    // Fast path, most lines: nothing can hide a comma.
    let start = 0;
    for (let comma = text.indexOf(','); ; comma = text.indexOf(',', start)) {
      const end = comma < 0 ? text.length : comma;
      addMember(text, start, end, out);
      if (comma < 0) break;
      start = comma + 1;
    }
    return out;
  }
  scanMembers(text, out);
  return out;
}

function needsScanner(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 || c === 0x28 || c === 0x3c || c === BACKSLASH) return true; // " ( < \
  }
  return false;
}

function scanMembers(text: string, out: MemberList): void {
  let start = 0;
  let angle = 0;
  let paren = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"') {
      const close = closingQuote(text, i);
      if (close < 0) {
        out.errors.push({ at: i, message: `unbalanced quote in "${clip(text.slice(start).trim())}"` });
        return;
      }
      i = close;
    } else if (c === '(') paren++;
    else if (c === ')') paren = Math.max(0, paren - 1);
    else if (c === '<') angle++;
    else if (c === '>') angle = Math.max(0, angle - 1);
    else if (c === ',' && angle === 0 && paren === 0) {
      addMember(text, start, i, out);
      start = i + 1;
    }
  }
  if (angle || paren) {
    out.errors.push({ at: start, message: `unbalanced ${angle ? '<' : '('} in "${clip(text.slice(start).trim())}"` });
    return;
  }
  addMember(text, start, text.length, out);
}

function addMember(text: string, start: number, end: number, out: MemberList): void {
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  if (start === end) return; // "a, , b" and a trailing comma are harmless
  const raw = text.slice(start, end);
  const m = normalizeMember(raw);
  if (typeof m === 'string') out.members.push(m);
  else out.errors.push({ at: start, message: m.error });
}

type Normalized = string | { error: string };

/** One member to its canonical form; quotes around a |program or /file go. */
function normalizeMember(raw: string): Normalized {
  const c0 = raw.charCodeAt(0);
  if (hasControl(raw)) return { error: `bad address "${clip(raw)}": control characters` };
  if (c0 === 0x7c || c0 === 0x2f || c0 === BACKSLASH || (c0 === 0x3a && isInclude(raw))) return special(raw, false);
  if (c0 === 0x22 && closingQuote(raw, 0) === raw.length - 1) {
    const inner = unescapeQuoted(raw.slice(1, -1)).trim();
    const i0 = inner.charCodeAt(0);
    if (i0 === 0x7c || i0 === 0x2f || i0 === BACKSLASH || (i0 === 0x3a && isInclude(inner))) return special(inner, true);
  }
  return address(raw);
}

function isInclude(s: string): boolean {
  return s.length >= 9 && s.slice(0, 9).toLowerCase() === ':include:';
}

function special(text: string, quoted: boolean): Normalized {
  const c0 = text.charCodeAt(0);
  if (c0 === 0x7c) {
    const command = text.slice(1).trim();
    return command ? `|${command}` : { error: 'empty command after "|"' };
  }
  if (c0 === 0x3a) {
    const path = text.slice(9).trim();
    if (path.charCodeAt(0) !== 0x2f) return { error: `:include: needs an absolute path, found "${clip(path)}"` };
    return `:include:${path}`;
  }
  if (c0 === BACKSLASH) {
    const user = text.slice(1).trim();
    if (user === '' || hasSpace(user)) return { error: `bad user name after "\\": "${clip(text)}"` };
    return `\\${user}`;
  }
  if (!quoted && hasSpace(text)) return { error: `file name "${clip(text)}" contains white space: put it in double quotes` };
  return text;
}

/** An RFC 5322 address, allowing `Name <addr>` and `addr (comment)`. */
function address(raw: string): Normalized {
  let text = raw;
  if (text.includes('(')) text = stripComments(text);
  const angle = /<([^<>]*)>\s*$/.exec(text);
  if (angle) text = angle[1];
  text = text.trim();
  if (text === '') return { error: `no address in "${clip(raw)}"` };
  const unquoted = text.includes('"') ? text.replace(/"(?:[^"\\]|\\.)*"/g, '""') : text;
  if (hasSpace(unquoted)) {
    return { error: `bad address "${clip(raw)}": separate addresses with commas, and quote programs and files` };
  }
  const at = text.lastIndexOf('@');
  if (at === 0 || at === text.length - 1) return { error: `bad address "${clip(raw)}"` };
  return text;
}

function stripComments(text: string): string {
  let out = '';
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' && depth === 0) {
      const close = closingQuote(text, i);
      out += text.slice(i, close + 1);
      i = close;
    } else if (c === '(') depth++;
    else if (c === ')' && depth > 0) depth--;
    else if (depth === 0) out += c;
  }
  return out;
}

/** Index of the quote closing the one at `open`, honouring backslash escapes; -1 if none. */
function closingQuote(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === BACKSLASH) i++;
    else if (c === 0x22) return i;
  }
  return -1;
}

function unescapeQuoted(s: string): string {
  return s.includes('\\') ? s.replace(/\\(.)/g, '$1') : s;
}

function isSpace(c: number): boolean {
  return c === SP || c === TAB;
}

function hasSpace(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (isSpace(s.charCodeAt(i))) return true;
  return false;
}

/** Control characters other than tab: they would break the database's record format. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== TAB) || c === 0x7f) return true;
  }
  return false;
}

function byteLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s, 'utf8');
  return s.length;
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
