// The one header tokenizer: a cursor over the header block of a message or
// MIME part (a Buffer), field by field, with offsets and no copies until a
// caller asks for a name or a value. Every reader of header fields in
// mailtk (splitMessage, IMAP's ENVELOPE/BODYSTRUCTURE/HEADER.FIELDS, mail's
// summary and display, DSN reports) is built on it, so the rules below are
// stated here once:
//
// - Lines end at LF; a CR just before it belongs to the line end (CRLF). A
//   CR anywhere else is data, as sendmail's collect() keeps it.
// - A field starts on a line that does not begin with SP or HTAB and has a
//   name before a colon; blanks between name and colon are allowed
//   (RFC 5322 4.5.2 obs-optional). How strict the name is depends on the mode:
//     strict (sendmail's isheader(), for mail being submitted): the name is
//       printable ASCII other than ':' (RFC 5322 3.6.8 ftext), and a line
//       starting "--" (a MIME boundary) is never a field;
//     stored (mail already in a mailbox, read as Dovecot and mutt read it):
//       anything before the line's first colon.
// - The lines after it that begin with SP or HTAB are its continuation
//   (folded) lines, a line of blanks only included (RFC 5322 4.2 obs-FWS).
// - The header ends at the first empty line (LF or CRLF alone), which is the
//   header's but no field's; or at the end of the data (a header-only
//   message, the last field without a line end). In strict mode it also ends
//   before the first line that is neither a field nor a continuation: that
//   line starts the body, blank line or not (sendmail's collect()). In stored
//   mode such a line (say, without a colon, or folded with no field before
//   it) is handed out as a stray entry, no field, so that callers that pass
//   bytes on (HEADER.FIELDS.NOT, the visible header) keep it.
// - A field's value is what follows the colon, unfolded (RFC 5322 2.2.3: a
//   line break before white space is removed, nothing else), without its
//   line end, leading and trailing SP/HTAB trimmed, decoded as UTF-8 (what
//   RFC 6532 writers send unencoded).

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;
const COLON = 0x3a;

/**
 * The colon of a field line block[pos, end) (`end` past its line end, or
 * the end of the data), or -1 when the line starts no field under the mode's
 * rules (see the top of this file). Shared by the cursor and by readers that
 * see a message a line at a time.
 */
export function fieldColon(block: Uint8Array, pos: number, end: number, strict = false): number {
  const first = block[pos];
  if (first === SP || first === HT) return -1;
  if (!strict) {
    const colon = block.indexOf(COLON, pos);
    return colon > pos && colon < end ? colon : -1;
  }
  if (first === 0x2d && block[pos + 1] === 0x2d) return -1;
  let i = pos;
  while (i < end && block[i] > SP && block[i] < 0x7f && block[i] !== COLON) i++;
  if (i === pos) return -1;
  while (i < end && (block[i] === SP || block[i] === HT)) i++;
  return i < end && block[i] === COLON ? i : -1;
}

/** Is the line at pos empty: LF or CRLF alone? */
export function isBlankLine(block: Uint8Array, pos: number): boolean {
  return block[pos] === LF || (block[pos] === CR && block[pos + 1] === LF);
}

/** RFC 5322 2.2.3 unfolding of a value (text after the colon), its line end dropped and SP/HTAB trimmed. */
export function unfold(s: string): string {
  if (s.includes('\n')) s = s.replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '');
  return trimBlanks(s);
}

/** For a reader's eyes (mail's summary and display): each fold, with the blanks around its line break, becomes one space. */
export function unfoldForDisplay(s: string): string {
  if (s.includes('\n')) s = s.replace(/\r?\n$/, '').replace(/\r?\n[ \t]+/g, ' ');
  return trimBlanks(s);
}

function trimBlanks(s: string): string {
  const a = s.charCodeAt(0);
  const z = s.charCodeAt(s.length - 1);
  return a === SP || a === HT || z === SP || z === HT ? s.replace(/^[ \t]+|[ \t]+$/g, '') : s;
}

/**
 * A cursor over the fields of a header block: call next() until it returns
 * false; after each true, start/end/colon describe the current entry, and
 * after the false, headerEnd and separator say where and how the header
 * ended. Reads nothing beyond the header.
 *
 *   const t = new HeaderTokens(block);
 *   while (t.next()) if (t.nameIs('subject')) return t.value();
 */
export class HeaderTokens {
  /** The current entry is block[start, end): the field, its continuation lines and its last line end. */
  start = 0;
  end = 0;
  /** The colon of the current field, found when first asked for (stored mode); -2 until then. */
  private col = -1;
  /** The end of the current entry's first line. */
  private lineEnd = 0;
  /**
   * Set when next() has returned false: the offset of the body (past the
   * empty line, if one ended the header), and that empty line's length (1
   * for LF, 2 for CRLF, 0 when there was none).
   */
  headerEnd = -1;
  separator = 0;
  private pos: number;

  constructor(readonly block: Buffer, readonly strict = false, from = 0) {
    this.pos = from;
  }

  next(): boolean {
    const b = this.block;
    const len = b.length;
    const pos = this.pos;
    if (pos >= len) return this.finish(pos, 0);
    if (isBlankLine(b, pos)) return this.finish(pos, b[pos] === LF ? 1 : 2);
    let end = b.indexOf(LF, pos);
    end = end < 0 ? len : end + 1;
    // Stored mode needs no colon to know the entry's extent: it is found when a caller asks.
    const colon = this.strict ? fieldColon(b, pos, end, true) : -2;
    if (colon === -1) return this.finish(pos, 0);
    this.lineEnd = end;
    while (end < len && (b[end] === SP || b[end] === HT)) {
      const nl = b.indexOf(LF, end);
      end = nl < 0 ? len : nl + 1;
    }
    this.start = pos;
    this.end = end;
    this.col = colon;
    this.pos = end;
    return true;
  }

  private finish(at: number, separator: number): false {
    this.headerEnd = at + separator;
    this.separator = separator;
    this.start = this.end = at;
    this.col = -1;
    this.pos = this.block.length;
    return false;
  }

  /** The colon of the current field; -1 for a stray entry (stored mode only), which is no field. */
  get colon(): number {
    if (this.col === -2) this.col = fieldColon(this.block, this.start, this.lineEnd);
    return this.col;
  }

  /** Where the current field's name ends: its colon, less the blanks before it. */
  nameEnd(): number {
    let i = this.colon;
    while (i > this.start && (this.block[i - 1] === SP || this.block[i - 1] === HT)) i--;
    return i;
  }

  /** The field's name as written ("Subject"); '' for a stray entry. */
  name(): string {
    return this.colon < 0 ? '' : this.block.toString('latin1', this.start, this.nameEnd());
  }

  /** Does the field's name equal `lower` (lower-case ASCII), case aside? Allocates nothing. */
  nameIs(lower: string): boolean {
    if (this.colon < 0) return false;
    const b = this.block;
    const s = this.start;
    const n = lower.length;
    if (this.nameEnd() - s !== n) return false;
    for (let i = 0; i < n; i++) {
      const c = b[s + i];
      if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower.charCodeAt(i)) return false;
    }
    return true;
  }

  /** The entry's first byte, lower-cased if a letter: a quick filter before nameIs, which alone says it is a field. */
  firstLower(): number {
    const c = this.block[this.start];
    return c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  }

  /** The entry's bytes: name, colon, value, folds and its line end (none when the data ended first). */
  raw(): Buffer {
    return this.block.subarray(this.start, this.end);
  }

  /** The value: unfolded, trimmed, UTF-8 decoded (see the top of this file). */
  value(): string {
    return this.text(false);
  }

  /** The value for a reader's eyes (mail's summary and display): as value(), each fold one space. */
  displayValue(): string {
    return this.text(true);
  }

  /**
   * The value as unfold() or unfoldForDisplay() makes it. The trimming is done
   * on the bytes first (blanks, and the line breaks of folds, at either end;
   * inside the field every line break but the last is a fold's), so that the
   * common value, one line, is decoded and returned with no regular expression.
   */
  private text(display: boolean): string {
    const b = this.block;
    let s = this.colon + 1;
    let e = this.end;
    if (b[e - 1] === LF) e -= b[e - 2] === CR && e - 2 >= s ? 2 : 1;
    for (;;) {
      const c = b[s];
      if (s < e && (c === SP || c === HT || c === LF)) s++;
      else if (s + 1 < e && c === CR && b[s + 1] === LF) s += 2;
      else break;
    }
    for (;;) {
      const c = b[e - 1];
      if (e > s && (c === SP || c === HT)) e--;
      else if (e > s && c === LF) e -= b[e - 2] === CR && e - 2 >= s ? 2 : 1;
      else break;
    }
    const v = b.toString('utf8', s, e);
    if (!v.includes('\n')) return v;
    return display ? v.replace(/\r?\n[ \t]+/g, ' ') : v.replace(/\r?\n(?=[ \t])/g, '');
  }

  /** The value's bytes as Latin-1 text, as they stand: folds and line end kept. */
  rawValue(): string {
    return this.block.toString('latin1', this.colon + 1, this.end);
  }
}

/**
 * The first value of each field (or of the `only` fields), by lower-case
 * name, from a stored header block; only the fields wanted are decoded,
 * which keeps a first open of a large mailbox quick.
 */
export function fieldMap(block: Buffer, only?: ReadonlySet<string>): Map<string, string> {
  const map = new Map<string, string>();
  const t = new HeaderTokens(block);
  while (t.next()) {
    if (t.colon < 0) continue;
    const name = t.name().toLowerCase();
    if ((!only || only.has(name)) && !map.has(name)) map.set(name, t.value());
  }
  return map;
}
