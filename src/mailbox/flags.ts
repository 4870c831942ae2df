// Message flags as mbox readers keep them in the message itself: Status: R
// (read) and O (old: seen by a reader, no longer new), and X-Status: A
// (answered), D (deleted), F (flagged), T (draft) - the headers mailx, s-nail,
// mutt, UW imapd and Dovecot write and read. readFlags() parses a header
// block; withFlags() returns the block with those two fields replaced (others
// byte for byte), ready to hand to rewriteMbox as a message's new headers.

export interface MessageFlags {
  read: boolean;
  old: boolean;
  answered: boolean;
  deleted: boolean;
  flagged: boolean;
  draft: boolean;
}

const STATUS_FIELD = /^(status|x-status)[ \t]*:/i;

/** The header block's lines, each with its line end; continuation lines stay with their field. */
function fieldsOf(block: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < block.length) {
    let end = block.indexOf(0x0a, pos);
    end = end < 0 ? block.length : end + 1;
    const cont = block[pos] === 0x20 || block[pos] === 0x09;
    if (cont && out.length) out[out.length - 1] = block.subarray(pos - out[out.length - 1].length, end);
    else out.push(block.subarray(pos, end));
    pos = end;
  }
  return out;
}

function isBlank(line: Buffer): boolean {
  return line.length === 1 ? line[0] === 0x0a : line.length === 2 && line[0] === 0x0d && line[1] === 0x0a;
}

/** The flags a header block records; a message without Status: is new and unread. */
export function readFlags(block: Buffer): MessageFlags {
  let status = '';
  let xstatus = '';
  for (const f of fieldsOf(block)) {
    if (isBlank(f)) break;
    const m = STATUS_FIELD.exec(f.toString('latin1', 0, Math.min(f.length, 12)));
    if (!m) continue;
    const value = f.toString('latin1').slice(f.indexOf(0x3a) + 1);
    if (m[1].length === 6) status += value;
    else xstatus += value;
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
  let eol = '\n';
  for (const f of fieldsOf(block)) {
    if (isBlank(f)) {
      eol = f.length === 2 ? '\r\n' : '\n';
      break;
    }
    if (!STATUS_FIELD.test(f.toString('latin1', 0, Math.min(f.length, 12)))) kept.push(f);
  }
  const last = kept[kept.length - 1];
  if (last && last[last.length - 1] !== 0x0a) kept.push(Buffer.from(eol)); // an unterminated last field
  kept.push(Buffer.from(statusLines(flags, eol) + eol, 'latin1'));
  return Buffer.concat(kept);
}
