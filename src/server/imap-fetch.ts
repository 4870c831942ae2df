// IMAP FETCH (RFC 3501 6.4.5, 7.4.2): parsing the data items (macros ALL,
// FAST, FULL; BODY[section]<partial> and BODY.PEEK; RFC822.*) and answering
// them. Items the index holds (UID, FLAGS, INTERNALDATE, RFC822.SIZE, a
// cached ENVELOPE) need no mbox read and no lock, so FETCH 1:* (FLAGS
// ENVELOPE) on 20,000 messages is a walk over memory. Message bytes are
// copied out of the stored range of the part asked for under the mailbox
// lock, a batch of messages at a time (CopiedBytes: memory, or a temporary
// file for a large part), and streamed as literals once the lock is
// released, converted to CRLF on the way: no client holds the lock while it
// drains its socket. The literal's length comes from the index or the MIME
// structure, and the bytes sent are held to it.

import { ByteWindow, CopiedBytes, FLAG, type Folder, type FolderReader, type MessageRecord, ServedConverter, servedHeader, toServed } from '../mailbox/index.ts';
import { HeaderTokens } from '../message/index.ts';
import { decodedPart } from './imap-binary.ts';
import { fetchModifiers } from './imap-condstore.ts';
import { ENVELOPE_CACHE, formatEnvelope } from './imap-envelope.ts';
import { bodyStructure, findPart, type Part, parseStructure } from './imap-mime.ts';
import { targets, type Target } from './imap-selected.ts';
import { bad, type Cmd, type ImapSession, ok, type Result } from './imap-session.ts';
import type { MailboxView } from './imap-view.ts';
import { astring, imapDate, ParseError, type Token } from './imap-wire.ts';

interface Section {
  /** Part numbers; [] for the whole message. */
  path: number[];
  /** '', HEADER, HEADER.FIELDS, HEADER.FIELDS.NOT, TEXT, MIME. */
  text: string;
  fields: string[];
}

interface Item {
  name: 'UID' | 'FLAGS' | 'INTERNALDATE' | 'RFC822.SIZE' | 'ENVELOPE' | 'BODYSTRUCTURE' | 'BODY' | 'MODSEQ' | 'SECTION' | 'BINARY.SIZE';
  /** What the response calls the item, e.g. BODY[HEADER.FIELDS (DATE)]<0>. */
  label?: string;
  section?: Section;
  partial?: { from: number; count: number };
  peek?: boolean;
  /** BINARY[...] or BINARY.SIZE[...] (RFC 3516, imap-binary.ts): the part decoded. */
  binary?: boolean;
}

const MACROS: Record<string, string[]> = {
  ALL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE'],
  FAST: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE'],
  FULL: ['FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODY'],
};
/** Bytes of responses (and of messages copied or parsed) one hold of the mailbox lock gathers before sending. */
const BATCH_BYTES = 1 << 20;
const CRLF = Buffer.from('\r\n');
// MODSEQ and the (CHANGEDSINCE n [VANISHED]) modifier: RFC 7162, imap-condstore.ts.
const SIMPLE = new Set(['UID', 'FLAGS', 'INTERNALDATE', 'RFC822.SIZE', 'ENVELOPE', 'BODYSTRUCTURE', 'BODY', 'MODSEQ']);
const LEGACY: Record<string, { text: string; peek: boolean }> = {
  RFC822: { text: '', peek: false },
  'RFC822.HEADER': { text: 'HEADER', peek: true },
  'RFC822.TEXT': { text: 'TEXT', peek: false },
};

/** One data item from its atom. */
function parseItem(atom: string): Item {
  const up = atom.toUpperCase();
  if (SIMPLE.has(up)) return { name: up as Item['name'] };
  if (LEGACY[up]) return { name: 'SECTION', label: up, section: { path: [], text: LEGACY[up].text, fields: [] }, peek: LEGACY[up].peek };
  const bin = /^BINARY(\.PEEK|\.SIZE)?\[((?:\d+\.)*\d+)?\](?:<(\d+)\.(\d+)>)?$/i.exec(atom);
  if (bin) {
    const section = { path: bin[2] ? bin[2].split('.').map(Number) : [], text: '', fields: [] };
    if (bin[1]?.toUpperCase() === '.SIZE') return { name: 'BINARY.SIZE', label: `BINARY.SIZE[${bin[2] ?? ''}]`, section, binary: true };
    const partial = bin[3] !== undefined ? { from: Number(bin[3]), count: Number(bin[4]) } : undefined;
    return { name: 'SECTION', label: `BINARY[${bin[2] ?? ''}]${partial ? `<${partial.from}>` : ''}`, section, partial, peek: Boolean(bin[1]), binary: true };
  }
  const m = /^BODY(\.PEEK)?\[([^\]]*)\](?:<(\d+)\.(\d+)>)?$/i.exec(atom);
  if (!m) throw new ParseError(`unknown FETCH item ${atom.slice(0, 40)}`);
  const section = parseSection(m[2]);
  const partial = m[3] !== undefined ? { from: Number(m[3]), count: Number(m[4]) } : undefined;
  const spec = m[2].toUpperCase().replace(/\s+/g, ' ');
  const label = `BODY[${spec}]${partial ? `<${partial.from}>` : ''}`;
  return { name: 'SECTION', label, section, partial, peek: Boolean(m[1]) };
}

function parseSection(s: string): Section {
  const m = /^((?:\d+\.)*\d+)?\.?(HEADER\.FIELDS\.NOT|HEADER\.FIELDS|HEADER|TEXT|MIME)?(?: \(([^)]*)\))?$/i.exec(s.trim());
  if (!m) throw new ParseError(`bad section [${s.slice(0, 40)}]`);
  const path = m[1] ? m[1].split('.').map(Number) : [];
  const text = (m[2] ?? '').toUpperCase();
  if (text === 'MIME' && path.length === 0) throw new ParseError('MIME needs a part number');
  const fields = m[3] ? m[3].trim().split(/\s+/).map((f) => f.replace(/^"|"$/g, '').toLowerCase()) : [];
  if (text.startsWith('HEADER.FIELDS') && fields.length === 0) throw new ParseError('HEADER.FIELDS needs field names');
  return { path, text, fields };
}

function parseItems(args: Token[], uid: boolean): Item[] {
  const t = args[0];
  let atoms: string[];
  if (t?.kind === 'list') atoms = t.items.map((x) => astring(x, 'fetch item'));
  else atoms = MACROS[astring(t, 'fetch items').toUpperCase()] ?? [astring(t)];
  const items = atoms.map(parseItem);
  if (uid && !items.some((i) => i.name === 'UID')) items.unshift({ name: 'UID' });
  return items;
}

/** Does answering need the mbox (and so the lock)? */
function needsMbox(items: Item[], folder: Folder, picked: Target[]): boolean {
  if (items.some((i) => i.name === 'SECTION' || i.name === 'BODY' || i.name === 'BODYSTRUCTURE' || i.name === 'BINARY.SIZE')) return true;
  return items.some((i) => i.name === 'ENVELOPE') && picked.some((t) => !folder.hasCache(ENVELOPE_CACHE, t.rec.uid));
}

export async function fetchCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const v = s.view as MailboxView;
  let items: Item[];
  try {
    items = parseItems(c.args.slice(1), c.uid);
  } catch (e) {
    return bad((e as Error).message);
  }
  const setsSeen = !v.readOnly && items.some((i) => i.name === 'SECTION' && !i.peek);
  const mods = await fetchModifiers(s, c, items.some((i) => i.name === 'MODSEQ'), setsSeen);
  if ('status' in mods) return mods;
  if (mods.addModseq && !items.some((i) => i.name === 'MODSEQ')) items.push({ name: 'MODSEQ' });
  if (mods.addUid && !items.some((i) => i.name === 'UID')) items.unshift({ name: 'UID' });
  let picked = targets(s, astring(c.args[0], 'message set'), c.uid);
  if (mods.changedSince !== undefined) picked = picked.filter((t) => t.rec.modseq > (mods.changedSince as number));
  if (items.some((i) => i.name === 'ENVELOPE')) await v.folder.ensureCache();
  const f = new Fetcher(s, v);
  if (needsMbox(items, v.folder, picked)) await f.fromMbox(picked, items, setsSeen);
  else await f.fromIndex(picked, items);
  await s.flush();
  return ok(`${c.uid ? 'UID ' : ''}FETCH completed`);
}

/** A literal of a response: a window of head + served body, sent from what was copied under the lock. */
interface Literal {
  /** Served bytes before the body (a header block). */
  head: Buffer;
  /** The body: stored bytes to convert on the way out, or (when !stored) served bytes already cut to the window. */
  body?: CopiedBytes;
  stored: boolean;
  /** The window of head + served body to send: its start, and the literal's length (a promise, held to). */
  from: number;
  count: number;
}

/** One message's response is made of bytes ready to go and literals. */
type Piece = Buffer | Literal;

/** Answers for one FETCH command; keeps the MIME structures it parsed for the command's length. */
class Fetcher {
  private structures = new Map<number, Part>();
  /** Reads of the mbox, only while fromMbox holds the lock. */
  private reader: FolderReader | undefined;
  /** Stored bytes read for MIME structures under this hold of the lock (they count towards the batch). */
  private parsed = 0;

  constructor(private readonly s: ImapSession, private readonly v: MailboxView) {}

  /** Every response from the index alone, waiting only when the socket is full. */
  async fromIndex(picked: Target[], items: Item[]): Promise<void> {
    for (let k = 0; k < picked.length; k++) {
      const t = picked[k];
      const rec = this.v.folder.byUidGet(t.rec.uid);
      if (!rec) continue;
      const line = this.quickLine(t.seq, rec, items);
      // A cached ENVELOPE mailtk.cache no longer has (cut by someone): made again from the mbox.
      if (!line) return this.fromMbox(picked.slice(k), items, false);
      const wait = this.s.push(line);
      if (wait) await wait;
    }
  }

  /**
   * Responses that need the mbox, a batch at a time: under the lock, the
   * responses are made and their message bytes copied out (CopiedBytes) until
   * about BATCH_BYTES are held or were read for MIME structures; then,
   * without the lock, they are sent. A client that reads slowly holds up no
   * delivery (issue 11), nor does a long FETCH 1:* BODYSTRUCTURE.
   */
  async fromMbox(picked: Target[], items: Item[], setsSeen: boolean): Promise<void> {
    for (let i = 0; i < picked.length; ) {
      const batch: Piece[] = [];
      try {
        await this.v.folder.read(async (reader) => {
          this.reader = reader;
          this.parsed = 0;
          try {
            for (let held = 0; i < picked.length && held + this.parsed < BATCH_BYTES; i++) held += await this.answer(picked[i], items, setsSeen, batch);
          } finally {
            this.reader = undefined;
          }
        });
        for (const p of batch) await this.send(p);
      } finally {
        for (const p of batch) if (!Buffer.isBuffer(p)) await p.body?.close();
      }
    }
  }

  /** One message's response, into `out`; the bytes it holds. */
  private async answer(t: Target, items: Item[], setsSeen: boolean, out: Piece[]): Promise<number> {
    // The record as of now: a sync under the lock may have moved the message in the file.
    const rec = this.v.folder.byUidGet(t.rec.uid);
    if (!rec) return 0;
    const quick = !setsSeen && this.quickLine(t.seq, rec, items);
    if (quick) {
      out.push(quick);
      return quick.length;
    }
    return this.slow(t.seq, rec, items, setsSeen, out);
  }

  private async slow(seq: number, rec: MessageRecord, items: Item[], setsSeen: boolean, out: Piece[]): Promise<number> {
    let flagsAdded = false;
    if (setsSeen && !(rec.flags & FLAG.seen)) {
      this.v.folder.setFlags([rec.uid], 'add', FLAG.seen, 0);
      flagsAdded = !items.some((i) => i.name === 'FLAGS');
    }
    // Small items are gathered into one piece; a body section is a literal of its own.
    let held = 0;
    const parts: Array<string | Buffer> = [`* ${seq} FETCH (`];
    const all = flagsAdded ? [...items, { name: 'FLAGS' } as Item] : items;
    for (let k = 0; k < all.length; k++) {
      if (k > 0) parts.push(' ');
      const item = all[k];
      if (item.name !== 'SECTION') {
        await this.item(rec, item, parts);
        continue;
      }
      const lit = await this.section(rec, item);
      parts.push(`${item.label} ${item.binary && lit.head.includes(0) ? '~' : ''}{${lit.count}}\r\n`);
      const text = joinParts(parts);
      parts.length = 0;
      out.push(text, lit);
      held += text.length + lit.head.length + (lit.body?.length ?? 0);
    }
    parts.push(')\r\n');
    const text = joinParts(parts);
    out.push(text);
    return held + text.length;
  }

  /** Send a piece made under the lock; a literal's bytes are held to its announced length. */
  private async send(p: Piece): Promise<void> {
    if (Buffer.isBuffer(p)) return this.s.push(p);
    const window = new ByteWindow(p.from, p.count);
    let sent = 0;
    const emit = async (b: Buffer) => {
      const piece = window.take(b);
      if (piece.length === 0) return;
      sent += piece.length;
      await this.s.push(piece);
    };
    await emit(p.head);
    if (p.body && !window.done) {
      const conv = p.stored ? new ServedConverter() : undefined;
      for await (const chunk of p.body.chunks()) {
        await emit(conv ? conv.push(chunk) : chunk);
        if (window.done) break;
      }
      if (conv && !window.done) await emit(conv.end());
    }
    // The literal's length is a promise: hold to it whatever the bytes did.
    if (sent < p.count) await this.s.push(Buffer.alloc(p.count - sent, 0x20));
  }

  /** The whole response from the index alone, without awaiting anything; undefined when it needs more. */
  private quickLine(seq: number, rec: MessageRecord, items: Item[]): Buffer | undefined {
    const parts: Array<string | Buffer> = [`* ${seq} FETCH (`];
    for (let k = 0; k < items.length; k++) {
      const item = items[k];
      if (k > 0) parts.push(' ');
      if (item.name === 'ENVELOPE') {
        const env = this.v.folder.getCache(ENVELOPE_CACHE, rec.uid);
        if (!env) return undefined;
        parts.push('ENVELOPE ', env);
      } else if (item.name === 'UID') parts.push(`UID ${rec.uid}`);
      else if (item.name === 'FLAGS') {
        this.v.told(rec);
        parts.push(`FLAGS ${this.v.flagText(rec)}`);
      } else if (item.name === 'RFC822.SIZE') parts.push(`RFC822.SIZE ${rec.size}`);
      else if (item.name === 'INTERNALDATE') parts.push(`INTERNALDATE ${imapDate(rec.internalDate)}`);
      else if (item.name === 'MODSEQ') parts.push(`MODSEQ (${rec.modseq})`);
      else return undefined;
    }
    parts.push(')\r\n');
    return joinParts(parts);
  }

  private async item(rec: MessageRecord, item: Item, out: Array<string | Buffer>): Promise<void> {
    switch (item.name) {
      case 'UID':
        return void out.push(`UID ${rec.uid}`);
      case 'FLAGS':
        this.v.told(rec);
        return void out.push(`FLAGS ${this.v.flagText(rec)}`);
      case 'INTERNALDATE':
        return void out.push(`INTERNALDATE ${imapDate(rec.internalDate)}`);
      case 'RFC822.SIZE':
        return void out.push(`RFC822.SIZE ${rec.size}`);
      case 'MODSEQ':
        return void out.push(`MODSEQ (${rec.modseq})`);
      case 'BINARY.SIZE':
        return void out.push(`${item.label} ${item.section!.path.length ? (await this.binary(rec, item.section!)).length : rec.size}`);
      case 'ENVELOPE':
        out.push('ENVELOPE ', await this.envelope(rec));
        return;
      default:
        out.push(`${item.name} ${bodyStructure(await this.structure(rec), item.name === 'BODYSTRUCTURE', this.s.rev2)}`);
    }
  }

  /** Held while later items are made (their reads may move the cache's window): a copy. */
  private async envelope(rec: MessageRecord): Promise<Buffer> {
    const cached = this.v.folder.getCache(ENVELOPE_CACHE, rec.uid);
    if (cached) return Buffer.from(cached);
    const env = formatEnvelope(await this.reader!.header(rec));
    this.v.folder.putCache(ENVELOPE_CACHE, rec.uid, env);
    return env;
  }

  private async structure(rec: MessageRecord): Promise<Part> {
    let p = this.structures.get(rec.uid);
    if (!p) {
      p = await parseStructure(this.reader!, rec, this.s.rev2);
      this.parsed += rec.length;
      this.structures.clear(); // one at a time: a FETCH 1:* BODYSTRUCTURE keeps no more than it needs
      this.structures.set(rec.uid, p);
    }
    return p;
  }

  /**
   * A BODY[...] item, under the lock: its literal's window, and the bytes
   * copied out. A partial fetch (<from.count>) keeps only its window, served
   * already, so that <n.m> of a large message copies m bytes, not n + m.
   */
  private async section(rec: MessageRecord, item: Item): Promise<Literal> {
    const sec = item.section!;
    const src = item.binary && sec.path.length ? { head: await this.binary(rec, sec), storedServed: 0 } : await this.source(rec, sec);
    const total = src.head.length + src.storedServed;
    const from = Math.min(item.partial?.from ?? 0, total);
    const count = Math.min(item.partial ? item.partial.count : total, total - from);
    if (!src.range || count === 0) return { head: src.head, stored: true, from, count };
    const body = new CopiedBytes();
    try {
      const chunks = this.reader!.chunks(rec, src.range[0], src.range[1], body.scratch);
      if (!item.partial) {
        for await (const chunk of chunks) await body.add(chunk);
        return { head: src.head, body, stored: true, from, count };
      }
      const window = new ByteWindow(from, count);
      const head = window.take(src.head);
      const conv = new ServedConverter();
      if (!window.done) {
        for await (const chunk of chunks) {
          await body.add(window.take(conv.push(chunk)));
          if (window.done) break;
        }
        if (!window.done) await body.add(window.take(conv.end()));
      }
      return { head, body, stored: false, from: 0, count };
    } catch (e) {
      await body.close();
      throw e;
    }
  }

  /** A part's content, its transfer encoding undone (BINARY); BINARY[] is BODY[]. */
  private async binary(rec: MessageRecord, sec: Section): Promise<Buffer> {
    return decodedPart(this.reader!, await this.structure(rec), rec, sec.path);
  }

  /** What a section is made of: bytes in memory first, then a stored range of known served length. */
  private async source(rec: MessageRecord, sec: Section): Promise<{ head: Buffer; range?: [number, number]; storedServed: number }> {
    const top = sec.path.length === 0;
    if (top && (sec.text === '' || sec.text.startsWith('HEADER'))) {
      const header = servedHeader(await this.reader!.header(rec));
      if (sec.text === '') return { head: header, range: [rec.headerLength, rec.length - rec.fromLen], storedServed: rec.size - rec.headerSize };
      return { head: sec.text === 'HEADER' ? header : filterFields(header, sec), storedServed: 0 };
    }
    if (top && sec.text === 'TEXT') return { head: Buffer.alloc(0), range: [rec.headerLength, rec.length - rec.fromLen], storedServed: rec.size - rec.headerSize };
    const part = findPart(await this.structure(rec), sec.path);
    if (!part) return { head: Buffer.alloc(0), storedServed: 0 };
    if (sec.text === 'MIME') return { head: toServed(part.header), storedServed: 0 };
    if (sec.text === '') return { head: Buffer.alloc(0), range: [part.sBodyStart, part.sBodyEnd], storedServed: part.size };
    const msg = part.message;
    if (!msg) return { head: Buffer.alloc(0), storedServed: 0 };
    if (sec.text === 'TEXT') return { head: Buffer.alloc(0), range: [msg.sBodyStart, msg.sBodyEnd], storedServed: msg.size };
    const header = toServed(msg.header);
    return { head: sec.text === 'HEADER' ? header : filterFields(header, sec), storedServed: 0 };
  }
}

/** One buffer of strings and buffers, runs of strings encoded at once. */
function joinParts(parts: Array<string | Buffer>): Buffer {
  const bufs: Buffer[] = [];
  let text = '';
  for (const p of parts) {
    if (typeof p === 'string') text += p;
    else {
      if (text) bufs.push(Buffer.from(text, 'utf8'));
      text = '';
      bufs.push(p);
    }
  }
  if (text) bufs.push(Buffer.from(text, 'utf8'));
  return bufs.length === 1 ? bufs[0] : Buffer.concat(bufs);
}

/**
 * HEADER.FIELDS (names) or HEADER.FIELDS.NOT (names) of a served header block,
 * with its blank line. A line of the header that is no field (header-tokens.ts:
 * no colon, or folded with no field before it) is named by no list, so .NOT keeps it.
 */
function filterFields(header: Buffer, sec: Section): Buffer {
  const want = new Set(sec.fields);
  const not = sec.text === 'HEADER.FIELDS.NOT';
  const out: Buffer[] = [];
  const t = new HeaderTokens(header);
  while (t.next()) if (want.has(t.name().toLowerCase()) !== not) out.push(t.raw());
  // RFC 3501 6.4.5: the blank line is in every header fetch "except in the case of a message which
  // has no body and no blank line"; Dovecot applies that to HEADER.FIELDS.NOT and not to HEADER.FIELDS.
  if (t.separator > 0 || !not) out.push(CRLF);
  return Buffer.concat(out);
}
