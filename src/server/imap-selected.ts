// IMAP's commands on the selected mailbox (RFC 3501 6.3.1-2, 6.4): SELECT and
// EXAMINE, CHECK, CLOSE and UNSELECT, EXPUNGE (and UID EXPUNGE, RFC 4315),
// STORE, COPY and MOVE (RFC 6851) with UIDPLUS's COPYUID. Message sets are
// read against the session's view, so numbers mean what the client was told.
// COPY reads under the source's lock, then appends under the destination's,
// never holding both, so two sessions copying opposite ways cannot deadlock.
// CONDSTORE and QRESYNC (RFC 7162) add SELECT's parameters, HIGHESTMODSEQ,
// STORE's UNCHANGEDSINCE with [MODIFIED], and MODSEQ in STORE's answers
// (imap-condstore.ts holds their parsing). An IMAP4rev2 session's SELECT
// (RFC 9051 6.3.2) has no RECENT and no [UNSEEN n], and a LIST response.

import fs from 'node:fs';
import { FLAG, type Folder, type FolderSpec, fromLineSender, type MessageRecord, type NewMessage, openFolder, unquoteFrom } from '../mailbox/index.ts';
import { condstoreOn, enableCondstore, parseSelectParams, parseStoreModifiers, resyncOnSelect } from './imap-condstore.ts';
import { listAttributes } from './imap-list.ts';
import { resolveMailbox } from './imap-mailboxes.ts';
import { mailboxArg, mailboxOut } from './imap-names.ts';
import { bad, type Cmd, type ImapSession, no, ok, type Result } from './imap-session.ts';
import { MailboxView } from './imap-view.ts';
import { astr, astring, formatSet, inSet, isAtom, parseSeqSet, type SeqSet, type Token } from './imap-wire.ts';

const SYSTEM: Record<string, number> = {
  '\\SEEN': FLAG.seen, '\\ANSWERED': FLAG.answered, '\\FLAGGED': FLAG.flagged, '\\DELETED': FLAG.deleted, '\\DRAFT': FLAG.draft,
};
const COPY_BATCH_BYTES = 8 << 20;

/** Flags of a STORE or APPEND: system flags as bits, keywords by name (\Recent is ignored). */
export function parseFlagList(items: Token[]): { flags: number; keywords: string[] } {
  let flags = 0;
  const keywords: string[] = [];
  for (const t of items) {
    if (t.kind !== 'atom') continue;
    const up = t.value.toUpperCase();
    if (SYSTEM[up]) flags |= SYSTEM[up];
    else if (!t.value.startsWith('\\')) keywords.push(t.value);
  }
  return { flags, keywords };
}

export interface Target {
  seq: number;
  rec: MessageRecord;
}

/** The messages a sequence set (or UID set) names, in order; ones expunged meanwhile are left out. "$": the saved result (RFC 5182). */
export function targets(s: ImapSession, setText: string, uid: boolean): Target[] {
  const v = s.view as MailboxView;
  const set = setText === '$' ? undefined : parseSeqSet(setText, uid ? v.maxUid : v.uids.length);
  const named = (i: number) => (set ? inSet(set, uid ? v.uids[i] : i + 1) : v.saved.has(v.uids[i]));
  const out: Target[] = [];
  for (let i = 0; i < v.uids.length; i++) {
    if (!named(i)) continue;
    const rec = v.folder.byUidGet(v.uids[i]);
    if (rec) out.push({ seq: i + 1, rec });
  }
  return out;
}

/** A UID set as given, or the saved result for "$" (RFC 5182). */
export function uidSet(v: MailboxView, text: string): SeqSet {
  return text === '$' ? { ranges: [...v.saved].sort((a, b) => a - b).map((u): [number, number] => [u, u]) } : parseSeqSet(text, v.maxUid);
}

/**
 * A message sequence set (RFC 3501 9, seq-number) may name only messages the
 * client has been told of: one above that count, or any at all in an empty
 * mailbox, is a protocol error, answered as Dovecot does ("BAD Error in IMAP
 * command FETCH: Invalid messageset"). UID sets are never out of range, just
 * empty (RFC 3501 6.4.8). Undefined when the set is fine.
 */
export function checkMessageSet(s: ImapSession, c: Cmd): Result | undefined {
  if (c.uid || isAtom(c.args[0], '$')) return undefined;
  const count = (s.view as MailboxView).uids.length;
  const set = parseSeqSet(astring(c.args[0], 'message set'), count);
  if (count === 0 || set.ranges.some(([, last]) => last > count)) return bad(`Error in IMAP command ${c.name}: Invalid messageset`);
  return undefined;
}

export async function selectCommand(s: ImapSession, c: Cmd, readOnly: boolean): Promise<Result> {
  const params = parseSelectParams(s, c.args[1]);
  if ('status' in params) return params;
  if (s.view) {
    await s.deselect();
    // RFC 7162 3.2.11: what follows is about the new mailbox.
    await s.untagged('OK [CLOSED] Previous mailbox closed');
  }
  const r = resolveMailbox(s, mailboxArg(s, c.args[0]));
  if (typeof r === 'string') return no(r);
  let folder: Folder;
  try {
    folder = await openFolder(r.spec);
    if (!r.inbox && !(await exists(r.file))) {
      await folder.release();
      return no('[NONEXISTENT] no such mailbox');
    }
    await folder.sync();
  } catch (e) {
    return no(`cannot open mailbox: ${(e as Error).message.slice(0, 200)}`);
  }
  const view = new MailboxView(folder, r.name, readOnly, s.enabled);
  view.reset();
  s.view = view;
  s.state = 'selected';
  const firstUnseen = folder.records.findIndex((m) => !(m.flags & FLAG.seen));
  for (const line of view.flagsResponses()) await s.untagged(line);
  await s.untagged(`${view.uids.length} EXISTS`);
  if (!s.rev2) {
    await s.untagged(`${view.recent.size} RECENT`);
    if (firstUnseen >= 0) await s.untagged(`OK [UNSEEN ${firstUnseen + 1}] First unseen`);
  }
  await s.untagged(`OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid`);
  await s.untagged(`OK [UIDNEXT ${folder.uidNext}] Predicted next UID`);
  // RFC 9051 6.3.2: "The server MUST return a LIST response with the mailbox name."
  if (s.rev2) await s.untagged(`LIST (${listAttributes({ name: r.name, dir: false, children: false }, false).join(' ')}) "/" ${mailboxOut(s, r.name)}`);
  // HIGHESTMODSEQ, whenever CONDSTORE is on or this SELECT turns it on (RFC 7162 3.1.2.1).
  if (params.condstore || params.qresync || condstoreOn(s)) await enableCondstore(s);
  if (params.qresync) await resyncOnSelect(s, view, params.qresync);
  return ok(`[${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${readOnly ? 'EXAMINE' : 'SELECT'} completed`);
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await fs.promises.stat(file)).isFile();
  } catch {
    return false;
  }
}

export async function checkCommand(s: ImapSession): Promise<Result> {
  await s.view?.folder.save();
  return ok('CHECK completed');
}

/** CLOSE (expunge silently, then leave) or UNSELECT (just leave). */
export async function closeCommand(s: ImapSession, expunge: boolean): Promise<Result> {
  const v = s.view as MailboxView;
  if (expunge && !v.readOnly) {
    const deleted = v.folder.records.filter((r) => r.flags & FLAG.deleted).map((r) => r.uid);
    if (deleted.length) await v.folder.expunge(deleted);
  }
  await s.deselect();
  return ok(`${expunge ? 'CLOSE' : 'UNSELECT'} completed`);
}

export async function expungeCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const v = s.view as MailboxView;
  if (v.readOnly) return no('[READ-ONLY] mailbox is read-only');
  let deleted = v.folder.records.filter((r) => r.flags & FLAG.deleted);
  if (c.uid) {
    const set = uidSet(v, astring(c.args[0], 'UID set'));
    deleted = deleted.filter((r) => inSet(set, r.uid));
  }
  if (deleted.length) await v.folder.expunge(deleted.map((r) => r.uid));
  // With CONDSTORE on, the new HIGHESTMODSEQ, which the client cannot learn otherwise (as Dovecot).
  const code = condstoreOn(s) ? `[HIGHESTMODSEQ ${v.folder.highestModseq}] ` : '';
  return ok(`${code}${c.uid ? 'UID ' : ''}EXPUNGE completed`);
}

/**
 * STORE and UID STORE, with CONDSTORE's "(UNCHANGEDSINCE n)" before the item
 * (RFC 7162 3.1.3): messages changed after n are left alone and named in
 * [MODIFIED]. With CONDSTORE on, every FETCH it causes carries UID and MODSEQ,
 * and .SILENT still tells the new MODSEQ of what changed.
 */
export async function storeCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const v = s.view as MailboxView;
  // RFC 7162 puts the modifier before the item; imapflow sends it last, after a flag list: both are read.
  const at = c.args[1]?.kind === 'list' ? 1 : c.args.length >= 4 && c.args[c.args.length - 1].kind === 'list' ? c.args.length - 1 : -1;
  const unchangedSince = at > 0 ? parseStoreModifiers(c.args[at]) : undefined;
  if (typeof unchangedSince === 'object') return unchangedSince;
  const args = unchangedSince === undefined ? c.args : c.args.filter((_, i) => i !== at);
  const what = astring(args[1], 'FLAGS item').toUpperCase();
  const m = /^([+-]?)FLAGS(\.SILENT)?$/.exec(what);
  if (!m) return bad(`unknown STORE item ${what.slice(0, 30)}`);
  if (v.readOnly) return no('[READ-ONLY] mailbox is read-only');
  if (unchangedSince !== undefined) await enableCondstore(s);
  const list = args[2]?.kind === 'list' ? (args[2] as { items: Token[] }).items : args.slice(2);
  const { flags, keywords } = parseFlagList(list);
  const mode = m[1] === '+' ? 'add' : m[1] === '-' ? 'remove' : 'set';
  let bits = 0;
  for (const k of keywords) {
    const bit = v.folder.keywordBit(k, mode !== 'remove');
    if (bit === undefined && mode !== 'remove') return no('too many keywords in this mailbox');
    bits = (bits | (bit ?? 0)) >>> 0;
  }
  let picked = targets(s, astring(c.args[0], 'message set'), c.uid);
  const modified = unchangedSince === undefined ? [] : picked.filter((t) => t.rec.modseq > unchangedSince);
  if (modified.length) picked = picked.filter((t) => t.rec.modseq <= (unchangedSince as number));
  const changed = new Set(v.folder.setFlags(picked.map((t) => t.rec.uid), mode, flags, bits));
  // A keyword new to the mailbox: FLAGS before the FETCH responses that carry it.
  for (const line of v.keywordNews()) await s.untagged(line);
  const condstore = condstoreOn(s);
  for (const t of picked) {
    const uid = c.uid || condstore ? `UID ${t.rec.uid} ` : '';
    const modseq = condstore ? ` MODSEQ (${t.rec.modseq})` : '';
    if (!m[2]) await s.untagged(`${t.seq} FETCH (${uid}FLAGS ${v.flagText(t.rec)}${modseq})`);
    else if (condstore && changed.has(t.rec)) await s.untagged(`${t.seq} FETCH (${uid}MODSEQ (${t.rec.modseq}))`);
    v.told(t.rec);
  }
  const failed = modified.length ? `[MODIFIED ${formatSet(modified.map((t) => (c.uid ? t.rec.uid : t.seq)))}] ` : '';
  return ok(`${failed}${c.uid ? 'UID ' : ''}STORE completed`);
}

/** Copy messages of `src` (by UID) to the mailbox of `dest`; pairs of [source UID, new UID]. */
export async function copyMessages(src: Folder, uids: number[], dest: FolderSpec): Promise<Array<[number, number]>> {
  const pairs: Array<[number, number]> = [];
  const to = await openFolder(dest);
  try {
    for (let i = 0; i < uids.length; ) {
      const batch: Array<{ uid: number; m: NewMessage }> = [];
      let bytes = 0;
      await src.read(async (reader) => {
        for (; i < uids.length && bytes < COPY_BATCH_BYTES; i++) {
          const rec = src.byUidGet(uids[i]);
          if (!rec) continue;
          const chunks: Buffer[] = [];
          for await (const ch of reader.chunks(rec, 0, rec.length - rec.fromLen)) chunks.push(ch);
          const data = unquoteFrom(Buffer.concat(chunks));
          bytes += data.length;
          const keywords = src.keywordNames(rec.keywords);
          const date = new Date(Number.isFinite(rec.internalDate) ? rec.internalDate : Date.now());
          const sender = fromLineSender((await reader.fromLine(rec)).toString('utf8'));
          batch.push({ uid: rec.uid, m: { data, sender, flags: rec.flags, keywords, date } });
        }
      });
      const got = await to.append(batch.map((b) => b.m));
      batch.forEach((b, k) => pairs.push([b.uid, got[k]]));
    }
    return pairs;
  } finally {
    await to.release();
  }
}

export async function copyCommand(s: ImapSession, c: Cmd, move: boolean): Promise<Result> {
  const v = s.view as MailboxView;
  const verb = `${c.uid ? 'UID ' : ''}${move ? 'MOVE' : 'COPY'}`;
  if (move && v.readOnly) return no('[READ-ONLY] mailbox is read-only');
  const r = resolveMailbox(s, mailboxArg(s, c.args[1]));
  if (typeof r === 'string') return no(r);
  if (!r.inbox && !(await exists(r.file))) return no('[TRYCREATE] no such mailbox');
  const picked = targets(s, astring(c.args[0], 'message set'), c.uid).map((t) => t.rec.uid);
  // A message another session is moving right now is left to that session.
  const uids = move ? v.folder.claim(picked) : picked;
  try {
    if (uids.length === 0) return ok(`${verb} completed (no messages)`);
    const pairs = await copyMessages(v.folder, uids, r.spec);
    const dest = await openFolder(r.spec);
    const validity = dest.uidValidity;
    await dest.release();
    const code = `COPYUID ${validity} ${formatSet(pairs.map((p) => p[0]))} ${formatSet(pairs.map((p) => p[1]))}`;
    if (!move) return ok(`[${code}] ${verb} completed`);
    await s.untagged(`OK [${code}] Moved`);
    await v.folder.expunge(pairs.map((p) => p[0]));
    return ok(`${verb} completed`);
  } finally {
    if (move) v.folder.unclaim(uids);
  }
}

