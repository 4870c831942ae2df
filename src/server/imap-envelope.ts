// IMAP's ENVELOPE (RFC 3501 7.4.2), built from a header block: date,
// subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id, the
// values as they stand in the header (encoded words stay encoded; clients
// decode them). Sender and Reply-To default to From. Addresses are
// (name adl mailbox host), read with src/message's RFC 5322 parser; a group
// is a start marker (NIL NIL "name" NIL), its members and an end marker
// (NIL NIL NIL NIL), as RFC 3501 7.4.2 has it and Dovecot writes it. Kept in
// each mailbox's cache, so a second FETCH ENVELOPE of a large mailbox reads
// no mbox at all.

import { fieldMap, parseAddressGroups } from '../message/index.ts';
import { nstr } from './imap-wire.ts';

/**
 * The name the envelope is cached under in each mailbox's mailtk.cache; a
 * new name whenever what formatEnvelope makes changes, so that envelopes
 * cached by older code are made again (2: group markers).
 */
export const ENVELOPE_CACHE = 'envelope.2';

const ENVELOPE_FIELDS = new Set(['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id']);

/**
 * The first value of each field (or of the `only` fields) by lower-case name,
 * read by src/message's header tokenizer (fieldMap).
 */
export const headerMap = fieldMap;

function address(name: string | undefined, addr: string): string {
  const at = addr.lastIndexOf('@');
  const [mailbox, host] = at < 0 ? [addr, ''] : [addr.slice(0, at), addr.slice(at + 1)];
  return `(${nstr(name || undefined)} NIL ${nstr(mailbox)} ${nstr(host)})`;
}

/** An address list of the envelope: NIL, or the addresses and group markers in parentheses. */
export function addressList(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return 'NIL';
  const list: string[] = [];
  for (const m of parseAddressGroups(value)) {
    if ('group' in m) list.push(`(NIL NIL ${nstr(m.group)} NIL)`);
    else if (m.address !== '') list.push(address(m.name, m.address));
  }
  return list.length ? `(${list.join('')})` : 'NIL';
}

export function envelopeOf(h: Map<string, string>): string {
  const from = addressList(h.get('from'));
  const or = (v: string) => (v === 'NIL' ? from : v);
  return `(${[
    nstr(h.get('date')),
    nstr(h.get('subject')),
    from,
    or(addressList(h.get('sender'))),
    or(addressList(h.get('reply-to'))),
    addressList(h.get('to')),
    addressList(h.get('cc')),
    addressList(h.get('bcc')),
    nstr(h.get('in-reply-to')),
    nstr(h.get('message-id')),
  ].join(' ')})`;
}

/** The envelope of a stored header block, as the bytes FETCH sends. */
export function formatEnvelope(header: Buffer): Buffer {
  return Buffer.from(envelopeOf(headerMap(header, ENVELOPE_FIELDS)), 'utf8');
}
