// The reply vacation sends: the user's ~/.vacation.msg (header fields, a
// blank line, the text; a Subject: of its own is usual, From: is optional:
// the user's own address is put in when it has none: sendmail would make one
// from the null envelope sender), with "$SUBJECT" replaced by the original's subject as
// Debian's vacation does, addressed to the sender, and marked as RFC 3834 3.1
// asks: Auto-Submitted: auto-replied, In-Reply-To and References naming the
// original, and "Auto: " before the original subject when the file has no
// Subject: of its own. Fields the file sets that would send the reply
// elsewhere (To, Cc, Bcc) or contradict the marks are dropped. Pure.

import { getHeader, joinMessage, makeHeader, normalizeLineEnds, removeHeaders, splitMessage, type HeaderField } from '../message/headers.ts';

export interface ReplyInput {
  /** ~/.vacation.msg as read. */
  template: Buffer;
  /** The header block of the message answered. */
  original: readonly HeaderField[];
  /** Whom to answer: the envelope sender, or -s. */
  to: string;
  /** The user's mailbox ("Bob Tester <bob@mail.test>"), for a file without From:. */
  from: string;
}

const DROPPED = ['To', 'Cc', 'Bcc', 'In-Reply-To', 'References', 'Auto-Submitted'];
const SUBJECT_VARIABLE = /\$SUBJECT/g;

/** A template field, with $SUBJECT filled in (rebuilt only when it had one). */
function fillField(h: HeaderField, subject: string): HeaderField {
  return h.value.includes('$SUBJECT') ? makeHeader(h.name, h.value.replace(SUBJECT_VARIABLE, subject)) : h;
}

/** RFC 3834 3.1.5: the original's Message-ID, in In-Reply-To and at the end of its References. */
function threadFields(original: readonly HeaderField[]): HeaderField[] {
  const id = getHeader(original, 'Message-ID')?.trim();
  if (!id) return [];
  const earlier = getHeader(original, 'References') ?? getHeader(original, 'In-Reply-To') ?? '';
  const refs = earlier.match(/<[^<>\s]+>/g) ?? [];
  return [makeHeader('In-Reply-To', id), makeHeader('References', [...refs, id].join(' '))];
}

export function buildReply(r: ReplyInput): Buffer {
  const t = splitMessage(normalizeLineEnds(r.template));
  const subject = getHeader(r.original, 'Subject') ?? '';
  const own = removeHeaders(t.headers, ...DROPPED).map((h) => fillField(h, subject));
  const headers: HeaderField[] = [];
  if (getHeader(own, 'From') === undefined) headers.push(makeHeader('From', r.from));
  headers.push(makeHeader('To', `<${r.to}>`));
  if (getHeader(own, 'Subject') === undefined) headers.push(makeHeader('Subject', `Auto: ${subject || 'your message'}`));
  headers.push(...own, ...threadFields(r.original), makeHeader('Auto-Submitted', 'auto-replied'));
  const body = t.body.includes('$SUBJECT') ? Buffer.from(t.body.toString('utf8').replace(SUBJECT_VARIABLE, subject), 'utf8') : t.body;
  return joinMessage(headers, body);
}
