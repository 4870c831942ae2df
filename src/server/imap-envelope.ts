// IMAP's ENVELOPE (RFC 3501 7.4.2), built from a header block: date,
// subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id, the
// values as they stand in the header (encoded words stay encoded; clients
// decode them). Sender and Reply-To default to From. Addresses are
// (name adl mailbox host), read with src/message's RFC 5322 parser; a group
// is a start marker (NIL NIL "name" NIL), its members and an end marker
// (NIL NIL NIL NIL), as RFC 3501 7.4.2 has it and Dovecot writes it. Kept in
// each mailbox's cache, so a second FETCH ENVELOPE of a large mailbox reads
// no mbox at all.

import { parseAddressGroups } from '../message/index.ts';
import { nstr } from './imap-wire.ts';

/**
 * The name the envelope is cached under in each mailbox's mailtk.cache; a
 * new name whenever what formatEnvelope makes changes, so that envelopes
 * cached by older code are made again (2: group markers).
 */
export const ENVELOPE_CACHE = 'envelope.2';

const ENVELOPE_FIELDS = new Set(['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id']);

/**
 * The first value of each field (or of the `only` fields), lower-cased names,
 * unfolded and trimmed as splitMessage() does; only the fields wanted are
 * decoded, which keeps a first open of a large mailbox quick.
 */
export function headerMap(block: Buffer, only?: Set<string>): Map<string, string> {
  const map = new Map<string, string>();
  let pos = 0;
  while (pos < block.length) {
    let end = block.indexOf(0x0a, pos);
    end = end < 0 ? block.length : end + 1;
    if (end - pos <= 2 && (block[pos] === 0x0a || block[pos] === 0x0d)) break;
    const colon = block.indexOf(0x3a, pos);
    let next = end;
    while (next < block.length && (block[next] === 0x20 || block[next] === 0x09)) {
      const nl = block.indexOf(0x0a, next);
      next = nl < 0 ? block.length : nl + 1;
    }
    if (colon > pos && colon < end) {
      const name = block.toString('latin1', pos, colon).trimEnd().toLowerCase();
      if ((!only || only.has(name)) && !map.has(name)) {
        map.set(name, block.toString('utf8', colon + 1, next).replace(/\r?\n(?=[ \t])/g, '').replace(/\r?\n$/, '').trim());
      }
    }
    pos = next;
  }
  return map;
}

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
