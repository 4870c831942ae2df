// Mailbox names on the wire. Folders are kept under the names an IMAP4rev1
// client gives them: modified UTF-7 (RFC 3501 5.1.3), so "Entwürfe" is the
// file Entw&APw-rfe. An IMAP4rev2 session (after ENABLE IMAP4rev2) speaks
// UTF-8 instead (RFC 9051 5.1): its names are turned into the stored form on
// the way in and back into UTF-8 on the way out, so both kinds of client see
// the same folders under their own spelling.

import type { ImapSession } from './imap-session.ts';
import { astr, astring, type Token } from './imap-wire.ts';

/** UTF-8 (a JavaScript string) to modified UTF-7: "&" is "&-", other non-printable-ASCII runs are "&" base64(UTF-16BE) "-" with "," for "/". */
export function encodeMutf7(name: string): string {
  let out = '';
  let run = '';
  const flush = () => {
    if (!run) return;
    const bytes = Buffer.alloc(run.length * 2);
    for (let i = 0; i < run.length; i++) bytes.writeUInt16BE(run.charCodeAt(i), i * 2);
    out += `&${bytes.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
    run = '';
  };
  for (const ch of name) {
    const c = ch.charCodeAt(0);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += ch === '&' ? '&-' : ch;
    } else run += ch; // astral characters go in as their two UTF-16 halves
  }
  flush();
  return out;
}

/** Modified UTF-7 to UTF-8; undefined when `name` is not valid modified UTF-7 (then it is shown as it is). */
export function decodeMutf7(name: string): string | undefined {
  let out = '';
  for (let i = 0; i < name.length; ) {
    const c = name.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return undefined;
    if (name[i] !== '&') {
      out += name[i++];
      continue;
    }
    const end = name.indexOf('-', i + 1);
    if (end < 0) return undefined;
    const b64 = name.slice(i + 1, end);
    i = end + 1;
    if (b64 === '') {
      out += '&';
      continue;
    }
    if (!/^[A-Za-z0-9+,]+$/.test(b64)) return undefined;
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length < 2 || bytes.length % 2 !== 0) return undefined;
    let run = '';
    for (let k = 0; k < bytes.length; k += 2) run += String.fromCharCode(bytes.readUInt16BE(k));
    if (encodeMutf7(run) !== `&${b64}-`) return undefined; // not the one spelling RFC 3501 allows
    out += run;
  }
  return out;
}

/** A mailbox name argument in the form folders are kept under. */
export function mailboxArg(s: ImapSession, t: Token | undefined, what = 'mailbox name'): string {
  const name = astring(t, what);
  return s.rev2 ? encodeMutf7(name) : name;
}

/** A LIST pattern or reference as given: rev2 patterns are matched against the UTF-8 names (wireName). */
export function wireName(s: ImapSession, stored: string): string {
  return s.rev2 ? (decodeMutf7(stored) ?? stored) : stored;
}

/** A stored mailbox name as this session writes it in a response. */
export function mailboxOut(s: ImapSession, stored: string): string {
  return astr(wireName(s, stored));
}
