// IMAP's view of mbox flags: the system flags as a bit mask, read from and
// written to the Status:/X-Status: headers through flags.ts (the letters
// mail(1), mutt and Dovecot share), keywords read from and written to
// X-Keywords: (Dovecot's field: the names separated by spaces, as Sieve's
// imap4flags also writes them), the header block as clients see it (the
// bookkeeping headers of HIDDEN left out) and the fingerprint that
// recognises a message again after another program rewrote the mbox.

import { createHash } from 'node:crypto';
import { HeaderTokens } from '../message/header-tokens.ts';
import { readFlags, withFlags } from './flags.ts';
import { HIDDEN } from './folder-scan.ts';

export const FLAG = { seen: 1, answered: 2, flagged: 4, deleted: 8, draft: 16 } as const;
export const SYSTEM_FLAGS: Array<[number, string]> = [
  [FLAG.seen, '\\Seen'],
  [FLAG.answered, '\\Answered'],
  [FLAG.flagged, '\\Flagged'],
  [FLAG.deleted, '\\Deleted'],
  [FLAG.draft, '\\Draft'],
];


const STATUS = Buffer.from('tatus:');

/** Flags the Status:/X-Status: headers of a stored header block say (flags.ts reads them). */
export function flagsFromHeader(block: Buffer): number {
  if (block.indexOf(STATUS) < 0) return 0; // most new mail has neither field: skip the parse
  const f = readFlags(block);
  return (f.read ? FLAG.seen : 0) | (f.answered ? FLAG.answered : 0) | (f.flagged ? FLAG.flagged : 0) | (f.deleted ? FLAG.deleted : 0) | (f.draft ? FLAG.draft : 0);
}

/** The header block without the hidden bookkeeping fields (and their continuation lines). */
export function visibleHeader(block: Buffer): Buffer {
  return withoutFields(block, isHidden);
}

/**
 * A message arriving from outside (a delivery) without the fields of HIDDEN:
 * a sender must not set the flags or keywords its message is read with (an
 * `X-Status: D` would have the next expunge remove it unseen), nor an
 * X-UID/X-IMAPbase or Content-Length that other mbox readers act on. Dovecot
 * drops the same fields when it saves to an mbox. `data` has LF line ends
 * (the queue's form); the same buffer comes back when there is nothing to drop.
 */
export function withoutMboxState(data: Buffer): Buffer {
  return withoutFields(data, isHidden);
}

/**
 * Walks a header block's fields and hands `keep` each run of bytes that lies
 * before a field `drop` picks (a field goes with its continuation lines). The
 * run after the last dropped field is the caller's, from the offset returned
 * (0: nothing dropped), with the tokenizer, which is then at the header's end.
 */
function keptRuns(block: Buffer, drop: (t: HeaderTokens) => boolean, keep: (run: Buffer) => void): { rest: number; t: HeaderTokens } {
  const t = new HeaderTokens(block);
  let rest = 0;
  while (t.next()) {
    if (!drop(t)) continue;
    if (t.start > rest) keep(block.subarray(rest, t.start));
    rest = t.end;
  }
  return { rest, t };
}

/** The header block without the fields `drop` picks, continuation lines and all; the blank line and what follows stay. */
function withoutFields(block: Buffer, drop: (t: HeaderTokens) => boolean): Buffer {
  const parts: Buffer[] = [];
  const { rest } = keptRuns(block, drop, (run) => parts.push(run));
  if (rest === 0) return block; // nothing dropped
  parts.push(block.subarray(rest));
  return Buffer.concat(parts);
}

const KEYWORDS = Buffer.from('eywords:');
/** An IMAP flag-keyword (RFC 3501 atom): no specials, no backslash (system flags are not keywords). */
const KEYWORD = /^[!#$&'+-[^-z|}~]+$/;

/** The keywords of the X-Keywords: fields of a stored header block, in order, each once (case folded to the first). */
export function keywordsFromHeader(block: Buffer): string[] {
  if (block.indexOf(KEYWORDS) < 0) return []; // most mail has no such field: skip the parse
  const out: string[] = [];
  const t = new HeaderTokens(block);
  while (t.next()) {
    if (!t.nameIs('x-keywords')) continue;
    for (const word of t.rawValue().split(/\s+/)) {
      if (word && KEYWORD.test(word) && !out.some((k) => k.toLowerCase() === word.toLowerCase())) out.push(word);
    }
  }
  return out;
}

/**
 * A stored header block with Status:/X-Status: saying `flags` ("O": no longer
 * new, as mutt writes, unless `old` is false: a Sieve delivery leaves an
 * unseen message new) and X-Keywords: naming `keywords` (no field when there
 * are none), written where flags.ts puts Status:, before the blank line.
 */
export function withStatusHeaders(block: Buffer, flags: number, keywords: readonly string[] = [], old = true): Buffer {
  const out = withFlags(block.indexOf(KEYWORDS) < 0 ? block : withoutFields(block, (t) => t.nameIs('x-keywords')), {
    read: (flags & FLAG.seen) !== 0,
    old,
    answered: (flags & FLAG.answered) !== 0,
    deleted: (flags & FLAG.deleted) !== 0,
    flagged: (flags & FLAG.flagged) !== 0,
    draft: (flags & FLAG.draft) !== 0,
  });
  if (keywords.length === 0) return out;
  // withFlags ends the block with its blank line, LF or CRLF as the block had them.
  const eol = out.length >= 2 && out[out.length - 2] === 0x0d ? 2 : 1;
  const field = Buffer.from(`X-Keywords: ${keywords.join(' ')}${eol === 2 ? '\r\n' : '\n'}`, 'latin1');
  return Buffer.concat([out.subarray(0, out.length - eol), field, out.subarray(out.length - eol)]);
}

/** Is the tokenizer's current field one of HIDDEN? */
function isHidden(t: HeaderTokens): boolean {
  const c = t.firstLower();
  if (c !== 0x73 && c !== 0x78 && c !== 0x63) return false; // every HIDDEN name begins with s, x or c
  for (const name of HIDDEN) if (t.nameIs(name)) return true;
  return false;
}

/**
 * What recognises a message whatever its Status: says: its visible header and
 * its body's size. The visible lines are hashed a run at a time (the same
 * bytes as line by line; indexes hold these values, so they must not change).
 */
export function fingerprint(block: Buffer, bodySize: number): string {
  const h = createHash('sha1');
  const { rest, t } = keptRuns(block, isHidden, (run) => h.update(run));
  const end = t.headerEnd - t.separator; // the blank line is not hashed
  if (end > rest) h.update(block.subarray(rest, end));
  return h.update(`\n\0${bodySize}`).digest('base64').slice(0, 12);
}

/**
 * A folder's keywords: the names in use, each given a bit of a record's
 * `keywords` in the order first seen, kept in the index. Known limit: at most
 * 32; a further name read from X-Keywords: has no bit, and is dropped from
 * the field if that message's flags are rewritten.
 */
export class KeywordTable {
  names: string[] = [];

  /** `changed`: told when a name is added (the index must be saved). */
  constructor(private readonly changed: () => void) {}

  /** The bit of a keyword, made if new and `make`; undefined when 32 are in use. */
  bit(name: string, make: boolean): number | undefined {
    const lower = name.toLowerCase();
    let i = this.names.findIndex((k) => k.toLowerCase() === lower);
    if (i < 0 && make && this.names.length < 32) {
      i = this.names.push(name) - 1;
      this.changed();
    }
    return i < 0 ? undefined : 2 ** i;
  }

  /** The bits of these names, made where new (a name past the 32nd has none). */
  mask(names: readonly string[]): number {
    let m = 0;
    for (const n of names) m = (m | (this.bit(n, true) ?? 0)) >>> 0;
    return m;
  }

  namesOf(mask: number): string[] {
    return this.names.filter((_, i) => (mask & (2 ** i)) !== 0);
  }
}
