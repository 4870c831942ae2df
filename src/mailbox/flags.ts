// Message flags as mbox readers keep them in the message itself: Status: R
// (read) and O (old: seen by a reader, no longer new), and X-Status: A
// (answered), D (deleted), F (flagged), T (draft) - the headers mailx, s-nail,
// mutt, UW imapd and Dovecot write and read. readFlags() parses a header
// block; withFlags() returns the block with those two fields replaced (others
// byte for byte), ready to hand to rewriteMbox as a message's new headers.
// Fields are read with src/message's header tokenizer (stored mode).

import { HeaderTokens } from '../message/header-tokens.ts';

export interface MessageFlags {
  read: boolean;
  old: boolean;
  answered: boolean;
  deleted: boolean;
  flagged: boolean;
  draft: boolean;
}

/** The flags a header block records; a message without Status: is new and unread. */
export function readFlags(block: Buffer): MessageFlags {
  let status = '';
  let xstatus = '';
  const t = new HeaderTokens(block);
  while (t.next()) {
    if (t.nameIs('status')) status += t.rawValue();
    else if (t.nameIs('x-status')) xstatus += t.rawValue();
  }
  return flagsFrom(status, xstatus);
}

/** Flags from the values of Status: and X-Status: (either may be empty). */
export function flagsFrom(status: string, xstatus: string): MessageFlags {
  return {
    read: status.includes('R'),
    old: status.includes('O'),
    answered: xstatus.includes('A'),
    deleted: xstatus.includes('D'),
    flagged: xstatus.includes('F'),
    draft: xstatus.includes('T'),
  };
}

/** "Status: RO\n" and "X-Status: AF\n" as mailx and mutt write them; empty when no letter applies. */
export function statusLines(flags: MessageFlags, eol = '\n'): string {
  const status = (flags.read ? 'R' : '') + (flags.old ? 'O' : '');
  const x =
    (flags.answered ? 'A' : '') + (flags.deleted ? 'D' : '') + (flags.flagged ? 'F' : '') + (flags.draft ? 'T' : '');
  return (status ? `Status: ${status}${eol}` : '') + (x ? `X-Status: ${x}${eol}` : '');
}

/**
 * The header block with Status: and X-Status: set to `flags`, written just
 * before the blank line that ends the block (where mailx puts them). A block
 * without that blank line gets one, so the result always ends the headers.
 */
export function withFlags(block: Buffer, flags: MessageFlags): Buffer {
  const kept: Buffer[] = [];
  const t = new HeaderTokens(block);
  let run = 0;
  while (t.next()) {
    if (!t.nameIs('status') && !t.nameIs('x-status')) continue;
    if (t.start > run) kept.push(block.subarray(run, t.start));
    run = t.end;
  }
  const end = t.headerEnd - t.separator;
  if (end > run) kept.push(block.subarray(run, end));
  const eol = t.separator === 2 ? '\r\n' : '\n';
  const last = kept[kept.length - 1];
  if (last && last[last.length - 1] !== 0x0a) kept.push(Buffer.from(eol)); // an unterminated last field
  kept.push(Buffer.from(statusLines(flags, eol) + eol, 'latin1'));
  return Buffer.concat(kept);
}
