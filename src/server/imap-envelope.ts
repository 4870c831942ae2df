// IMAP's ENVELOPE (RFC 3501 7.4.2), built from a header block: date,
// subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id, the
// values as they stand in the header (encoded words stay encoded; clients
// decode them). Sender and Reply-To default to From. Addresses are
// (name adl mailbox host), read with src/message's RFC 5322 parser, which
// lists a group's members without the group. Kept in each mailbox's cache,
// so a second FETCH ENVELOPE of a large mailbox reads no mbox at all.

import { parseAddressList, splitMessage, type HeaderField } from '../message/index.ts';
import { nstr } from './imap-wire.ts';

/** The first value of each field, lower-cased names. */
export function headerMap(block: Buffer): Map<string, string> {
  const fields: HeaderField[] = splitMessage(block).headers;
  const map = new Map<string, string>();
  for (const f of fields) {
    const k = f.name.toLowerCase();
    if (!map.has(k)) map.set(k, f.value);
  }
  return map;
}

function address(name: string | undefined, addr: string): string {
  const at = addr.lastIndexOf('@');
  const [mailbox, host] = at < 0 ? [addr, ''] : [addr.slice(0, at), addr.slice(at + 1)];
  return `(${nstr(name || undefined)} NIL ${nstr(mailbox)} ${nstr(host)})`;
}

function addresses(value: string | undefined): string {
  if (value === undefined || value.trim() === '') return 'NIL';
  const list = parseAddressList(value).filter((m) => m.address !== '');
  return list.length ? `(${list.map((m) => address(m.name, m.address)).join('')})` : 'NIL';
}

export function envelopeOf(h: Map<string, string>): string {
  const from = addresses(h.get('from'));
  const or = (v: string) => (v === 'NIL' ? from : v);
  return `(${[
    nstr(h.get('date')),
    nstr(h.get('subject')),
    from,
    or(addresses(h.get('sender'))),
    or(addresses(h.get('reply-to'))),
    addresses(h.get('to')),
    addresses(h.get('cc')),
    addresses(h.get('bcc')),
    nstr(h.get('in-reply-to')),
    nstr(h.get('message-id')),
  ].join(' ')})`;
}

/** The envelope of a stored header block, as the bytes FETCH sends. */
export function formatEnvelope(header: Buffer): Buffer {
  return Buffer.from(envelopeOf(headerMap(header)), 'utf8');
}
