// CONDSTORE and QRESYNC (RFC 7162): what the commands of other modules ask
// of them. The mod-sequences themselves are kept by the Folder (folder.ts):
// one per message, raised by each flag change, and HIGHESTMODSEQ with a
// bounded history of expunged UIDs. Here: turning CONDSTORE on (ENABLE, or a
// "CONDSTORE enabling command", 3.1), SELECT's (CONDSTORE) and (QRESYNC ...)
// parameters, FETCH's (CHANGEDSINCE n [VANISHED]) and STORE's
// (UNCHANGEDSINCE n) modifiers, and VANISHED (EARLIER). Where the history no
// longer reaches back to the client's modseq, VANISHED (EARLIER) names every
// UID of the range asked about that does not exist now, which 3.2.5.1 and
// 3.2.6 allow; SELECT's sequence match data narrows that range.

import { uidSet } from './imap-selected.ts';
import { bad, type Cmd, type ImapSession, type Result } from './imap-session.ts';
import type { MailboxView } from './imap-view.ts';
import { astring, formatSet, inSet, isAtom, parseSeqSet, type SeqSet, type Token } from './imap-wire.ts';

/** The largest mod-sequence RFC 7162 allows (mod-sequence-value, 63 bits); ours stay far below. */
const MAX_MODSEQ = 2n ** 63n - 1n;

export function condstoreOn(s: ImapSession): boolean {
  return s.enabled.has('CONDSTORE');
}

/**
 * A CONDSTORE enabling command (RFC 7162 3.1): from now on untagged FETCH
 * responses carry MODSEQ. In the selected state the client learns the
 * mailbox's HIGHESTMODSEQ, once.
 */
export async function enableCondstore(s: ImapSession): Promise<void> {
  s.enabled.add('CONDSTORE');
  const v = s.view;
  if (v && !v.modseqTold) {
    v.modseqTold = true;
    await s.untagged(`OK [HIGHESTMODSEQ ${v.folder.highestModseq}] Highest`);
  }
}

/** A mod-sequence argument: digits, at most 63 bits; `zero` allows 0 (mod-sequence-valzer). */
export function parseModseq(t: Token | undefined, zero = true): number | undefined {
  const text = t?.kind === 'atom' ? t.value : '';
  if (!/^\d{1,19}$/.test(text) || BigInt(text) > MAX_MODSEQ || (!zero && BigInt(text) === 0n)) return undefined;
  return Number(text); // beyond 2^53 only for a client's made-up value: still compares right against ours
}

export interface SelectParams {
  condstore: boolean;
  qresync?: { uidValidity: number; modseq: number; known?: SeqSet; match?: { seqs: number[]; uids: number[] } };
}

/** SELECT/EXAMINE's optional parameter list (RFC 4466 2.1): CONDSTORE, QRESYNC (...). */
export function parseSelectParams(s: ImapSession, arg: Token | undefined): SelectParams | Result {
  const out: SelectParams = { condstore: false };
  if (arg === undefined) return out;
  if (arg.kind !== 'list') return bad('SELECT parameters are a parenthesized list');
  for (let i = 0; i < arg.items.length; i++) {
    const name = isAtom(arg.items[i]) ? (arg.items[i] as { value: string }).value.toUpperCase() : '';
    if (name === 'CONDSTORE') out.condstore = true;
    else if (name === 'QRESYNC') {
      if (!s.enabled.has('QRESYNC')) return bad('QRESYNC needs ENABLE QRESYNC first');
      const q = parseQresync(arg.items[++i]);
      if (typeof q === 'string') return bad(q);
      out.qresync = q;
    } else return bad(`unknown SELECT parameter ${name.slice(0, 30)}`);
  }
  return out;
}

/** "(" uidvalidity SP mod-sequence-value [SP known-uids [SP seq-match-data]] ")" (RFC 7162 3.2.5). */
function parseQresync(t: Token | undefined): NonNullable<SelectParams['qresync']> | string {
  if (t?.kind !== 'list' || t.items.length < 2 || t.items.length > 4) return 'QRESYNC needs (uidvalidity modseq [known-uids [seq-match]])';
  const [v, m, known, match] = t.items;
  const uidValidity = isAtom(v) && /^[1-9]\d{0,9}$/.test(v.value) ? Number(v.value) : 0;
  const modseq = parseModseq(m, false);
  if (!uidValidity || modseq === undefined) return 'QRESYNC needs a UIDVALIDITY and a non-zero modseq';
  const q: NonNullable<SelectParams['qresync']> = { uidValidity, modseq };
  if (known !== undefined) q.known = parseSeqSet(astring(known, 'known UIDs'), 2 ** 32 - 1);
  if (match !== undefined) {
    if (match.kind !== 'list' || match.items.length !== 2) return 'QRESYNC sequence match data is (seqs uids)';
    const seqs = expand(parseSeqSet(astring(match.items[0], 'sequence set'), 0));
    const uids = expand(parseSeqSet(astring(match.items[1], 'UID set'), 0));
    if (seqs.length !== uids.length) return 'QRESYNC sequence match data: as many UIDs as sequence numbers';
    q.match = { seqs, uids };
  }
  return q;
}

/** The numbers of a set without '*', in the order given; empty when the set is too large to be a match list. */
function expand(set: SeqSet): number[] {
  const out: number[] = [];
  for (const [a, b] of set.ranges) {
    if (out.length + b - a > 100_000) return [];
    for (let n = a; n <= b; n++) out.push(n);
  }
  return out;
}

/**
 * QRESYNC's part of SELECT (RFC 7162 3.2.5): with the right UIDVALIDITY, the
 * UIDs the client knows of that are gone (VANISHED (EARLIER)), then the flags
 * of those changed since its modseq.
 */
export async function resyncOnSelect(s: ImapSession, v: MailboxView, q: NonNullable<SelectParams['qresync']>): Promise<void> {
  if (q.uidValidity !== v.folder.uidValidity) return;
  const known = q.known ?? { ranges: [[1, 2 ** 32 - 1]] };
  // Sequence match data (3.2.5.2): while the client's pairs agree with ours, nothing up to that UID is gone.
  let floor = 0;
  if (q.match) {
    for (let k = 0; k < q.match.seqs.length; k++) {
      if (v.uids[q.match.seqs[k] - 1] !== q.match.uids[k]) break;
      floor = q.match.uids[k];
    }
  }
  await sendVanishedEarlier(s, v, q.modseq, known, floor);
  for (let i = 0; i < v.uids.length; i++) {
    const r = v.folder.byUidGet(v.uids[i]);
    if (!r || r.modseq <= q.modseq || !inSet(known, r.uid)) continue;
    await s.untagged(`${i + 1} FETCH (UID ${r.uid} FLAGS ${v.flagText(r)} MODSEQ (${r.modseq}))`);
    v.told(r);
  }
}

/**
 * "* VANISHED (EARLIER) set": UIDs of `within` expunged after `since`; nothing
 * when none. Without the history, every UID of `within` above `floor` and
 * below UIDNEXT that is not here now.
 */
export async function sendVanishedEarlier(s: ImapSession, v: MailboxView, since: number, within: SeqSet, floor = 0): Promise<void> {
  const exact = v.folder.vanishedSince(since);
  let set: string;
  if (exact) set = formatSet(exact.filter((uid) => inSet(within, uid) && !v.folder.byUidGet(uid)));
  else set = missingRanges(within, floor, v.folder.uidNext - 1, v.folder.records.map((r) => r.uid));
  if (set) await s.untagged(`VANISHED (EARLIER) ${set}`);
}

/** The UIDs of `set` in (floor, top] that are not in `present` (ascending), as a set; '' when none. */
function missingRanges(set: SeqSet, floor: number, top: number, present: number[]): string {
  const spans: string[] = [];
  const ranges = set.ranges.map(([a, b]): [number, number] => [Math.max(a, floor + 1), Math.min(b, top)]).filter(([a, b]) => a <= b).sort((x, y) => x[0] - y[0]);
  let j = 0;
  let last = 0; // merge overlapping ranges as we go
  for (const [a0, b] of ranges) {
    let a = Math.max(a0, last + 1);
    if (a > b) continue;
    last = b;
    while (j < present.length && present[j] < a) j++;
    while (a <= b) {
      const next = j < present.length && present[j] <= b ? present[j] : b + 1;
      if (next > a) spans.push(next - 1 === a ? String(a) : `${a}:${next - 1}`);
      a = next + 1;
      if (next <= b) j++;
    }
  }
  return spans.join(',');
}

export interface FetchModifiers {
  changedSince?: number;
  /** MODSEQ is to be added to each response (CHANGEDSINCE, or CONDSTORE on and \Seen being set). */
  addModseq: boolean;
  /** So is UID (CONDSTORE on and \Seen being set: RFC 7162 3.1). */
  addUid: boolean;
}

/**
 * FETCH's modifiers (RFC 7162 3.1.4.1, 3.2.6): "(CHANGEDSINCE n [VANISHED])"
 * after the items. Turns CONDSTORE on when the command asks for MODSEQ, and
 * sends UID FETCH's VANISHED (EARLIER) before the FETCH responses.
 */
export async function fetchModifiers(s: ImapSession, c: Cmd, wantsModseq: boolean, setsSeen: boolean): Promise<FetchModifiers | Result> {
  const arg = c.args[2];
  let changedSince: number | undefined;
  let vanished = false;
  if (arg !== undefined) {
    if (arg.kind !== 'list' || c.args.length > 3) return bad('FETCH modifiers are a parenthesized list');
    for (let i = 0; i < arg.items.length; i++) {
      const name = isAtom(arg.items[i]) ? (arg.items[i] as { value: string }).value.toUpperCase() : '';
      if (name === 'CHANGEDSINCE') {
        changedSince = parseModseq(arg.items[++i]);
        if (changedSince === undefined) return bad('CHANGEDSINCE needs a mod-sequence');
      } else if (name === 'VANISHED') vanished = true;
      else return bad(`unknown FETCH modifier ${name.slice(0, 30)}`);
    }
  }
  if (vanished && (!c.uid || changedSince === undefined || !s.enabled.has('QRESYNC'))) return bad('VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC');
  if (wantsModseq || changedSince !== undefined) await enableCondstore(s);
  if (vanished) {
    const v = s.view as MailboxView;
    await sendVanishedEarlier(s, v, changedSince as number, uidSet(v, astring(c.args[0], 'UID set')));
  }
  const seen = condstoreOn(s) && setsSeen;
  return { changedSince, addModseq: changedSince !== undefined || seen, addUid: seen };
}

/** STORE's "(UNCHANGEDSINCE n)" (RFC 7162 3.1.3); undefined without one. */
export function parseStoreModifiers(arg: Token): number | undefined | Result {
  if (arg.kind !== 'list') return undefined;
  const items = arg.items;
  if (items.length !== 2 || !isAtom(items[0], 'UNCHANGEDSINCE')) return bad('the STORE modifier is (UNCHANGEDSINCE modseq)');
  const n = parseModseq(items[1]);
  return n === undefined ? bad('UNCHANGEDSINCE needs a mod-sequence') : n;
}
