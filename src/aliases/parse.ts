// The aliases(5) text format: logical lines, `name: member, member`, and the
// member list syntax that :include: files and ~/.forward files share. Owns no
// file on disk; turns text into AliasEntry values once, so nothing downstream
// parses a right-hand side again. Line rules follow sendmail's readaliases():
// `#` in column 1 and blank lines end an entry, a leading space or tab
// continues it, a backslash before the newline joins the next line; from
// Postfix we take quoted names and indented `#` lines as comments. Duplicate
// names warn and the last one wins (sendmail's map_store replaces).

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

/** A name that can never be an alias: the database's meta record (sendmail's "@:@" mark). */
export const META_KEY = '@';

interface LogicalLine {
  text: string;
  line: number;
  /** Offset in text where each physical line after the first begins, with its number. */
  breaks: Array<[offset: number, line: number]>;
}

export function parseAliases(text: string, file: string): ParseResult {
  const result: ParseResult = { entries: [], warnings: [], errors: [] };
  const seen = new Map<string, number>(); // name -> index in entries
  for (const logical of logicalLines(text, result.errors)) {
    const entry = parseEntry(logical, result.errors);
    if (!entry) continue;
    const prev = seen.get(entry.name);
    if (prev === undefined) {
      seen.set(entry.name, result.entries.length);
      result.entries.push(entry);
      continue;
    }
    const first = result.entries[prev].line;
    result.warnings.push(
      `${file}:${entry.line}: warning: duplicate alias name ${entry.name} (also on line ${first}; the last one wins)`,
    );
    result.entries[prev] = entry;
  }
  return result;
}

/** Joins physical lines into logical ones, skipping comments and blank lines. */
function* logicalLines(text: string, errors: ParseError[]): Generator<LogicalLine> {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  let i = 0;
  while (i < lines.length) {
    const raw = stripCr(lines[i]);
    const lineNo = i + 1;
    i++;
    const c = raw.charCodeAt(0);
    if (raw === '' || c === 0x23 /* # */) continue;
    if (c === 0x20 || c === 0x09) {
      if (raw.trim() !== '' && !raw.trimStart().startsWith('#')) {
        errors.push({ line: lineNo, message: 'line starts with white space but continues nothing (a blank or # line ends the alias above it)' });
      }
      continue;
    }
    let joined = raw;
    const breaks: Array<[number, number]> = [];
    for (;;) {
      if (joined.endsWith('\\')) {
        if (i >= lines.length) break;
        joined = joined.slice(0, -1);
      } else if (i < lines.length && isContinuation(lines[i])) {
        if (lines[i].trimStart().startsWith('#')) { i++; continue; } // indented comment (Postfix)
      } else break;
      breaks.push([joined.length, i + 1]);
      joined += stripCr(lines[i]);
      i++;
    }
    yield { text: joined, line: lineNo, breaks };
  }
}

function isContinuation(line: string): boolean {
  const c = line.charCodeAt(0);
  return c === 0x20 || c === 0x09;
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** The physical line holding offset `at` of a logical line. */
function lineAt(logical: LogicalLine, at: number): number {
  let line = logical.line;
  for (const [offset, n] of logical.breaks) if (at >= offset) line = n;
  return line;
}

function parseEntry(logical: LogicalLine, errors: ParseError[]): AliasEntry | undefined {
  const fail = (message: string, at = 0): undefined => {
    errors.push({ line: lineAt(logical, at), message });
    return undefined;
  };
  const lhs = splitName(logical.text);
  if (typeof lhs === 'string') return fail(lhs);
  const { name, colon } = lhs;
  let start = colon + 1;
  while (start < logical.text.length && isSpace(logical.text.charCodeAt(start))) start++;
  const rhs = logical.text.slice(start);
  if (rhs.trim() === '') return fail(`missing value for alias ${name} (give at least one address after the colon)`);
  const parsed = parseMembers(rhs);
  if (parsed.errors.length > 0) {
    for (const e of parsed.errors) fail(e.message, start + e.at);
    return undefined;
  }
  if (parsed.members.length === 0) return fail(`missing value for alias ${name} (give at least one address after the colon)`);
  return { name, members: parsed.members, line: logical.line, rhsBytes: byteLength(rhs) };
}

/** The left-hand side: a plain or "quoted" name, then a colon. A string is an error. */
function splitName(text: string): { name: string; colon: number } | string {
  let name: string;
  let colon: number;
  if (text.startsWith('"')) {
    const close = closingQuote(text, 0);
    if (close < 0) return 'unbalanced quote in alias name';
    name = unescapeQuoted(text.slice(1, close));
    colon = close + 1;
    while (colon < text.length && isSpace(text.charCodeAt(colon))) colon++;
    if (text[colon] !== ':') return `missing colon after the alias name ${text.slice(0, close + 1)}`;
  } else {
    colon = text.indexOf(':');
    if (colon < 0) return `missing colon: expected "name: address, ..." but found "${clip(text)}"`;
    name = text.slice(0, colon).trimEnd();
    if (/\s/.test(name)) return `illegal alias name "${clip(name)}": quote a name that contains white space`;
    if (name.includes('"')) return `illegal alias name "${clip(name)}": unbalanced quote`;
    if (name.includes('@')) return `cannot alias non-local names: "${clip(name)}" (write the local part only; aliases apply to every local domain)`;
    if (/^[|/\\]/.test(name)) return `illegal alias name "${clip(name)}"`;
  }
  if (name === '') return 'empty alias name before the colon';
  if (name === META_KEY) return `the alias name ${META_KEY} is reserved for the database's own record`;
  return { name: name.toLowerCase(), colon };
}

export interface MemberList {
  members: string[];
  /** Problems with the offset (in the given text) of the member at fault. */
  errors: Array<{ at: number; message: string }>;
}

/**
 * The right-hand side syntax, also used line by line for :include: and
 * .forward files: members separated by commas outside quotes, <> and ().
 */
export function parseMembers(text: string): MemberList {
  const out: MemberList = { members: [], errors: [] };
  if (!/["(<\\]/.test(text)) {
    // Fast path (most lines): nothing can hide a comma.
    let at = 0;
    for (const piece of text.split(',')) {
      addMember(piece, at, out);
      at += piece.length + 1;
    }
    return out;
  }
  let start = 0;
  let depthAngle = 0;
  let depthParen = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '"') {
      const close = closingQuote(text, i);
      if (close < 0) {
        out.errors.push({ at: i, message: `unbalanced quote in "${clip(text.slice(start))}"` });
        return out;
      }
      i = close;
    } else if (c === '(') depthParen++;
    else if (c === ')') depthParen = Math.max(0, depthParen - 1);
    else if (c === '<') depthAngle++;
    else if (c === '>') depthAngle = Math.max(0, depthAngle - 1);
    else if (c === ',' && depthAngle === 0 && depthParen === 0) {
      addMember(text.slice(start, i), start, out);
      start = i + 1;
    }
  }
  if (depthAngle || depthParen) {
    out.errors.push({ at: start, message: `unbalanced ${depthAngle ? '<' : '('} in "${clip(text.slice(start))}"` });
    return out;
  }
  addMember(text.slice(start), start, out);
  return out;
}

function addMember(piece: string, at: number, out: MemberList): void {
  const raw = piece.trim();
  if (raw === '') return; // "a, , b" and a trailing comma are harmless
  const m = normalizeMember(raw);
  if (m.ok) out.members.push(m.member);
  else out.errors.push({ at: at + piece.indexOf(raw), message: m.message });
}

type Normalized = { ok: true; member: string } | { ok: false; message: string };

/** One member to its canonical form; quotes around a |program or /file go. */
function normalizeMember(raw: string): Normalized {
  if (raw.startsWith('"')) {
    const close = closingQuote(raw, 0);
    if (close === raw.length - 1) {
      const inner = unescapeQuoted(raw.slice(1, -1)).trim();
      if (/^[|/\\]/.test(inner) || /^:include:/i.test(inner)) return special(inner, true);
    }
  }
  if (/^[|/\\]/.test(raw) || /^:include:/i.test(raw)) return special(raw, false);
  return address(raw);
}

function special(text: string, quoted: boolean): Normalized {
  const bad = (message: string): Normalized => ({ ok: false, message });
  if (text.startsWith('|')) {
    const command = text.slice(1).trim();
    return command ? { ok: true, member: `|${command}` } : bad('empty command after "|"');
  }
  if (/^:include:/i.test(text)) {
    const path = text.slice(':include:'.length).trim();
    if (!path.startsWith('/')) return bad(`:include: needs an absolute path, found "${clip(path)}"`);
    return { ok: true, member: `:include:${path}` };
  }
  if (text.startsWith('\\')) {
    const user = text.slice(1).trim();
    if (user === '' || /\s/.test(user)) return bad(`bad user name after "\\": "${clip(text)}"`);
    return { ok: true, member: `\\${user}` };
  }
  if (!quoted && /\s/.test(text)) return bad(`file name "${clip(text)}" contains white space: put it in double quotes`);
  return { ok: true, member: text };
}

/** An RFC 5322 address, allowing `Name <addr>` and `addr (comment)`. */
function address(raw: string): Normalized {
  let text = raw;
  if (text.includes('(')) text = stripComments(text);
  const angle = /<([^<>]*)>\s*$/.exec(text);
  if (angle) text = angle[1];
  text = text.trim();
  if (text === '') return { ok: false, message: `no address in "${clip(raw)}"` };
  if (/\s/.test(text.replace(/"(?:[^"\\]|\\.)*"/g, '""'))) {
    return { ok: false, message: `bad address "${clip(raw)}": separate addresses with commas, and quote programs and files` };
  }
  const at = text.lastIndexOf('@');
  if (at === 0 || at === text.length - 1) return { ok: false, message: `bad address "${clip(raw)}"` };
  return { ok: true, member: text };
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
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i;
  }
  return -1;
}

function unescapeQuoted(s: string): string {
  return s.includes('\\') ? s.replace(/\\(.)/g, '$1') : s;
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

function byteLength(s: string): number {
  // ASCII is the common case and needs no encoding pass.
  return /^[\x00-\x7f]*$/.test(s) ? s.length : Buffer.byteLength(s, 'utf8');
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}
