// Addresses. Envelope paths (RFC 5321): splitting, qualifying bare local
// names, checking that a path is usable, stripping <> from an argument.
// Header address lists (RFC 5322 3.4, with the obsolete forms of 4.4 and
// sendmail's old-style space-separated lists) for `sendmail -t`.
// Guarantees: parseAddressList never throws, whatever the input; what it
// cannot read it skips. CONTRACT: splitAddress and qualify keep their
// signatures. The tokenizer follows the RFC 5322 lexical tokens, the way
// Postfix's tok822 does, rather than one large regular expression.

export interface Address {
  local: string; // local part as written (quotes removed when not needed)
  domain: string; // lower-cased; '' when the address had none
}

/** Split "user@Domain" into parts; the last '@' outside quotes separates. */
export function splitAddress(addr: string): Address {
  let at = -1;
  let quoted = false;
  for (let i = 0; i < addr.length; i++) {
    const c = addr[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '@' && !quoted) at = i;
  }
  if (at < 0) return { local: addr, domain: '' };
  return { local: addr.slice(0, at), domain: addr.slice(at + 1).toLowerCase().replace(/\.$/, '') };
}

/** "root" -> "root@host" (cron and PHP send bare names; relays want them qualified). */
export function qualify(addr: string, hostname: string): string {
  if (addr === '') return addr;
  const a = splitAddress(addr);
  return a.domain ? `${a.local}@${a.domain}` : `${a.local}@${hostname}`;
}

/** One mailbox from a header: `Name <address>`; address may be a bare local name. */
export interface Mailbox {
  name?: string;
  address: string;
}

/** RFC 5321 4.5.3.1.3: a path is at most 256 octets, its angle brackets included. */
export const MAX_PATH_OCTETS = 256;

// ---------------------------------------------------------------- tokens

type TokenKind = 'word' | 'quoted' | 'comment' | 'literal' | 'special';

interface Token {
  kind: TokenKind;
  /** word, literal: as written; quoted: with its quotes; comment: inner text. */
  text: string;
  /** White space came before this token (for rebuilding display names). */
  space: boolean;
}

const SPECIALS = '<>@,;:';
const WORD_STOP = ' \t\r\n"()[]<>@,;:';

/** Read a delimited run ("...", (...), [...]): its end, and whether it was closed. */
function readDelimited(s: string, start: number, close: string, nests: boolean): [number, boolean] {
  let depth = 1;
  for (let i = start + 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (nests && c === '(') depth++;
    else if (c === close && --depth === 0) return [i + 1, true];
  }
  return [s.length, false]; // unterminated: it runs to the end of the value
}

function tokenize(s: string): Token[] {
  const out: Token[] = [];
  let space = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      space = true;
      i++;
      continue;
    }
    let end: number;
    let closed = true;
    let kind: TokenKind;
    if (c === '"') [kind, [end, closed]] = ['quoted', readDelimited(s, i, '"', false)];
    else if (c === '(') [kind, [end, closed]] = ['comment', readDelimited(s, i, ')', true)];
    else if (c === '[') [kind, [end, closed]] = ['literal', readDelimited(s, i, ']', false)];
    else if (SPECIALS.includes(c) || c === ')' || c === ']') [kind, end] = ['special', i + 1];
    else {
      end = i + 1;
      while (end < s.length && !WORD_STOP.includes(s[end])) end++;
      kind = 'word';
    }
    out.push({ kind, text: tokenText(kind, s.slice(i, end), closed), space });
    space = false;
    i = end;
  }
  return out;
}

/** Quoted strings keep their quotes (closed if need be); comments give their inner text. */
function tokenText(kind: TokenKind, raw: string, closed: boolean): string {
  if (closed) return kind === 'comment' ? unescape(raw.slice(1, -1)).trim() : raw;
  if (kind === 'quoted') return raw + (/(^|[^\\])(\\\\)*\\$/.test(raw) ? '\\"' : '"'); // a last lone \ must not eat the quote
  if (kind === 'literal') return raw + ']';
  return unescape(raw.slice(1)).trim();
}

function unescape(s: string): string {
  return s.replace(/\\(.)/gs, '$1');
}

function isAtomic(t: Token): boolean {
  return t.kind === 'word' || t.kind === 'quoted' || t.kind === 'literal';
}

// ---------------------------------------------------------------- lists

/**
 * The mailboxes of an address-list header value (To, Cc, Bcc, From, ...),
 * in order. Group names and empty groups (`undisclosed-recipients:;`) yield
 * nothing; a group's members are listed. RFC 2047 encoded names are left
 * encoded. Bare local names ("root") are returned as they are: qualify them.
 */
export function parseAddressList(value: string): Mailbox[] {
  const out: Mailbox[] = [];
  for (const element of splitElements(tokenize(value), false)) if (Array.isArray(element)) out.push(...parseElement(element));
  return out;
}

/** Where a group begins (`group` is its display name) or ends (`group` is null). */
export interface GroupMark {
  group: string | null;
}

/**
 * The same list with its groups kept, for IMAP's ENVELOPE (RFC 3501 7.4.2):
 * `friends: a@x, b@y;, c@z` gives a start mark "friends", a and b, an end
 * mark, then c; `undisclosed-recipients:;` the two marks. As in Dovecot, a
 * group needs a display name, and one left open ends with the value.
 */
export function parseAddressGroups(value: string): Array<Mailbox | GroupMark> {
  const out: Array<Mailbox | GroupMark> = [];
  for (const element of splitElements(tokenize(value), true)) {
    if (Array.isArray(element)) out.push(...parseElement(element));
    else out.push(element);
  }
  return out;
}

/**
 * Split at top-level ',' and ';' (Outlook users type ';'), and drop a
 * group's display name at its ':' (with `groups`, marking where a named
 * group begins and, at its ';' or the end, where it ends). Inside <...>
 * nothing splits, so an obsolete route `<@a,@b:user@c>` stays whole.
 */
function splitElements(tokens: Token[], groups: boolean): Array<Token[] | GroupMark> {
  const elements: Array<Token[] | GroupMark> = [];
  let current: Token[] = [];
  let angle = 0;
  let inGroup = false;
  for (const t of tokens) {
    if (t.kind === 'special' && angle === 0 && (t.text === ',' || t.text === ';')) {
      elements.push(current);
      current = [];
      if (inGroup && t.text === ';') {
        elements.push({ group: null });
        inGroup = false;
      }
      continue;
    }
    if (t.kind === 'special' && angle === 0 && t.text === ':') {
      const name = groups ? phraseText(current) : '';
      if (name) {
        if (inGroup) elements.push({ group: null }); // groups do not nest (RFC 5322 3.4)
        elements.push({ group: name });
        inGroup = true;
      }
      current = []; // the group's display name is not an address
      continue;
    }
    if (t.kind === 'special' && t.text === '<') angle++;
    if (t.kind === 'special' && t.text === '>' && angle > 0) angle--;
    current.push(t);
  }
  elements.push(current);
  if (inGroup) elements.push({ group: null });
  return elements.filter((e) => !Array.isArray(e) || e.some((t) => t.kind !== 'comment'));
}

function parseElement(tokens: Token[]): Mailbox[] {
  const open = tokens.findIndex((t) => t.kind === 'special' && t.text === '<');
  if (open >= 0) return nameAddr(tokens, open);
  return addrSpecs(tokens);
}

/** `phrase <addr>`: the phrase is the name; a route before ':' is dropped. */
function nameAddr(tokens: Token[], open: number): Mailbox[] {
  let close = tokens.findIndex((t, i) => i > open && t.kind === 'special' && t.text === '>');
  if (close < 0) close = tokens.length;
  let inner = tokens.slice(open + 1, close);
  const colon = inner.map((t) => t.kind === 'special' && t.text === ':').lastIndexOf(true);
  if (colon >= 0) inner = inner.slice(colon + 1);
  const address = joinAddress(inner);
  if (address === '') return [];
  const phrase = tokens.slice(0, open);
  return [withName(address, phraseText(phrase) || firstComment(tokens))];
}

/**
 * Addresses without angle brackets. Atoms separated only by white space
 * are separate addresses, as in sendmail's old-style headers ("To: alice
 * bob"); but "Full Name user@host" reads as a name and one address.
 */
function addrSpecs(tokens: Token[]): Mailbox[] {
  const comment = firstComment(tokens);
  const pieces = splitPieces(tokens.filter((t) => t.kind !== 'comment'));
  const withAt = pieces.filter((p) => p.some((t) => t.kind === 'special' && t.text === '@'));
  const last = pieces[pieces.length - 1];
  if (pieces.length > 1 && withAt.length === 1 && withAt[0] === last) {
    return [withName(joinAddress(last), phraseText(pieces.slice(0, -1).flat()) || comment)];
  }
  const out = pieces.map(joinAddress).filter((a) => a !== '');
  return out.map((address) => withName(address, out.length === 1 ? comment : undefined));
}

function splitPieces(tokens: Token[]): Token[][] {
  const pieces: Token[][] = [];
  let prev: Token | undefined;
  for (const t of tokens) {
    const joined = prev && !(isAtomic(prev) && isAtomic(t) && t.space && !prev.text.endsWith('.') && !t.text.startsWith('.'));
    if (joined) pieces[pieces.length - 1].push(t);
    else pieces.push([t]);
    prev = t;
  }
  return pieces;
}

/** Address text: tokens joined without the white space or comments between them. */
function joinAddress(tokens: Token[]): string {
  return tokens
    .filter((t) => t.kind !== 'comment' && !(t.kind === 'special' && t.text !== '@'))
    .map((t) => t.text)
    .join('');
}

/** Display name: words joined by single spaces, quoted strings unquoted. */
function phraseText(tokens: Token[]): string {
  let s = '';
  for (const t of tokens) {
    if (t.kind === 'comment' || t.kind === 'special') continue;
    const text = t.kind === 'quoted' ? unescape(t.text.slice(1, -1)) : t.text;
    s += (s && t.space ? ' ' : '') + text;
  }
  return s.trim();
}

function firstComment(tokens: Token[]): string | undefined {
  return tokens.find((t) => t.kind === 'comment' && t.text !== '')?.text;
}

function withName(address: string, name: string | undefined): Mailbox {
  return name ? { name, address } : { address };
}

// ---------------------------------------------------------------- envelope

/**
 * Strip one level of <> from a -f argument or a MAIL FROM / RCPT TO path,
 * and an obsolete source route ("<@a,@b:user@c>" -> "user@c"), which RFC
 * 5321 4.1.1.3 says to accept and ignore. "<>" gives '' (the null sender).
 */
export function normalizePath(arg: string): string {
  let s = arg.trim();
  if (s.startsWith('<') && s.endsWith('>')) s = s.slice(1, -1).trim();
  const route = /^@[^:"]*:/.exec(s);
  if (route) s = s.slice(route[0].length);
  return s;
}

/**
 * Why an address cannot be an envelope path, or undefined when it can.
 * '' is the null reverse-path and is valid. Checks what would break an
 * SMTP command or a queue file line; it does not judge deliverability.
 */
export function validateEnvelopeAddress(addr: string): string | undefined {
  if (addr === '') return undefined;
  const control = controlError(addr);
  if (control) return control;
  if (Buffer.byteLength(addr, 'utf8') + 2 > MAX_PATH_OCTETS) {
    return `address is longer than ${MAX_PATH_OCTETS - 2} octets (RFC 5321 4.5.3.1.3 allows ${MAX_PATH_OCTETS} with its <>)`;
  }
  const syntax = syntaxError(addr);
  if (syntax) return syntax;
  if (addr.endsWith('@')) return 'no domain after "@"';
  if (addr.startsWith('@')) return 'no local part before "@"';
  return undefined;
}

function controlError(addr: string): string | undefined {
  const m = /[\x00-\x1f\x7f]/.exec(addr);
  if (!m) return undefined;
  const names: Record<string, string> = { '\r': 'a carriage return (CR)', '\n': 'a line feed (LF)', '\0': 'a NUL byte' };
  const code = m[0].charCodeAt(0).toString(16).padStart(2, '0');
  return `address contains ${names[m[0]] ?? `control character 0x${code}`}`;
}

/** Quotes, brackets and white space, scanned once with quoting in mind. */
function syntaxError(addr: string): string | undefined {
  let quoted = false;
  let literal = false;
  for (let i = 0; i < addr.length; i++) {
    const c = addr[i];
    if (c === '\\') i++;
    else if (c === '"' && !literal) quoted = !quoted;
    else if (quoted) continue;
    else if (c === '[') {
      if (literal) return 'unbalanced square brackets';
      literal = true;
    } else if (c === ']') {
      if (!literal) return 'unbalanced square brackets';
      literal = false;
    } else if (c === '<' || c === '>') return 'unbalanced angle brackets (give one address, with or without one pair of <>)';
    else if (c === ' ' || c === '\t') return 'white space outside quotes';
  }
  if (quoted) return 'unbalanced quotes';
  if (literal) return 'unbalanced square brackets';
  return undefined;
}
