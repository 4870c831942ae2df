// Small IMAP extensions answered by the session itself: ID (RFC 2971) and
// ENABLE (RFC 5161), which turns on CONDSTORE and QRESYNC (RFC 7162) and
// IMAP4rev2 (RFC 9051).

import { log } from '../log/index.ts';
import { bad, type Cmd, type ImapSession, ok, type Result } from './imap-session.ts';
import { isAtom, str, type Token } from './imap-wire.ts';
import { SOFTWARE } from './replies.ts';

/** RFC 2971 3.3: at most 30 field-value pairs, fields of 30 octets, values of 1024. */
const ID_MAX_PAIRS = 30;
const ID_MAX_FIELD = 30;
const ID_MAX_VALUE = 1024;

/**
 * Extensions that ENABLE turns on here, by upper-case name, with the spelling
 * CAPABILITY gives them. Not UTF8=ACCEPT (RFC 6855, RFC 9755): IMAP4rev2 gives
 * a client all it does, and offering it would oblige the server to answer NO
 * to an APPEND with 8-bit header fields from every client that has not
 * enabled it (RFC 9755 4), a legacy client copying in SMTPUTF8 mail.
 */
export const ENABLEABLE: ReadonlyMap<string, string> = new Map([['CONDSTORE', 'CONDSTORE'], ['QRESYNC', 'QRESYNC'], ['IMAP4REV2', 'IMAP4rev2']]);

/**
 * RFC 2971 3.1: "ID" SP id_params_list, where id_params_list is
 * "(" *(string SP nstring) ")" / nil. Fields are strings, never atoms; the
 * server answers with its own list in any state, and the client's is logged,
 * cut to the RFC's limits.
 */
export async function idCommand(s: ImapSession, c: Cmd): Promise<Result> {
  if (c.args.length !== 1) return bad('ID takes one argument: a list of field-value pairs or NIL');
  const arg = c.args[0];
  const pairs: Array<[string, string]> = [];
  if (!isAtom(arg, 'NIL')) {
    if (arg.kind !== 'list') return bad('ID needs a parenthesized list or NIL');
    const items = arg.items;
    if (items.length % 2 !== 0) return bad('ID list must hold field-value pairs');
    if (items.length / 2 > ID_MAX_PAIRS) return bad(`ID list holds more than ${ID_MAX_PAIRS} pairs`);
    for (let i = 0; i < items.length; i += 2) {
      const field = items[i];
      const value: Token = items[i + 1];
      if (field.kind !== 'string') return bad('ID field names are strings');
      if (field.bytes.length > ID_MAX_FIELD) return bad(`ID field name longer than ${ID_MAX_FIELD} octets`);
      if (value.kind === 'string') {
        if (value.bytes.length > ID_MAX_VALUE) return bad(`ID value longer than ${ID_MAX_VALUE} octets`);
        pairs.push([field.value, value.value]);
      } else if (!isAtom(value, 'NIL')) return bad('ID values are strings or NIL');
    }
  }
  if (pairs.length) {
    // One bounded line: printable characters only, 200 characters at most.
    const text = pairs.map(([k, v]) => `${k}=${v}`).join(', ').replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
    log(s.ctx.config, '', `imap: ${s.user?.name ?? '-'}: client ID ${text}`);
  }
  const [name, version] = SOFTWARE.split(' ');
  await s.untagged(`ID (${str('name')} ${str(name)} ${str('version')} ${str(version)})`);
  return ok('ID completed');
}

/**
 * RFC 5161 3.1: "ENABLE" 1*(SP capability), only in the authenticated state
 * (the command table allows it nowhere else). Capabilities the server does not
 * know, or that need no enabling, are ignored; the untagged ENABLED lists
 * those this command turned on (3.2: not those already on), possibly none.
 */
export async function enableCommand(s: ImapSession, c: Cmd): Promise<Result> {
  if (c.args.length === 0) return bad('ENABLE needs at least one capability');
  const turned: string[] = [];
  for (const t of c.args) {
    if (t.kind !== 'atom') return bad('ENABLE takes capability names (atoms)');
    const cap = t.value.toUpperCase();
    if (!ENABLEABLE.has(cap) || s.enabled.has(cap)) continue;
    s.enabled.add(cap);
    turned.push(ENABLEABLE.get(cap) as string);
    if (cap === 'QRESYNC') s.enabled.add('CONDSTORE'); // RFC 7162 3.2.3: QRESYNC implies CONDSTORE
  }
  await s.untagged(`ENABLED${turned.map((x) => ` ${x}`).join('')}`);
  return ok('ENABLE completed');
}
