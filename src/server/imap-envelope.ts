// IMAP's ENVELOPE (RFC 3501 7.4.2), built from a header block: date,
// subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id, the
// values as they stand in the header (encoded words stay encoded; clients
// decode them). Sender and Reply-To default to From. Addresses are
// (name adl mailbox host), read with src/message's RFC 5322 parser; a group
// is a start marker (NIL NIL "name" NIL), its members and an end marker
// (NIL NIL NIL NIL), as RFC 3501 7.4.2 has it and Dovecot writes it. A
// header with an address field twice (two To: lines, which RFC 5322 3.6
// does not allow but mail has) gives the addresses of every occurrence in
// order, as Dovecot does, so that no recipient is hidden from the client; a
// string field (Subject, Date, ...) given twice is its first value, as
// SORT and the rest of mailtk read it. Kept in each mailbox's cache, so a
// second FETCH ENVELOPE of a large mailbox reads no mbox at all.

import { fieldMap, HeaderTokens, parseAddressGroups } from '../message/index.ts';
import { nstr } from './imap-wire.ts';

/**
 * The name the envelope is cached under in each mailbox's mailtk.cache; a
 * new name whenever what formatEnvelope makes changes, so that envelopes
 * cached by older code are made again (2: group markers; 3: every
 * occurrence of an address field).
 */
export const ENVELOPE_CACHE = 'envelope.3';

const STRING_FIELDS = new Set(['date', 'subject', 'in-reply-to', 'message-id']);
const ADDRESS_FIELDS = new Set(['from', 'sender', 'reply-to', 'to', 'cc', 'bcc']);

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

/**
 * An address list of the envelope: NIL, or the addresses and group markers
 * in parentheses, of each value in turn (one per occurrence of the field;
 * each parsed alone, so a group one leaves open ends with it).
 */
export function addressList(values: string | string[] | undefined): string {
  const list: string[] = [];
  for (const value of typeof values === 'string' ? [values] : (values ?? [])) {
    for (const m of parseAddressGroups(value)) {
      if ('group' in m) list.push(`(NIL NIL ${nstr(m.group)} NIL)`);
      else if (m.address !== '') list.push(address(m.name, m.address));
    }
  }
  return list.length ? `(${list.join('')})` : 'NIL';
}

/** The envelope of a header block (a message's, or one inside a message/rfc822 part). */
export function envelopeOf(header: Buffer): string {
  const strings = new Map<string, string>();
  const addresses = new Map<string, string[]>();
  const t = new HeaderTokens(header);
  while (t.next()) {
    if (t.colon < 0) continue;
    const name = t.name().toLowerCase();
    if (STRING_FIELDS.has(name)) {
      if (!strings.has(name)) strings.set(name, t.value());
    } else if (ADDRESS_FIELDS.has(name)) {
      const list = addresses.get(name);
      if (list) list.push(t.value());
      else addresses.set(name, [t.value()]);
    }
  }
  const from = addressList(addresses.get('from'));
  const or = (v: string) => (v === 'NIL' ? from : v);
  return `(${[
    nstr(strings.get('date')),
    nstr(strings.get('subject')),
    from,
    or(addressList(addresses.get('sender'))),
    or(addressList(addresses.get('reply-to'))),
    addressList(addresses.get('to')),
    addressList(addresses.get('cc')),
    addressList(addresses.get('bcc')),
    nstr(strings.get('in-reply-to')),
    nstr(strings.get('message-id')),
  ].join(' ')})`;
}

/** The envelope of a stored header block, as the bytes FETCH sends. */
export function formatEnvelope(header: Buffer): Buffer {
  return Buffer.from(envelopeOf(header), 'utf8');
}
