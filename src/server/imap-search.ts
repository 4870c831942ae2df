// IMAP SEARCH (RFC 3501 6.4.4): every search key of the RFC, AND by
// juxtaposition, OR, NOT and parenthesized groups, CHARSET UTF-8 or US-ASCII
// (others get [BADCHARSET]), and ESEARCH's RETURN (RFC 4731). Flags, sizes, dates and UIDs come from the index;
// header keys read the header block, BODY and TEXT the message (its text
// parts, attached messages' too, decoded from base64 and quoted-printable and
// from their charsets), under the mailbox lock, and
// only for messages the cheaper keys have not already ruled out. String
// matches are case-insensitive substrings of the RFC 2047-decoded value.
// CONDSTORE's MODSEQ key (RFC 7162 3.1.5) matches messages changed at or
// after a mod-sequence, and adds the highest one found to the answer.
// SEARCHRES (RFC 5182): RETURN (SAVE) keeps the result, which "$" names
// (as a key here, and as the message set of FETCH, STORE, COPY, ...).
// An IMAP4rev2 session is answered with ESEARCH always (RFC 9051 6.4.4: no
// RETURN is RETURN (ALL)).

import { FLAG, type FolderReader, type MessageRecord, ServedConverter, visibleHeader } from '../mailbox/index.ts';
import { headerMap } from './imap-envelope.ts';
import { parseStructure, type Part } from './imap-mime.ts';
import { enableCondstore, parseModseq } from './imap-condstore.ts';
import { type Target, targets } from './imap-selected.ts';
import { bad, type Cmd, type ImapSession, no, ok, type Result } from './imap-session.ts';
import type { MailboxView } from './imap-view.ts';
import { astring, formatSet, inSet, ParseError, parseSearchDate, parseSeqSet, type SeqSet, str, type Token } from './imap-wire.ts';

type Key =
  | { k: 'all' }
  | { k: 'flag'; bit: number; set: boolean }
  | { k: 'recent' | 'new' | 'old'; set: boolean }
  | { k: 'keyword'; name: string; set: boolean }
  | { k: 'header'; field: string; value: string }
  | { k: 'body' | 'text'; value: string }
  | { k: 'date'; op: 'before' | 'on' | 'since'; sent: boolean; day: number }
  | { k: 'size'; op: 'larger' | 'smaller'; n: number }
  | { k: 'seq' | 'uid'; set: SeqSet }
  | { k: 'modseq'; n: number }
  | { k: 'saved' }
  | { k: 'not'; key: Key }
  | { k: 'or'; a: Key; b: Key }
  | { k: 'and'; keys: Key[] };

const FLAGS: Record<string, [number, boolean]> = {
  ANSWERED: [FLAG.answered, true], DELETED: [FLAG.deleted, true], DRAFT: [FLAG.draft, true], FLAGGED: [FLAG.flagged, true], SEEN: [FLAG.seen, true],
  UNANSWERED: [FLAG.answered, false], UNDELETED: [FLAG.deleted, false], UNDRAFT: [FLAG.draft, false], UNFLAGGED: [FLAG.flagged, false], UNSEEN: [FLAG.seen, false],
};
const HEADER_KEYS = new Set(['BCC', 'CC', 'FROM', 'SUBJECT', 'TO']);
const DATE_KEYS: Record<string, ['before' | 'on' | 'since', boolean]> = {
  BEFORE: ['before', false], ON: ['on', false], SINCE: ['since', false], SENTBEFORE: ['before', true], SENTON: ['on', true], SENTSINCE: ['since', true],
};

/** What a parse found out about the program beyond its keys. */
interface ProgramInfo {
  modseq: boolean;
}

class KeyParser {
  private i = 0;
  constructor(private readonly tokens: Token[], private readonly v: MailboxView, readonly info: ProgramInfo = { modseq: false }) {}

  all(): Key {
    const keys: Key[] = [];
    while (this.i < this.tokens.length) keys.push(this.key());
    if (keys.length === 0) throw new ParseError('SEARCH needs a key');
    return keys.length === 1 ? keys[0] : { k: 'and', keys };
  }

  private str(): string {
    return astring(this.tokens[this.i++], 'search string');
  }

  private key(): Key {
    const t = this.tokens[this.i++];
    if (!t) throw new ParseError('search key expected');
    if (t.kind === 'list') return new KeyParser(t.items, this.v, this.info).all();
    if (t.kind !== 'atom') throw new ParseError('search key expected');
    const up = t.value.toUpperCase();
    if (FLAGS[up]) return { k: 'flag', bit: FLAGS[up][0], set: FLAGS[up][1] };
    if (HEADER_KEYS.has(up)) return { k: 'header', field: up.toLowerCase(), value: this.str() };
    if (DATE_KEYS[up]) {
      const day = parseSearchDate(this.str());
      if (day === undefined) throw new ParseError(`bad date for ${up}`);
      return { k: 'date', op: DATE_KEYS[up][0], sent: DATE_KEYS[up][1], day };
    }
    switch (up) {
      case 'ALL': return { k: 'all' };
      case 'RECENT': return { k: 'recent', set: true };
      case 'NEW': return { k: 'new', set: true };
      case 'OLD': return { k: 'recent', set: false };
      case 'KEYWORD': return { k: 'keyword', name: this.str(), set: true };
      case 'UNKEYWORD': return { k: 'keyword', name: this.str(), set: false };
      case 'HEADER': return { k: 'header', field: this.str().toLowerCase(), value: this.str() };
      case 'BODY': return { k: 'body', value: this.str() };
      case 'TEXT': return { k: 'text', value: this.str() };
      case 'LARGER': return { k: 'size', op: 'larger', n: this.num() };
      case 'SMALLER': return { k: 'size', op: 'smaller', n: this.num() };
      case 'UID': {
        const set = this.str();
        return set === '$' ? { k: 'saved' } : { k: 'uid', set: parseSeqSet(set, this.v.maxUid) };
      }
      case '$': return { k: 'saved' };
      case 'MODSEQ': return this.modseq();
      case 'NOT': return { k: 'not', key: this.key() };
      case 'OR': return { k: 'or', a: this.key(), b: this.key() };
      default: return { k: 'seq', set: parseSeqSet(t.value, this.v.uids.length) };
    }
  }

  /** "MODSEQ" [SP entry-name SP entry-type-req] SP mod-sequence-valzer; the entry (a flag's) is not told apart. */
  private modseq(): Key {
    if (this.tokens[this.i]?.kind === 'string') {
      const type = this.tokens[this.i + 1];
      if (!(type?.kind === 'atom' && /^(priv|shared|all)$/i.test(type.value))) throw new ParseError('MODSEQ entry type is priv, shared or all');
      this.i += 2;
    }
    const n = parseModseq(this.tokens[this.i++]);
    if (n === undefined) throw new ParseError('MODSEQ needs a mod-sequence');
    this.info.modseq = true;
    return { k: 'modseq', n };
  }

  private num(): number {
    const s = this.str();
    if (!/^\d+$/.test(s)) throw new ParseError('number expected');
    return Number(s);
  }
}

/** What a key needs beyond the index. */
function needs(k: Key): 'index' | 'header' | 'body' {
  switch (k.k) {
    case 'header': return 'header';
    case 'date': return k.sent ? 'header' : 'index';
    case 'body': case 'text': return 'body';
    case 'not': return needs(k.key);
    case 'or': return worst([needs(k.a), needs(k.b)]);
    case 'and': return worst(k.keys.map(needs));
    default: return 'index';
  }
}

function worst(n: Array<'index' | 'header' | 'body'>): 'index' | 'header' | 'body' {
  return n.includes('body') ? 'body' : n.includes('header') ? 'header' : 'index';
}

/** RFC 2047 encoded words, decoded for matching. */
export function decodeWords(s: string): string {
  return s.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=(\s+(?==\?))?/g, (_m, cs: string, enc: string, text: string) => {
    const bytes = enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_x, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    try {
      return new TextDecoder(cs.split('*')[0].toLowerCase()).decode(bytes);
    } catch {
      return bytes.toString('latin1');
    }
  });
}

function dayOf(ms: number): number {
  const d = new Date(ms);
  return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
}

/** The evaluation of a key tree for one message; header and body fetched once, when first needed. */
class Match {
  private headers: Map<string, string> | undefined;
  private bodyText: string | undefined;
  private headerText: string | undefined;

  constructor(private readonly rec: MessageRecord, private readonly seq: number, private readonly v: MailboxView, private readonly reader: FolderReader | undefined) {}

  async test(k: Key): Promise<boolean> {
    const r = this.rec;
    switch (k.k) {
      case 'all': return true;
      case 'flag': return ((r.flags & k.bit) !== 0) === k.set;
      case 'recent': return this.v.recent.has(r.uid) === k.set;
      case 'new': return this.v.recent.has(r.uid) && !(r.flags & FLAG.seen);
      case 'old': return !this.v.recent.has(r.uid);
      case 'keyword': {
        const bit = this.v.folder.keywordBit(k.name, false);
        return (bit !== undefined && (r.keywords & bit) !== 0) === k.set;
      }
      case 'size': return k.op === 'larger' ? r.size > k.n : r.size < k.n;
      case 'seq': return inSet(k.set, this.seq);
      case 'uid': return inSet(k.set, r.uid);
      case 'modseq': return r.modseq >= k.n;
      case 'saved': return this.v.saved.has(r.uid);
      case 'not': return !(await this.test(k.key));
      case 'or': return (await this.test(k.a)) || this.test(k.b);
      case 'and':
        for (const x of k.keys) if (!(await this.test(x))) return false;
        return true;
      case 'date': return this.date(k);
      case 'header': {
        const h = await this.header();
        const value = h.get(k.field);
        if (value === undefined) return false;
        return k.value === '' || decodeWords(value).toLowerCase().includes(k.value.toLowerCase());
      }
      case 'body': return (await this.body()).includes(k.value.toLowerCase());
      case 'text': {
        const needle = k.value.toLowerCase();
        await this.header();
        return this.headerText!.includes(needle) || (await this.body()).includes(needle);
      }
    }
  }

  private async date(k: Extract<Key, { k: 'date' }>): Promise<boolean> {
    let ms = this.rec.internalDate;
    if (k.sent) {
      const d = (await this.header()).get('date');
      ms = d ? Date.parse(d.replace(/\([^)]*\)/g, '')) : NaN;
    }
    if (!Number.isFinite(ms)) return false;
    const day = dayOf(ms);
    return k.op === 'before' ? day < k.day : k.op === 'on' ? day === k.day : day >= k.day;
  }

  private async header(): Promise<Map<string, string>> {
    if (!this.headers) {
      // As FETCH serves it: the mbox bookkeeping fields (Status:, X-Status:, ...) are not the message's.
      const block = visibleHeader(await this.reader!.header(this.rec));
      this.headers = headerMap(block);
      this.headerText = decodeWords(block.toString('utf8')).toLowerCase();
    }
    return this.headers;
  }

  private async body(): Promise<string> {
    if (this.bodyText === undefined) this.bodyText = (await readBodyText(this.reader!, this.rec)).toLowerCase();
    return this.bodyText;
  }
}

const MAX_SEARCH_BYTES = 32 << 20;

/**
 * What BODY and TEXT look in (RFC 3501 6.4.4), as Dovecot decodes it: the
 * body as served; every text part, those of messages nested in
 * message/rfc822 and message/global (RFC 6532) parts included, decoded from
 * its transfer encoding (base64, quoted-printable) and its charset; and the
 * header blocks of parts and attached messages with their encoded words
 * (RFC 2047) decoded. A message/global part is an attached message here even
 * in an IMAP4rev1 session, whose BODYSTRUCTURE shows it as a plain part: what
 * a search finds does not depend on how the structure is described. Parts are cut out of the stored bytes by
 * their stored offsets: the served ones leave out the hidden mbox fields of
 * the top header (Status:, X-Status:, ...), so they do not index what is read
 * here. A message above MAX_SEARCH_BYTES is searched in its first bytes.
 */
async function readBodyText(reader: FolderReader, rec: MessageRecord): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of reader.chunks(rec, 0, Math.min(rec.length - rec.fromLen, MAX_SEARCH_BYTES))) chunks.push(c);
  const stored = Buffer.concat(chunks);
  /** Stored bytes [from, to) as served (mbox quoting undone), clamped to what was read. */
  const served = (from: number, to: number): Buffer => {
    const conv = new ServedConverter();
    const slice = stored.subarray(Math.min(from, stored.length), Math.min(to, stored.length));
    return Buffer.concat([conv.push(slice), conv.end()]);
  };
  const texts: string[] = [served(rec.headerLength, stored.length).toString('utf8')];
  const root = await parseStructure(reader, rec, true); // true: message/global encloses a message
  const visit = (p: Part) => {
    if (p !== root && p.header.includes('=?')) texts.push(decodeWords(p.header.toString('utf8')));
    if (p.type === 'MULTIPART') return p.children.forEach(visit);
    if (p.message) return visit(p.message);
    if (p.type !== 'TEXT' || p.sBodyStart < 0 || p.sBodyStart >= stored.length) return;
    const enc = (headerMap(p.header).get('content-transfer-encoding') ?? '').toLowerCase();
    const charset = p.params.find(([k]) => k === 'CHARSET')?.[1];
    const encoded = enc === 'base64' || enc === 'quoted-printable';
    if (!encoded && isUtf8Compatible(charset)) return; // the served body above has it as it is
    const raw = served(p.sBodyStart, p.sBodyEnd);
    const bytes = enc === 'base64' ? Buffer.from(raw.toString('latin1'), 'base64') : enc === 'quoted-printable' ? decodeQuotedPrintable(raw) : raw;
    texts.push(decodeCharset(bytes, charset));
  };
  visit(root);
  return texts.join('\n');
}

/** RFC 2045 6.7: soft line breaks (with any transport padding before them) removed, =XX decoded. */
export function decodeQuotedPrintable(raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/=[ \t]*\r?\n/g, '');
  return Buffer.from(text.replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
}

/** Charsets whose text reads right as UTF-8 (none named: us-ascii, RFC 2045 5.2). */
function isUtf8Compatible(charset: string | undefined): boolean {
  const cs = (charset ?? '').trim().toLowerCase();
  return cs === '' || cs === 'utf-8' || cs === 'utf8' || cs === 'us-ascii' || cs === 'ascii';
}

/** A part's bytes as text in its charset; an unknown charset is read as UTF-8. */
function decodeCharset(bytes: Buffer, charset: string | undefined): string {
  if (isUtf8Compatible(charset)) return bytes.toString('utf8');
  try {
    return new TextDecoder((charset as string).trim().toLowerCase()).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

const CHARSETS = new Set(['UTF-8', 'US-ASCII']);

/** A charset SEARCH, SORT and THREAD accept; otherwise the NO they answer (RFC 3501 6.4.4, RFC 5256 3). */
export function checkCharset(cs: string): Result | undefined {
  return CHARSETS.has(cs.toUpperCase()) ? undefined : no('[BADCHARSET (UTF-8 US-ASCII)] unsupported charset');
}

/**
 * The messages a search program picks, in mailbox order: SEARCH's, and that
 * of SORT and THREAD (RFC 5256). A Result is the BAD of a bad program.
 */
export async function searchTargets(s: ImapSession, args: Token[], info: ProgramInfo = { modseq: false }): Promise<Target[] | Result> {
  const v = s.view as MailboxView;
  let key: Key;
  try {
    key = new KeyParser(args, v, info).all();
  } catch (e) {
    return bad((e as Error).message);
  }
  if (info.modseq) await enableCondstore(s);
  const picked = targets(s, v.uids.length ? `1:${v.uids.length}` : '1:*', false).filter((t) => t.seq <= v.uids.length);
  const hits: Target[] = [];
  const run = async (reader: FolderReader | undefined) => {
    for (const t of picked) {
      const rec = v.folder.byUidGet(t.rec.uid); // as of now: a sync under the lock may have moved it
      if (rec && (await new Match(rec, t.seq, v, reader).test(key))) hits.push({ seq: t.seq, rec });
    }
  };
  if (needs(key) === 'index' || picked.length === 0) await run(undefined);
  else await v.folder.read(run);
  return hits;
}

const RETURN_OPTIONS = new Set(['MIN', 'MAX', 'ALL', 'COUNT', 'SAVE']);

/**
 * SEARCH and UID SEARCH, with ESEARCH's RETURN (RFC 4731 3): RETURN comes
 * first, then CHARSET; RETURN () means RETURN (ALL). Its answer is one
 * untagged "ESEARCH (TAG "t") [UID] MIN n MAX n ALL set COUNT n", the set
 * compressed into ranges; with no match only COUNT 0 is given (RFC 4731 3.1).
 * Without RETURN, the plain SEARCH response of RFC 3501; in an IMAP4rev2
 * session, ESEARCH as for RETURN (ALL) (RFC 9051 6.4.4).
 */
export async function searchCommand(s: ImapSession, c: Cmd): Promise<Result> {
  let args = c.args;
  let ret: Set<string> | undefined;
  if (args[0]?.kind === 'atom' && args[0].value.toUpperCase() === 'RETURN') {
    const opts = args[1];
    if (opts?.kind !== 'list') return bad('RETURN needs a list of options');
    ret = new Set();
    for (const t of opts.items) {
      const o = t.kind === 'atom' ? t.value.toUpperCase() : '';
      if (!RETURN_OPTIONS.has(o)) return bad(`unknown SEARCH return option ${o.slice(0, 30)}`);
      ret.add(o);
    }
    if (ret.size === 0) ret.add('ALL');
    args = args.slice(2);
  } else if (s.rev2) ret = new Set(['ALL']);
  if (args[0]?.kind === 'atom' && args[0].value.toUpperCase() === 'CHARSET') {
    const refused = checkCharset(astring(args[1], 'charset'));
    if (refused) return refused;
    args = args.slice(2);
  }
  const info = { modseq: false };
  const v = s.view as MailboxView;
  const found = await searchTargets(s, args, info);
  if (!Array.isArray(found)) {
    if (ret?.has('SAVE')) v.saved = new Set(); // RFC 5182 2.1: a failed SEARCH (SAVE) empties the result
    return found;
  }
  if (ret?.has('SAVE')) {
    // With MIN or MAX alone beside SAVE, only those are kept (RFC 5182 2.1).
    let keep = found;
    if (!ret.has('ALL') && !ret.has('COUNT') && (ret.has('MIN') || ret.has('MAX'))) {
      keep = [];
      if (ret.has('MIN') && found.length) keep.push(found[0]);
      if (ret.has('MAX') && found.length > (ret.has('MIN') ? 1 : 0)) keep.push(found[found.length - 1]);
    }
    v.saved = new Set(keep.map((t) => t.rec.uid));
    ret.delete('SAVE');
    if (ret.size === 0) return ok(`${c.uid ? 'UID ' : ''}SEARCH completed (saved)`);
  }
  const hits = found.map((t) => (c.uid ? t.rec.uid : t.seq));
  // RFC 7162 3.1.5: with MODSEQ in the program, the highest mod-sequence of the messages
  // returned; RFC 4731 3.2: with MIN and/or MAX alone, those are the ones returned.
  const returned = ret && !ret.has('ALL') && !ret.has('COUNT') && found.length ? [found[0], found[found.length - 1]].filter((t, k) => ret.has(k ? 'MAX' : 'MIN')) : found;
  const modseq = info.modseq ? highestModseq(returned) : undefined;
  if (ret) await s.untagged(esearchResponse(c.tag, c.uid, ret, hits, modseq));
  else await s.untagged(`SEARCH${hits.map((n) => ` ${n}`).join('')}${modseq ? ` (MODSEQ ${modseq})` : ''}`);
  return ok(`${c.uid ? 'UID ' : ''}SEARCH completed`);
}

/** The highest mod-sequence of some messages; undefined for none (RFC 7162 3.1.5: no MODSEQ then). */
export function highestModseq(found: Target[]): number | undefined {
  return found.length ? found.reduce((m, t) => Math.max(m, t.rec.modseq), 0) : undefined;
}

/** RFC 4731 3.1's response; `hits` ascending. */
export function esearchResponse(tag: string, uid: boolean, ret: Set<string>, hits: number[], modseq?: number): string {
  const parts = [`ESEARCH (TAG ${str(tag)})`];
  if (uid) parts.push('UID');
  if (hits.length && ret.has('MIN')) parts.push(`MIN ${hits[0]}`);
  if (hits.length && ret.has('MAX')) parts.push(`MAX ${hits[hits.length - 1]}`);
  // ALL before COUNT, the order Dovecot writes them in (RFC 4731 sets none).
  if (hits.length && ret.has('ALL')) parts.push(`ALL ${formatSet(hits)}`);
  if (ret.has('COUNT')) parts.push(`COUNT ${hits.length}`);
  if (modseq) parts.push(`MODSEQ ${modseq}`);
  return parts.join(' ');
}
