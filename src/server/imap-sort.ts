// SORT and THREAD (RFC 5256), and their UID forms: the search program picks
// the messages as SEARCH does (imap-search.ts), the header fields the keys
// need are read under the mailbox lock (none for ARRIVAL and SIZE alone),
// and imap-thread.ts orders and threads them. With a MODSEQ key in the
// program, SORT's answer ends with the highest mod-sequence of the messages
// it names, as SEARCH's does (RFC 7162 3.1.5, and its sort-data grammar).
//
//   sort   = ["UID" SP] "SORT" SP sort-criteria SP search-criteria   (RFC 5256 5)
//   sort-criteria = "(" sort-criterion *(SP sort-criterion) ")"
//   sort-criterion = ["REVERSE" SP] sort-key
//   thread = ["UID" SP] "THREAD" SP thread-alg SP search-criteria
//   search-criteria = charset 1*(SP search-key)
// The charset is not optional here; UTF-8 and US-ASCII are the ones known
// (others are NO [BADCHARSET], RFC 5256 3).

import type { FolderReader } from '../mailbox/index.ts';
import { parseAddressGroups } from '../message/index.ts';
import { headerMap } from './imap-envelope.ts';
import { checkCharset, decodeWords, highestModseq, searchTargets } from './imap-search.ts';
import type { Target } from './imap-selected.ts';
import { bad, type Cmd, type ImapSession, ok, type Result } from './imap-session.ts';
import { formatThread, SORT_KEYS, type SortKey, type SortMsg, sortMessages, threadOrderedSubject, threadReferences } from './imap-thread.ts';
import type { MailboxView } from './imap-view.ts';
import { astring, isAtom } from './imap-wire.ts';

export const THREAD_ALGORITHMS = ['ORDEREDSUBJECT', 'REFERENCES'];

const HEADER_FIELDS = new Set(['date', 'subject', 'from', 'to', 'cc', 'message-id', 'references', 'in-reply-to']);

/** addr-mailbox (the local part) of a field's first address; '' when none (RFC 5256 3). */
function firstMailbox(value: string | undefined): string {
  if (!value) return '';
  for (const m of parseAddressGroups(value)) {
    if ('group' in m || m.address === '') continue;
    const at = m.address.lastIndexOf('@');
    return at < 0 ? m.address : m.address.slice(0, at);
  }
  return '';
}

/** The Date: field as ms (comments dropped); NaN when missing or unreadable (RFC 5256 2.2 then takes the internal date). */
function parseDate(value: string | undefined): number {
  if (!value) return NaN;
  return Date.parse(value.replace(/\([^)]*\)/g, ' ').trim());
}

/** What sorting and threading need of each picked message; headers read only when `headers`. */
async function sortMsgs(s: ImapSession, picked: Target[], uid: boolean, headers: boolean): Promise<SortMsg[]> {
  const v = s.view as MailboxView;
  const out: SortMsg[] = [];
  const make = async (reader: FolderReader | undefined) => {
    for (const t of picked) {
      // As of now: a sync under the lock may have moved it, or another session expunged it (then
      // the client, not yet told, still gets its number, sorted by what the index held).
      const now = v.folder.byUidGet(t.rec.uid);
      const rec = now ?? t.rec;
      const h = reader && now ? headerMap(await reader.header(now), HEADER_FIELDS) : new Map<string, string>();
      out.push({
        n: uid ? rec.uid : t.seq,
        seq: t.seq,
        arrival: Number.isFinite(rec.internalDate) ? rec.internalDate : 0,
        size: rec.size,
        date: parseDate(h.get('date')),
        subject: decodeWords(h.get('subject') ?? ''),
        from: firstMailbox(h.get('from')),
        to: firstMailbox(h.get('to')),
        cc: firstMailbox(h.get('cc')),
        messageId: h.get('message-id'),
        references: h.get('references'),
        inReplyTo: h.get('in-reply-to'),
      });
    }
  };
  if (headers && picked.length) await v.folder.read(make);
  else await make(undefined);
  return out;
}

export async function sortCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const crit = c.args[0];
  if (crit?.kind !== 'list' || crit.items.length === 0) return bad('SORT needs a list of sort criteria');
  const keys: Array<{ key: SortKey; reverse: boolean }> = [];
  let reverse = false;
  for (const t of crit.items) {
    if (!isAtom(t)) return bad('sort criteria are atoms');
    const k = t.value.toUpperCase();
    if (k === 'REVERSE' && !reverse) reverse = true;
    else if (SORT_KEYS.has(k as SortKey)) {
      keys.push({ key: k as SortKey, reverse });
      reverse = false;
    } else return bad(`unknown sort key ${k.slice(0, 30)}`);
  }
  if (reverse) return bad('REVERSE needs a sort key after it');
  const refused = checkCharset(astring(c.args[1], 'charset'));
  if (refused) return refused;
  if (c.args.length < 3) return bad('SORT needs search criteria');
  const info = { modseq: false };
  const picked = await searchTargets(s, c.args.slice(2), info);
  if (!Array.isArray(picked)) return picked;
  const headers = keys.some((k) => k.key !== 'ARRIVAL' && k.key !== 'SIZE');
  const sorted = sortMessages(await sortMsgs(s, picked, c.uid, headers), keys);
  const modseq = info.modseq ? highestModseq(picked) : undefined;
  await s.untagged(`SORT${sorted.map((m) => ` ${m.n}`).join('')}${modseq ? ` (MODSEQ ${modseq})` : ''}`);
  return ok(`${c.uid ? 'UID ' : ''}SORT completed`);
}

export async function threadCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const alg = astring(c.args[0], 'threading algorithm').toUpperCase();
  if (!THREAD_ALGORITHMS.includes(alg)) return bad(`unknown threading algorithm ${alg.slice(0, 30)}`);
  const refused = checkCharset(astring(c.args[1], 'charset'));
  if (refused) return refused;
  if (c.args.length < 3) return bad('THREAD needs search criteria');
  const picked = await searchTargets(s, c.args.slice(2));
  if (!Array.isArray(picked)) return picked;
  const msgs = await sortMsgs(s, picked, c.uid, true);
  const threads = alg === 'REFERENCES' ? threadReferences(msgs) : threadOrderedSubject(msgs);
  await s.untagged(`THREAD${threads.length ? ' ' : ''}${threads.map(formatThread).join('')}`);
  return ok(`${c.uid ? 'UID ' : ''}THREAD completed`);
}
