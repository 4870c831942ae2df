// Differential IMAP test: mailtk beside Dovecot on the same mbox.
//
// A corpus of messages (test/corpus/*.eml, hand-made, see its README; plus
// the real-world messages of Python's email test suite when Debian's
// libpython3.X-testsuite is installed) is written into one mbox file in
// mboxrd form. mailtk's real daemon (`sendmail -bD`, as root, in a sandbox)
// serves it, and Dovecot, started here on a loopback port picked at run time
// with its own byte copy of the file (mbox format, passwd-file user), serves
// the copy. Over raw IMAP (a small literal-aware client below) the test asks
// both the same questions and compares the answers:
//
// - for every message: UID, FLAGS, INTERNALDATE, RFC822.SIZE, ENVELOPE (field
//   by field) and BODYSTRUCTURE (part by part, field by field), and
//   BODY.PEEK[] sections: whole, HEADER, TEXT, HEADER.FIELDS, a partial
//   <0.100>, and for every part found in either BODYSTRUCTURE its number,
//   N.MIME, and N.HEADER / N.TEXT / N.1 inside message/rfc822 parts;
// - SEARCH results for a set of keys (addresses, subjects, body and text
//   words, headers, sizes, dates, words only inside decoded parts);
// - state-changing commands on copies of messages in a scratch folder:
//   CREATE, COPY, STORE, EXPUNGE, MOVE (when both advertise it), APPEND,
//   CLOSE, RENAME, DELETE, with what a following FETCH, LIST or STATUS shows.
//
// Normalised away, as allowed to differ: UIDVALIDITY values (also inside
// COPYUID/APPENDUID), the human text after OK/NO/BAD (only the status word
// and the response code count), CAPABILITY lists and CAPABILITY response
// codes, untagged responses that are server chatter (OK without a code,
// OK [UIDVALIDITY/CLOSED/HIGHESTMODSEQ/NOMODSEQ], ID, ENABLED), the form of a
// string (quoted or literal, RFC 3501 4.3), the order of FETCH items and of
// flags in a flag list, the case of system flags, the case of MIME type,
// subtype, encoding, parameter names and disposition type in BODYSTRUCTURE
// (RFC 2045 5.1, 6.1; RFC 2183 2), a body language as one string or a list of
// one (body-fld-lang), a day of INTERNALDATE as " 5" or "05" (date-day-fixed),
// LIST attributes that are hints (\Marked, \Unmarked, \HasChildren,
// \HasNoChildren), and mailboxes the test did not make are compared as one
// list of names. INTERNALDATE itself is compared: both read the From_ line.
//
// Every remaining difference must be listed in
// test/corpus/known-differences.json, each with the RFC text that justifies
// keeping it (or naming it a mailtk bug); an unlisted difference fails with a
// readable diff, and so does a listed one that no longer occurs. Set
// IMAP_DIFF_OUT=FILE to write every difference found as JSON (to update the list).
//
// Needs root (mailtk's daemon as root, Dovecot's mail user) and Dovecot
// (dovecot-imapd, installed by test/install-deps.sh); skipped otherwise.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DOVECOT, type DovecotServer, startDovecot } from './dovecot.ts';
import { IS_ROOT, ROOT, type RunningDaemon, type Sandbox, makeSandbox, run, startDaemon } from './helpers.ts';

const CORPUS = path.join(ROOT, 'test/corpus');
const KNOWN_FILE = path.join(CORPUS, 'known-differences.json');
const USER = 'differ';
const PASSWORD = 'Diff-s3cret';

const skip = !IS_ROOT
  ? 'needs root: mailtk\'s daemon as root and Dovecot\'s mail user'
  : !fs.existsSync(DOVECOT) || !fs.existsSync('/usr/lib/dovecot/imap')
    ? 'Dovecot is not installed (test/install-deps.sh installs dovecot-imapd as root)'
    : false;

// ------------------------------------------------------------------ the corpus and the mbox

interface CorpusMessage {
  name: string;
  bytes: Buffer;
}

/** Debian's libpython3.X-testsuite: real-world messages of Python's email tests. */
function pythonDataDir(): string | undefined {
  let dirs: string[] = [];
  try {
    dirs = fs.readdirSync('/usr/lib').filter((d) => /^python3\.\d+$/.test(d)).sort();
  } catch {
    return undefined;
  }
  for (const d of dirs.reverse()) {
    const p = path.join('/usr/lib', d, 'test/test_email/data');
    if (fs.existsSync(path.join(p, 'msg_01.txt'))) return p;
  }
  return undefined;
}

function loadCorpus(): CorpusMessage[] {
  const out: CorpusMessage[] = [];
  for (const f of fs.readdirSync(CORPUS).filter((n) => n.endsWith('.eml')).sort()) {
    out.push({ name: f, bytes: fs.readFileSync(path.join(CORPUS, f)) });
  }
  const py = pythonDataDir();
  if (py) {
    for (const f of fs.readdirSync(py).filter((n) => /^msg_\w+\.txt$/.test(n)).sort()) {
      let bytes = fs.readFileSync(path.join(py, f));
      // A leading Unix From_ line is an envelope line, never content: sendmail
      // and procmail take it off at delivery, and so does this mbox writer.
      if (bytes.subarray(0, 5).toString('latin1') === 'From ') bytes = bytes.subarray(bytes.indexOf(0x0a) + 1);
      out.push({ name: `python:${f}`, bytes });
    }
  }
  // A message without a final newline can only be the last of an mbox (a
  // From_ line must follow a blank line).
  const open = out.filter((m) => m.bytes.length > 0 && m.bytes[m.bytes.length - 1] !== 0x0a);
  assert.ok(open.length <= 1, `at most one corpus message may lack a final newline: ${open.map((m) => m.name)}`);
  return [...out.filter((m) => !open.includes(m)), ...open];
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const p2 = (n: number) => String(n).padStart(2, '0');

/** asctime(3) in local time, as a From_ line carries it. */
function asctime(d: Date): string {
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${d.getFullYear()}`;
}

/** The corpus as an mboxrd file: From_ line, body lines matching ^>*From  get one more '>', a blank line after each message. */
function mboxrd(msgs: CorpusMessage[]): Buffer {
  const parts: Buffer[] = [];
  msgs.forEach((m, i) => {
    const date = new Date(2026, 0, 5 + (i % 28), 8 + Math.floor(i / 28), i % 60, 7);
    parts.push(Buffer.from(`From corpus@example.test ${asctime(date)}\n`));
    const text = m.bytes.toString('latin1').replace(/^(>*From )/gm, '>$1');
    parts.push(Buffer.from(text, 'latin1'));
    if (text.endsWith('\n')) parts.push(Buffer.from('\n'));
  });
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ a raw IMAP client

class Atom {
  constructor(readonly v: string) {}
}
type Tok = Atom | Buffer | null | Tok[];

interface Untagged {
  num?: number;
  kind: string;
  data: Tok[];
  code?: string;
  raw: string;
}

interface Reply {
  status: string;
  code: string;
  untagged: Untagged[];
}

/** Parse IMAP data: atoms (with [...] kept whole), quoted strings and literals (both Buffers), NIL, lists. */
function parseTokens(buf: Buffer, from = 0): Tok[] {
  let i = from;
  const len = buf.length;
  const skipSp = () => {
    while (i < len && buf[i] === 0x20) i++;
  };
  const value = (): Tok => {
    const c = buf[i];
    if (c === 0x28) {
      i++;
      const list: Tok[] = [];
      for (;;) {
        skipSp();
        if (i >= len) throw new Error(`unclosed list in ${buf.toString('latin1').slice(0, 300)}`);
        if (buf[i] === 0x29) {
          i++;
          return list;
        }
        list.push(value());
      }
    }
    if (c === 0x22) {
      i++;
      const out: number[] = [];
      while (i < len && buf[i] !== 0x22) {
        if (buf[i] === 0x5c) i++;
        out.push(buf[i++]);
      }
      i++;
      return Buffer.from(out);
    }
    if (c === 0x7b) {
      const close = buf.indexOf(0x7d, i);
      const n = Number.parseInt(buf.toString('latin1', i + 1, close), 10);
      i = close + 3; // "}\r\n"
      const v = Buffer.from(buf.subarray(i, i + n));
      i += n;
      return v;
    }
    const start = i;
    let depth = 0;
    while (i < len) {
      const d = buf[i];
      if (d === 0x5b) depth++;
      else if (d === 0x5d) depth--;
      else if (depth <= 0 && (d === 0x20 || d === 0x28 || d === 0x29)) break;
      i++;
    }
    if (i === start) throw new Error(`unexpected byte ${c} at ${i} in ${buf.toString('latin1').slice(0, 300)}`);
    const a = buf.toString('latin1', start, i);
    return a.toUpperCase() === 'NIL' ? null : new Atom(a);
  };
  const out: Tok[] = [];
  for (;;) {
    skipSp();
    if (i >= len) return out;
    out.push(value());
  }
}

/** "OK [CODE args] text" → status and code (text dropped). */
function statusOf(rest: string): { status: string; code: string } {
  const m = /^(\S+)(?: \[([^\]]*)\])?/.exec(rest);
  return { status: (m?.[1] ?? rest).toUpperCase(), code: m?.[2] ?? '' };
}

function classify(raw: Buffer): Untagged {
  const head = raw.toString('latin1', 0, Math.min(raw.length, 200));
  const n = /^\* (\d+) (\w+)/.exec(head);
  if (n) {
    const at = 2 + n[1].length + 1 + n[2].length;
    return { num: Number(n[1]), kind: n[2].toUpperCase(), data: parseTokens(raw, at), raw: head };
  }
  const w = /^\* (\w+)/.exec(head);
  const kind = (w?.[1] ?? '').toUpperCase();
  if (['OK', 'NO', 'BAD', 'BYE', 'PREAUTH'].includes(kind)) {
    return { kind, data: [], code: statusOf(raw.toString('latin1', 2)).code, raw: head };
  }
  if (kind === 'CAPABILITY' || kind === 'ID' || kind === 'ENABLED' || kind === 'NAMESPACE') return { kind, data: [], raw: raw.toString('latin1') };
  return { kind, data: parseTokens(raw, 2 + kind.length), raw: head };
}

class Imap {
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: () => void;
  private closed = false;
  private n = 0;
  name = '';
  greeting = '';
  capabilities = new Set<string>();

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      this.waiter?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
    sock.on('error', () => undefined);
  }

  static async open(port: number, name: string): Promise<Imap> {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
      s.once('error', reject);
    });
    const c = new Imap(sock);
    c.name = name;
    c.greeting = (await c.response()).toString('latin1');
    return c;
  }

  private async more(deadline: number): Promise<void> {
    if (this.closed) throw new Error(`${this.name}: connection closed (have ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))})`);
    if (Date.now() > deadline) throw new Error(`${this.name}: timed out (have ${JSON.stringify(this.buf.toString('latin1').slice(0, 200))})`);
    await new Promise<void>((r) => {
      const t = setTimeout(r, 250);
      this.waiter = () => {
        clearTimeout(t);
        this.waiter = undefined;
        r();
      };
    });
  }

  /** One whole response: a line, with any literals it announces. */
  async response(timeoutMs = 15_000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    let pos = 0;
    for (;;) {
      const i = this.buf.indexOf('\r\n', pos);
      if (i < 0) {
        await this.more(deadline);
        continue;
      }
      const tail = this.buf.toString('latin1', Math.max(pos, i - 24), i);
      const lit = /\{(\d+)\+?\}$/.exec(tail);
      if (lit) {
        const end = i + 2 + Number(lit[1]);
        while (this.buf.length < end) await this.more(deadline);
        pos = end;
        continue;
      }
      const out = Buffer.from(this.buf.subarray(0, i));
      this.buf = this.buf.subarray(i + 2);
      return out;
    }
  }

  /** A command; Buffers in `parts` go as synchronizing literals. */
  async command(parts: Array<string | Buffer>, timeoutMs = 15_000): Promise<Reply> {
    const tag = `d${++this.n}`;
    const untagged: Untagged[] = [];
    let line = `${tag} `;
    for (const p of parts) {
      if (typeof p === 'string') {
        line += p;
        continue;
      }
      this.sock.write(`${line}{${p.length}}\r\n`);
      line = '';
      for (;;) {
        const r = await this.response(timeoutMs);
        if (r[0] === 0x2b) break; // "+"
        if (r.subarray(0, tag.length + 1).toString('latin1') === `${tag} `) return { ...statusOf(r.toString('latin1', tag.length + 1)), untagged };
        untagged.push(classify(r));
      }
      this.sock.write(p);
    }
    this.sock.write(`${line}\r\n`);
    for (;;) {
      const r = await this.response(timeoutMs);
      if (r.subarray(0, tag.length + 1).toString('latin1') === `${tag} `) {
        return { ...statusOf(r.toString('latin1', tag.length + 1)), untagged };
      }
      if (r[0] === 0x2a) untagged.push(classify(r));
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

// ------------------------------------------------------------------ showing and normalising values

function show(b: Buffer): string {
  const s = b.toString('utf8');
  if (Buffer.from(s, 'utf8').equals(b)) return s;
  return b.toString('latin1').replace(/[\x80-\xff]/g, (c) => `\\x${c.charCodeAt(0).toString(16)}`);
}

/** IMAP-like text of a value: strings always quoted (JSON escapes), NIL, lists. */
function ser(t: Tok | undefined): string {
  if (t === undefined) return '(absent)';
  if (t === null) return 'NIL';
  if (t instanceof Atom) return t.v;
  if (Buffer.isBuffer(t)) return JSON.stringify(show(t));
  return `(${t.map(ser).join(' ')})`;
}

/** INTERNALDATE with date-day-fixed as two digits: RFC 3501's grammar allows " 5-Jan-2026" and "05-Jan-2026" alike. */
function internalDate(t: Tok | undefined): string {
  return Buffer.isBuffer(t) ? ser(Buffer.from(t.toString('latin1').replace(/^ (\d)-/, '0$1-'), 'latin1')) : ser(t);
}

/** body-fld-lang: a string, or a list of one string, say the same (RFC 3501 9). */
function language(t: Tok | undefined): string {
  return Array.isArray(t) && t.length === 1 && Buffer.isBuffer(t[0]) ? ser(t[0]) : ser(t);
}

const str = (t: Tok | undefined): string | undefined => (t instanceof Atom ? t.v : Buffer.isBuffer(t) ? t.toString('latin1') : undefined);
const upper = (t: Tok | undefined): Tok | undefined => (t instanceof Atom || Buffer.isBuffer(t) ? new Atom(str(t)!.toUpperCase()) : t);

const SYSTEM_FLAGS = new Map(['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '\\Recent'].map((f) => [f.toLowerCase(), f]));

/** A flag list as a set: sorted, system flags in one case. */
function flagList(t: Tok | undefined): string {
  if (!Array.isArray(t)) return ser(t);
  return `(${t.map((f) => str(f) ?? ser(f)).map((f) => SYSTEM_FLAGS.get(f.toLowerCase()) ?? f).sort().join(' ')})`;
}

/** A FETCH response's items by upper-cased name. */
function fetchItems(u: Untagged): Map<string, Tok> {
  const out = new Map<string, Tok>();
  const list = u.data[0];
  if (!Array.isArray(list)) return out;
  for (let i = 0; i + 1 < list.length; i += 2) {
    const k = str(list[i]);
    if (k !== undefined) out.set(k.toUpperCase(), list[i + 1]);
  }
  return out;
}

/** The tagged result: status word and response code; UIDVALIDITY numbers and CAPABILITY lists normalised. */
function tagged(r: Reply): string {
  let code = r.code;
  if (/^CAPABILITY\b/i.test(code)) code = 'CAPABILITY ...';
  code = code.replace(/^(COPYUID|APPENDUID) \d+/i, '$1 <uidvalidity>');
  return code ? `${r.status} [${code}]` : r.status;
}

/** Two byte strings shown so that a difference is readable: whole when short, else around the first differing byte. */
function describePair(a: Tok | undefined, b: Tok | undefined): [string, string] {
  if (!Buffer.isBuffer(a) || !Buffer.isBuffer(b)) return [Buffer.isBuffer(a) ? `${a.length} bytes` : ser(a), Buffer.isBuffer(b) ? `${b.length} bytes` : ser(b)];
  if (a.length <= 240 && b.length <= 240) return [ser(a), ser(b)];
  let off = 0;
  while (off < a.length && off < b.length && a[off] === b[off]) off++;
  const start = Math.max(0, off - 30);
  const ctx = (x: Buffer) => `${x.length} bytes; from byte ${start}: ${ser(x.subarray(start, off + 50))}`;
  return [ctx(a), ctx(b)];
}

// ------------------------------------------------------------------ differences

interface Diff {
  subject: string;
  item: string;
  mailtk: string;
  dovecot: string;
}

interface Known {
  message?: string | string[];
  command?: string;
  item: string;
  mailtk: string;
  dovecot: string;
  /** legitimate, or a bug of one side: for the reader; matching ignores it. */
  verdict?: string;
  why: string;
}

function loadKnown(): Known[] {
  return fs.existsSync(KNOWN_FILE) ? (JSON.parse(fs.readFileSync(KNOWN_FILE, 'utf8')) as Known[]) : [];
}

function knownSubjects(k: Known): string[] {
  if (k.command !== undefined) return [`command: ${k.command}`];
  return Array.isArray(k.message) ? k.message : [k.message ?? ''];
}

const matches = (k: Known, d: Diff) => k.item === d.item && k.mailtk === d.mailtk && k.dovecot === d.dovecot && knownSubjects(k).includes(d.subject);

function render(ds: Diff[]): string {
  return ds.map((d) => `  ${d.subject}  |  ${d.item}\n      mailtk:  ${d.mailtk}\n      dovecot: ${d.dovecot}`).join('\n');
}

function asKnown(d: Diff): Known {
  const subj = d.subject.startsWith('command: ') ? { command: d.subject.slice(9) } : { message: d.subject };
  return { ...subj, item: d.item, mailtk: d.mailtk, dovecot: d.dovecot, verdict: '', why: '' };
}

class Diffs {
  list: Diff[] = [];
  add(subject: string, item: string, mailtk: string, dovecot: string): void {
    if (mailtk !== dovecot) this.list.push({ subject, item, mailtk, dovecot });
  }
  /** Compare two flat records key by key. */
  records(subject: string, a: Map<string, string>, b: Map<string, string>): void {
    const keys = [...new Set([...a.keys(), ...b.keys()])];
    for (const k of keys) this.add(subject, k, a.get(k) ?? '(none)', b.get(k) ?? '(none)');
  }
}

// ------------------------------------------------------------------ ENVELOPE and BODYSTRUCTURE, field by field

const ENVELOPE_FIELDS = ['date', 'subject', 'from', 'sender', 'reply-to', 'to', 'cc', 'bcc', 'in-reply-to', 'message-id'];

function compareEnvelope(d: Diffs, subject: string, prefix: string, a: Tok | undefined, b: Tok | undefined): void {
  if (!Array.isArray(a) || !Array.isArray(b)) {
    d.add(subject, `${prefix}ENVELOPE`, ser(a), ser(b));
    return;
  }
  ENVELOPE_FIELDS.forEach((f, i) => d.add(subject, `${prefix}ENVELOPE ${f}`, ser(a[i]), ser(b[i])));
  if (a.length !== b.length) d.add(subject, `${prefix}ENVELOPE length`, String(a.length), String(b.length));
}

const isMultipart = (t: Tok | undefined): boolean => Array.isArray(t) && Array.isArray(t[0]);

/** Parameter list with names upper-cased (RFC 2045 5.1: parameter names are not case sensitive). */
function params(t: Tok | undefined): string {
  if (!Array.isArray(t)) return ser(t);
  const out: Tok[] = [];
  for (let i = 0; i < t.length; i += 2) out.push(upper(t[i]) ?? null, t[i + 1]);
  return ser(out);
}

/** Disposition: (type params) with the type and parameter names upper-cased (RFC 2183 2). */
function disposition(t: Tok | undefined): string {
  if (!Array.isArray(t)) return ser(t);
  return `(${ser(upper(t[0]))} ${params(t[1])}${t.length > 2 ? ' ' + t.slice(2).map(ser).join(' ') : ''})`;
}

function children(t: Tok[]): Tok[] {
  const out: Tok[] = [];
  for (const x of t) {
    if (!Array.isArray(x)) break;
    out.push(x);
  }
  return out;
}

const isMessage = (t: Tok[]) => str(t[0])?.toUpperCase() === 'MESSAGE' && str(t[1])?.toUpperCase() === 'RFC822';
const isText = (t: Tok[]) => str(t[0])?.toUpperCase() === 'TEXT';

/**
 * One body (part) of both structures, then its children. `label` names the
 * node ("top", "2", "2.1"); `prefix` is what its children's numbers start with.
 */
function compareBody(d: Diffs, subject: string, label: string, prefix: string, a: Tok | undefined, b: Tok | undefined): void {
  const item = (f: string) => `BODYSTRUCTURE ${label} ${f}`;
  if (!Array.isArray(a) || !Array.isArray(b)) {
    d.add(subject, item('structure'), ser(a), ser(b));
    return;
  }
  const shape = (t: Tok[]) => (isMultipart(t) ? 'multipart' : ser(t.slice(0, 2)));
  if (isMultipart(a) !== isMultipart(b)) {
    d.add(subject, item('shape'), shape(a), shape(b));
    return;
  }
  if (isMultipart(a) && isMultipart(b)) {
    const ca = children(a);
    const cb = children(b);
    if (ca.length !== cb.length) d.add(subject, item('number of parts'), String(ca.length), String(cb.length));
    for (let i = 0; i < Math.min(ca.length, cb.length); i++) compareBody(d, subject, `${prefix}${i + 1}`, `${prefix}${i + 1}.`, ca[i], cb[i]);
    const ra = a.slice(ca.length);
    const rb = b.slice(cb.length);
    d.add(subject, item('subtype'), ser(upper(ra[0])), ser(upper(rb[0])));
    d.add(subject, item('params'), params(ra[1]), params(rb[1]));
    d.add(subject, item('disposition'), disposition(ra[2]), disposition(rb[2]));
    d.add(subject, item('language'), language(ra[3]), language(rb[3]));
    d.add(subject, item('location'), ser(ra[4]), ser(rb[4]));
    if (ra.length > 5 || rb.length > 5) d.add(subject, item('more extension data'), ser(ra.slice(5)), ser(rb.slice(5)));
    return;
  }
  d.add(subject, item('type'), `${ser(upper(a[0]))}/${ser(upper(a[1]))}`, `${ser(upper(b[0]))}/${ser(upper(b[1]))}`);
  d.add(subject, item('params'), params(a[2]), params(b[2]));
  d.add(subject, item('id'), ser(a[3]), ser(b[3]));
  d.add(subject, item('description'), ser(a[4]), ser(b[4]));
  d.add(subject, item('encoding'), ser(upper(a[5])), ser(upper(b[5])));
  d.add(subject, item('size'), ser(a[6]), ser(b[6]));
  let ea = 7;
  let eb = 7;
  if (isMessage(a) && isMessage(b)) {
    compareEnvelope(d, subject, `BODYSTRUCTURE ${label} `, a[7], b[7]);
    const inner = `${prefix}1`;
    compareBody(d, subject, isMultipart(a[8]) || isMultipart(b[8]) ? `${label} (enclosed)` : inner, isMultipart(a[8]) ? prefix : `${inner}.`, a[8], b[8]);
    d.add(subject, item('lines'), ser(a[9]), ser(b[9]));
    ea = eb = 10;
  } else {
    if (isText(a)) ea = 8;
    if (isText(b)) eb = 8;
    if (isText(a) || isText(b)) d.add(subject, item('lines'), isText(a) ? ser(a[7]) : '(none)', isText(b) ? ser(b[7]) : '(none)');
  }
  d.add(subject, item('md5'), ser(a[ea]), ser(b[eb]));
  d.add(subject, item('disposition'), disposition(a[ea + 1]), disposition(b[eb + 1]));
  d.add(subject, item('language'), language(a[ea + 2]), language(b[eb + 2]));
  d.add(subject, item('location'), ser(a[ea + 3]), ser(b[eb + 3]));
  if (a.length > ea + 4 || b.length > eb + 4) d.add(subject, item('more extension data'), ser(a.slice(ea + 4)), ser(b.slice(eb + 4)));
}

/** Section numbers a BODYSTRUCTURE has (RFC 3501 6.4.5): N, N.MIME, and N.HEADER / N.TEXT / N.1... inside message/rfc822. */
function sectionsOf(bs: Tok | undefined): string[] {
  const out: string[] = [];
  const part = (t: Tok | undefined, n: string) => {
    if (!Array.isArray(t)) return;
    if (isMultipart(t)) {
      children(t).forEach((c, i) => {
        out.push(`${n}.${i + 1}`, `${n}.${i + 1}.MIME`);
        part(c, `${n}.${i + 1}`);
      });
    } else if (isMessage(t)) {
      out.push(`${n}.HEADER`, `${n}.TEXT`);
      const inner = t[8];
      if (isMultipart(inner)) part(inner, n);
      else {
        out.push(`${n}.1`);
        part(inner, `${n}.1`);
      }
    }
  };
  if (isMultipart(bs)) {
    children(bs as Tok[]).forEach((c, i) => {
      out.push(`${i + 1}`, `${i + 1}.MIME`);
      part(c, `${i + 1}`);
    });
  } else if (Array.isArray(bs)) {
    out.push('1', '1.MIME');
    part(bs, '1');
  }
  return out;
}

// ------------------------------------------------------------------ untagged responses of a command, flattened

const CHATTER_CODES = /^(UIDVALIDITY|CLOSED|HIGHESTMODSEQ|NOMODSEQ|CAPABILITY)\b/i;

/** LIST attributes that are the server's hints, not the mailbox's state (RFC 3501 7.2.2 \Marked/\Unmarked; RFC 3348 children). */
const HINT_ATTRS = new Set(['\\marked', '\\unmarked', '\\haschildren', '\\hasnochildren']);

function flatten(r: Reply): Map<string, string> {
  const out = new Map<string, string>();
  out.set('tagged', tagged(r));
  const expunged: number[] = [];
  for (const u of r.untagged) {
    switch (u.kind) {
      case 'EXISTS':
      case 'RECENT':
        out.set(u.kind, String(u.num));
        break;
      case 'EXPUNGE':
        expunged.push(u.num!);
        break;
      case 'FETCH':
        for (const [k, v] of fetchItems(u)) out.set(`FETCH ${u.num} ${k}`, k === 'FLAGS' ? flagList(v) : k === 'INTERNALDATE' ? internalDate(v) : ser(v));
        break;
      case 'SEARCH':
        out.set('SEARCH', u.data.map((t) => str(t)).map(Number).sort((x, y) => x - y).join(' '));
        break;
      case 'LIST':
      case 'LSUB': {
        const [attrs, , name] = u.data;
        const shown = Array.isArray(attrs) ? attrs.map((x) => str(x) ?? '').filter((x) => !HINT_ATTRS.has(x.toLowerCase())).sort().join(' ') : ser(attrs);
        out.set(`${u.kind} ${str(name)}`, `(${shown}) ${ser(u.data[1])}`);
        break;
      }
      case 'STATUS': {
        const list = u.data[1];
        if (Array.isArray(list)) for (let i = 0; i + 1 < list.length; i += 2) out.set(`STATUS ${str(u.data[0])} ${str(list[i])?.toUpperCase()}`, ser(list[i + 1]));
        break;
      }
      case 'FLAGS':
        out.set('FLAGS', flagList(u.data[0]));
        break;
      case 'OK':
      case 'NO':
      case 'BAD':
        if (u.code && !CHATTER_CODES.test(u.code)) {
          const name = u.code.split(' ')[0].toUpperCase();
          const rest = u.code.slice(name.length + 1);
          out.set(`untagged ${u.kind} [${name}]`, name === 'PERMANENTFLAGS' ? flagList(parseTokens(Buffer.from(rest, 'latin1'))[0]) : rest);
        }
        break;
      default:
        // CAPABILITY, ID, ENABLED, NAMESPACE, BYE: server-specific
        break;
    }
  }
  if (expunged.length) out.set('EXPUNGE', expunged.join(' '));
  return out;
}

// ------------------------------------------------------------------ the two servers

async function startImapDovecot(mbox: Buffer, uid: number, gid: number): Promise<DovecotServer> {
  const D = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-dovecot-diff-'));
  fs.chmodSync(D, 0o755);
  for (const sub of ['run', 'state', 'spool', `home/${USER}/mail`]) fs.mkdirSync(path.join(D, sub), { recursive: true });
  fs.writeFileSync(path.join(D, 'passwd'), `${USER}:{PLAIN}${PASSWORD}:${uid}:${gid}::${D}/home/${USER}::\n`);
  const inbox = path.join(D, 'spool', USER);
  fs.writeFileSync(inbox, mbox, { mode: 0o600 });
  for (const p of [path.join(D, 'home', USER), path.join(D, 'home', USER, 'mail'), path.join(D, 'spool'), inbox]) fs.chownSync(p, uid, gid);
  const conf = (port: number) => `base_dir = ${D}/run
state_dir = ${D}/state
log_path = ${D}/log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_fsync = never
mail_location = mbox:${D}/home/${USER}/mail:INBOX=${inbox}
passdb {
  driver = passwd-file
  args = ${D}/passwd
}
userdb {
  driver = passwd-file
  args = ${D}/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = ${port}
  }
  inet_listener imaps {
    port = 0
  }
}
`;
  return startDovecot(D, conf, '* OK');
}

// ------------------------------------------------------------------ the test

/** SEARCH keys: label, then the command (Buffers go as literals, for CHARSET UTF-8). */
const u8 = (s: string) => Buffer.from(s, 'utf8');
const SEARCHES: Array<[string, Array<string | Buffer>]> = [
  ['FROM address', ['SEARCH FROM alice@example.org']],
  ['FROM display name', ['SEARCH FROM "Alice Example"']],
  ['FROM encoded-word display name, decoded', ['SEARCH CHARSET UTF-8 FROM ', u8('André')]],
  ['FROM 8-bit display name', ['SEARCH CHARSET UTF-8 FROM ', u8('Jürgen Müller')]],
  ['TO address', ['SEARCH TO bob@example.net']],
  ['TO empty group name', ['SEARCH TO undisclosed-recipients']],
  ['CC group member', ['SEARCH CC ann@example.org']],
  ['CC group name', ['SEARCH CC Friends']],
  ['BCC', ['SEARCH BCC eve@example.com']],
  ['TO route address', ['SEARCH TO joe@example.com']],
  ['SUBJECT word', ['SEARCH SUBJECT nested']],
  ['SUBJECT case-insensitive', ['SEARCH SUBJECT "RFC 2231 PARAMETERS"']],
  ['SUBJECT across a fold', ['SEARCH SUBJECT "folded subject tail"']],
  ['SUBJECT encoded word, decoded', ['SEARCH CHARSET UTF-8 SUBJECT ', u8('aus Köln')]],
  ['SUBJECT encoded words joined', ['SEARCH CHARSET UTF-8 SUBJECT ', u8('Köln und café')]],
  ['SUBJECT raw 8-bit', ['SEARCH CHARSET UTF-8 SUBJECT ', u8('Grüße aus Köln (8-bit')]],
  ['SUBJECT empty string', ['SEARCH SUBJECT ""']],
  ['BODY word', ['SEARCH BODY periwinkle']],
  ['BODY upper case', ['SEARCH BODY PERIWINKLE']],
  ['BODY substring', ['SEARCH BODY eriwink']],
  ['BODY phrase', ['SEARCH BODY "desk of the editor"']],
  ['BODY in the innermost nested message', ['SEARCH BODY capybara']],
  ['BODY header field of an attached message', ['SEARCH BODY "the innermost message"']],
  ['BODY word split by a QP soft line break', ['SEARCH BODY marmalade']],
  ['BODY word inside base64 text', ['SEARCH BODY quokka']],
  ['BODY word inside top-level message/rfc822', ['SEARCH BODY ocelot']],
  ['BODY word only inside a QP attached message', ['SEARCH BODY xylophone']],
  ['BODY raw QP form of that word', ['SEARCH BODY x=79lophone']],
  ['BODY 8-bit word', ['SEARCH CHARSET UTF-8 BODY ', u8('zwölf')]],
  ['BODY QP UTF-8 word', ['SEARCH CHARSET UTF-8 BODY ', u8('déjà vu')]],
  ['BODY QP ISO-8859-1 word in an attached message', ['SEARCH CHARSET UTF-8 BODY ', u8('Noël')]],
  ['BODY base64 UTF-8 word', ['SEARCH CHARSET UTF-8 BODY ', u8('Ça va')]],
  ['BODY last line without newline', ['SEARCH BODY wombat']],
  ['BODY "From " body line', ['SEARCH BODY "From the desk"']],
  ['BODY ">From " body line', ['SEARCH BODY ">From a line that was quoted"']],
  ['BODY word in a header only', ['SEARCH BODY replies@example.org']],
  ['BODY inside an HTML part', ['SEARCH BODY "HTML</b> version"']],
  ['BODY word of a base64 attachment, encoded form', ['SEARCH BODY UVFRUVFR']],
  ['TEXT word in the body', ['SEARCH TEXT periwinkle']],
  ['TEXT word in a header', ['SEARCH TEXT replies@example.org']],
  ['TEXT word in a nested message', ['SEARCH TEXT capybara']],
  ['HEADER field with a value', ['SEARCH HEADER X-Corpus long']],
  ['HEADER any value', ['SEARCH HEADER X-Corpus ""']],
  ['HEADER word in a >998-octet line', ['SEARCH HEADER X-Long-Header token120-abcdef']],
  ['HEADER Content-Type', ['SEARCH HEADER Content-Type message/rfc822']],
  ['HEADER Message-ID present', ['SEARCH HEADER Message-ID ""']],
  ['HEADER absent field', ['SEARCH HEADER X-No-Such-Field ""']],
  ['HEADER hidden mbox field Status', ['SEARCH HEADER Status ""']],
  ['LARGER', ['SEARCH LARGER 2000']],
  ['SMALLER', ['SEARCH SMALLER 600']],
  ['LARGER and SMALLER', ['SEARCH LARGER 900 SMALLER 1500']],
  ['SENTBEFORE', ['SEARCH SENTBEFORE 10-Jan-2026']],
  ['SENTSINCE', ['SEARCH SENTSINCE 15-Jan-2026']],
  ['SENTON', ['SEARCH SENTON 8-Jan-2026']],
  ['BEFORE (internal date)', ['SEARCH BEFORE 10-Jan-2026']],
  ['SINCE (internal date)', ['SEARCH SINCE 25-Jan-2026']],
  ['ON (internal date)', ['SEARCH ON 6-Jan-2026']],
  ['OR', ['SEARCH OR SUBJECT base64 FROM editor@example.org']],
  ['NOT', ['SEARCH NOT BODY the']],
  ['SEEN (Status: R in the mbox)', ['SEARCH SEEN']],
  ['UNSEEN', ['SEARCH UNSEEN']],
  ['NEW', ['SEARCH NEW']],
  ['ALL', ['SEARCH ALL']],
  ['UID SEARCH', ['UID SEARCH UID 3:7 BODY the']],
  ['sequence set', ['SEARCH 2,4:6 ALL']],
];

describe('IMAP differential: mailtk beside Dovecot on one mbox', { skip, timeout: 120_000 }, () => {
  let corpus: CorpusMessage[] = [];
  let sb: Sandbox | undefined;
  let daemon: RunningDaemon | undefined;
  let dovecot: DovecotServer | undefined;
  let mt: Imap;
  let dc: Imap;
  const known = loadKnown();
  const found: Diff[] = [];
  const t0 = Date.now();

  before(async () => {
    corpus = loadCorpus();
    const mbox = mboxrd(corpus);
    sb = makeSandbox({ users: [USER] });
    const u = sb.users[USER];
    const r = run(sb, 'mailpasswd', [USER], `${PASSWORD}\n`);
    assert.equal(r.status, 0, `mailpasswd: ${r.stderr}`);
    const mailGid = Number(spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2]) || u.gid;
    fs.writeFileSync(sb.mbox(USER), mbox, { mode: 0o600 });
    fs.chownSync(sb.mbox(USER), u.uid, mailGid);
    daemon = await startDaemon(sb, ['-bD', '-q1h']);
    dovecot = await startImapDovecot(mbox, u.uid, u.gid);
  });

  after(async () => {
    mt?.close();
    dc?.close();
    if (dovecot) {
      await dovecot.stop(true);
      if (process.env.IMAP_DIFF_OUT) fs.writeFileSync(`${process.env.IMAP_DIFF_OUT}.dovecot.log`, dovecot.log());
      fs.rmSync(dovecot.dir, { recursive: true, force: true });
    }
    await daemon?.stop();
    sb?.cleanup();
    if (process.env.IMAP_DIFF_OUT) fs.writeFileSync(process.env.IMAP_DIFF_OUT, JSON.stringify(found.map(asKnown), null, 2) + '\n');
    process.stderr.write(
      `imap-dovecot-diff: ${corpus.length} messages, ${found.length} differences (${found.filter((f) => known.some((k) => matches(k, f))).length} listed), ` +
        `${timing.n} commands each: mailtk ${Math.round(timing.mt)} ms, Dovecot ${Math.round(timing.dc)} ms; ${((Date.now() - t0) / 1000).toFixed(1)} s in all\n`,
    );
  });

  const timing = { mt: 0, dc: 0, n: 0 };
  const timed = async (c: Imap, parts: Array<string | Buffer>, k: 'mt' | 'dc') => {
    const t = performance.now();
    try {
      const r = await c.command(parts);
      timing[k] += performance.now() - t;
      return r;
    } catch (e) {
      const log = k === 'dc' ? dovecot!.log() : `${daemon!.stderr()}${fs.existsSync(sb!.log) ? fs.readFileSync(sb!.log, 'utf8') : ''}`;
      throw new Error(`${(e as Error).message} during ${parts.map((p) => (typeof p === 'string' ? p : '{literal}')).join('')}; log: ${log.split('\n').slice(-6).join('\n')}`);
    }
  };
  const both = (parts: Array<string | Buffer>) => (timing.n++, Promise.all([timed(mt, parts, 'mt'), timed(dc, parts, 'dc')]));

  /** New sessions on both servers, logged in (each test starts from its own sessions). */
  async function fresh(): Promise<void> {
    mt?.close();
    dc?.close();
    [mt, dc] = await Promise.all([Imap.open(daemon!.ports.imap, 'mailtk'), Imap.open(dovecot!.port, 'dovecot')]);
    for (const [c, k] of [[mt, 'mt'], [dc, 'dc']] as const) {
      const login = await timed(c, [`LOGIN ${USER} ${PASSWORD}`], k);
      assert.equal(login.status, 'OK', `${c.name} LOGIN: ${login.status} ${login.code}`);
      const cap = await timed(c, ['CAPABILITY'], k);
      const line = cap.untagged.find((x) => x.kind === 'CAPABILITY');
      for (const w of line?.raw.split(' ').slice(2) ?? []) c.capabilities.add(w.toUpperCase());
    }
  }

  function judge(d: Diffs): void {
    found.push(...d.list);
    const unknown = d.list.filter((x) => !known.some((k) => matches(k, x)));
    if (unknown.length) {
      assert.fail(
        `${unknown.length} difference(s) between mailtk and Dovecot not listed in test/corpus/known-differences.json:\n${render(unknown)}\n` +
          `(as JSON, to list with the RFC text that justifies each:)\n${JSON.stringify(unknown.map(asKnown), null, 2)}`,
      );
    }
  }

  test('SELECT INBOX: both see every corpus message', async () => {
    const d = new Diffs();
    await fresh();
    const [a, b] = await both(['SELECT INBOX']);
    const fa = flatten(a);
    const fb = flatten(b);
    assert.equal(fa.get('EXISTS'), String(corpus.length), `mailtk sees every message (${tagged(a)})`);
    assert.equal(fb.get('EXISTS'), String(corpus.length), `Dovecot sees every message (${tagged(b)})`);
    d.records('command: SELECT INBOX', fa, fb);
    judge(d);
  });

  // Before the FETCHes: Dovecot 2.3.19 panics (istream-header-filter.c:666) on SEARCH BODY once
  // BODY[1.MIME] of a message with no empty line after its header has been fetched.
  test('SEARCH keys', async () => {
    const d = new Diffs();
    await fresh();
    await both(['EXAMINE INBOX']);
    for (const [label, parts] of SEARCHES) {
      const [a, b] = await both(parts);
      const fa = flatten(a);
      const fb = flatten(b);
      const text = parts.map((p) => (typeof p === 'string' ? p : show(p))).join('');
      d.add(`command: ${text}`, label, `${fa.get('tagged')} ${fa.get('SEARCH') ?? ''}`.trim(), `${fb.get('tagged')} ${fb.get('SEARCH') ?? ''}`.trim());
    }
    judge(d);
  });

  test('every message: FETCH items, ENVELOPE, BODYSTRUCTURE and BODY[] sections', async () => {
    const d = new Diffs();
    await fresh();
    await both(['EXAMINE INBOX']);
    for (let i = 0; i < corpus.length; i++) {
      const seq = i + 1;
      const name = corpus[i].name;
      const [a, b] = await both([`FETCH ${seq} (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)`]);
      d.add(name, 'FETCH status', tagged(a), tagged(b));
      const ia = new Map<string, Tok>();
      const ib = new Map<string, Tok>();
      for (const u of a.untagged) if (u.kind === 'FETCH' && u.num === seq) for (const [k, v] of fetchItems(u)) ia.set(k, v);
      for (const u of b.untagged) if (u.kind === 'FETCH' && u.num === seq) for (const [k, v] of fetchItems(u)) ib.set(k, v);
      d.add(name, 'UID', ser(ia.get('UID')), ser(ib.get('UID')));
      d.add(name, 'FLAGS', flagList(ia.get('FLAGS')), flagList(ib.get('FLAGS')));
      d.add(name, 'INTERNALDATE', internalDate(ia.get('INTERNALDATE')), internalDate(ib.get('INTERNALDATE')));
      d.add(name, 'RFC822.SIZE', ser(ia.get('RFC822.SIZE')), ser(ib.get('RFC822.SIZE')));
      compareEnvelope(d, name, '', ia.get('ENVELOPE'), ib.get('ENVELOPE'));
      compareBody(d, name, 'top', '', ia.get('BODYSTRUCTURE'), ib.get('BODYSTRUCTURE'));
      const sections = ['', 'HEADER', 'TEXT', 'HEADER.FIELDS (From Subject X-Corpus)', 'HEADER.FIELDS.NOT (To Cc Date)'];
      for (const s of [...sectionsOf(ia.get('BODYSTRUCTURE')), ...sectionsOf(ib.get('BODYSTRUCTURE'))]) if (!sections.includes(s)) sections.push(s);
      const fetches = [...sections.map((s) => `BODY.PEEK[${s}]`), 'BODY.PEEK[]<0.100>', 'BODY.PEEK[TEXT]<7.30>'];
      // All sections in one FETCH; one FETCH a section when either server refuses the batch.
      const [x, y] = await both([`FETCH ${seq} (${fetches.join(' ')})`]);
      const batched = x.status === 'OK' && y.status === 'OK';
      for (const f of fetches) {
        const item = f.replace('.PEEK', '');
        const key = item.replace(/<(\d+)\.\d+>$/, '<$1>').toUpperCase();
        const [rx, ry] = batched ? [x, y] : await both([`FETCH ${seq} (${f})`]);
        if (rx.status !== 'OK' || ry.status !== 'OK') d.add(name, `${item} status`, tagged(rx), tagged(ry));
        const pick = (r: Reply) => {
          for (const u of r.untagged) if (u.kind === 'FETCH' && u.num === seq) for (const [k, v] of fetchItems(u)) if (k.replace(/\s+/g, ' ') === key) return v;
          return undefined;
        };
        const [va, vb] = [pick(rx), pick(ry)];
        const same = Buffer.isBuffer(va) && Buffer.isBuffer(vb) ? va.equals(vb) : ser(va) === ser(vb);
        if (!same) {
          const [sa, sb2] = describePair(va, vb);
          d.list.push({ subject: name, item, mailtk: sa, dovecot: sb2 });
        }
      }
    }
    judge(d);
  });

  test('state-changing commands on copies: COPY, STORE, EXPUNGE, MOVE, APPEND, RENAME', async () => {
    const d = new Diffs();
    await fresh();
    await both(['SELECT INBOX']);
    const move = mt.capabilities.has('MOVE') && dc.capabilities.has('MOVE');
    d.add('command: CAPABILITY', 'MOVE advertised', String(mt.capabilities.has('MOVE')), String(dc.capabilities.has('MOVE')));
    const appended = Buffer.from(
      [
        'Date: Thu, 05 Feb 2026 10:00:00 +0000',
        'From: Appender <append@example.org>',
        'To: differ@example.org',
        'Subject: appended by the test',
        'Message-ID: <appended@example.org>',
        '',
        'From the first body line of an appended message.',
        '>From a quoted one.',
        'The end.',
        '',
      ].join('\r\n'),
    );
    const steps: Array<[string, Array<string | Buffer>]> = [
      ['CREATE Scratch', ['CREATE Scratch']],
      ['CREATE Scratch again', ['CREATE Scratch']],
      ['COPY 1:5 Scratch', ['COPY 1:5 Scratch']],
      ['COPY to a missing mailbox', ['COPY 1 Missing']],
      ['SELECT Scratch', ['SELECT Scratch']],
      ['FETCH after COPY', ['FETCH 1:* (UID FLAGS RFC822.SIZE ENVELOPE)']],
      ['STORE +FLAGS', ['STORE 1:2 +FLAGS (\\Flagged $Label1)']],
      ['STORE -FLAGS', ['STORE 2 -FLAGS (\\Flagged)']],
      ['STORE FLAGS.SILENT', ['STORE 3 FLAGS.SILENT (\\Seen \\Deleted)']],
      ['UID STORE +FLAGS', ['UID STORE 4 +FLAGS (\\Answered)']],
      ['FETCH after STORE', ['FETCH 1:* (UID FLAGS)']],
      ['SEARCH KEYWORD', ['SEARCH KEYWORD $Label1']],
      ['SEARCH DELETED', ['SEARCH DELETED']],
      ['UID SEARCH FLAGGED', ['UID SEARCH FLAGGED']],
      ['EXPUNGE', ['EXPUNGE']],
      ['FETCH after EXPUNGE', ['FETCH 1:* (UID FLAGS ENVELOPE)']],
      ['CREATE Other', ['CREATE Other']],
      ...(move
        ? ([
            ['MOVE 1 Other', ['MOVE 1 Other']],
            ['FETCH after MOVE', ['FETCH 1:* (UID FLAGS)']],
          ] as Array<[string, Array<string | Buffer>]>)
        : []),
      ['STATUS Other', ['STATUS Other (MESSAGES RECENT UIDNEXT UNSEEN)']],
      ['APPEND', ['APPEND Scratch (\\Seen $Appended) "05-Feb-2026 10:00:00 +0000" ', appended]],
      ['FETCH the appended message', ['FETCH * (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY.PEEK[])']],
      ['APPEND to a missing mailbox', ['APPEND Missing ', Buffer.from('Subject: x\r\n\r\ny\r\n')]],
      ['CLOSE', ['CLOSE']],
      ['RENAME Scratch Renamed', ['RENAME Scratch Renamed']],
      ['RENAME a missing mailbox', ['RENAME Missing Elsewhere']],
      ['LIST after RENAME', ['LIST "" "*"']],
      ['STATUS Renamed', ['STATUS Renamed (MESSAGES RECENT UIDNEXT UNSEEN)']],
      ['SELECT Scratch after RENAME', ['SELECT Scratch']],
      ['SELECT Renamed', ['SELECT Renamed']],
      ['FETCH after RENAME', ['FETCH 1:* (UID FLAGS ENVELOPE)']],
      ['FETCH beyond the last message', ['FETCH 99 (FLAGS)']],
      ['SELECT Other', ['SELECT Other']],
      ['FETCH in Other', ['FETCH 1:* (UID FLAGS ENVELOPE)']],
      ['EXAMINE INBOX', ['EXAMINE INBOX']],
      ['STORE in a read-only mailbox', ['STORE 1 +FLAGS (\\Flagged)']],
      ['DELETE Other', ['DELETE Other']],
      ['LIST after DELETE', ['LIST "" "*"']],
    ];
    // LIST: the mailboxes this test makes, renames and deletes, one by one; any
    // others (a server's own special-use folders, say) as one list of names.
    const ours = new Set(['INBOX', 'Scratch', 'Renamed', 'Other', 'Missing', 'Elsewhere'].map((n) => `LIST ${n}`));
    const others = (f: Map<string, string>) => {
      const names = [...f.keys()].filter((k) => k.startsWith('LIST ') && !ours.has(k));
      for (const k of names) f.delete(k);
      if (names.length) f.set('LIST mailboxes the test did not make', names.map((k) => k.slice(5)).sort().join(' '));
      return f;
    };
    for (const [label, parts] of steps) {
      const [a, b] = await both(parts);
      d.records(`command: ${label}`, others(flatten(a)), others(flatten(b)));
    }
    judge(d);
  });

  // RFC 7162 3.1.5: a MODSEQ key in SEARCH or SORT adds (MODSEQ n) to the answer; RFC 4731 3.2
  // for ESEARCH. The two servers number mod-sequences their own way, so each is asked with its
  // own value of message 2's MODSEQ, and each n in an answer is shown as the messages that have it.
  // Dovecot 2.3 does not offer IMAP4rev2 (recorded below): these are compared as IMAP4rev1.
  test('CONDSTORE: MODSEQ in SEARCH, ESEARCH and SORT answers', async () => {
    const d = new Diffs();
    await fresh();
    d.add('command: CAPABILITY', 'IMAP4rev2 advertised', String(mt.capabilities.has('IMAP4REV2')), String(dc.capabilities.has('IMAP4REV2')));
    await both(['EXAMINE INBOX']);
    await both(['CREATE Modseq']);
    await both(['COPY 1:6 Modseq']);
    await both(['SELECT Modseq (CONDSTORE)']);
    for (const st of ['STORE 2 +FLAGS (\\Flagged)', 'STORE 4 +FLAGS (\\Seen)', 'STORE 5 +FLAGS ($Label1)']) await both([st]);
    const modseqs = async (c: Imap, k: 'mt' | 'dc') => {
      const m = new Map<number, string>();
      for (const u of (await timed(c, ['FETCH 1:* (MODSEQ)'], k)).untagged) if (u.kind === 'FETCH') m.set(u.num!, /MODSEQ \((\d+)\)/.exec(u.raw)?.[1] ?? '');
      return m;
    };
    const [ma, mb] = await Promise.all([modseqs(mt, 'mt'), modseqs(dc, 'dc')]);
    const shown = (r: Reply, m: Map<number, string>) =>
      [
        r.status,
        ...r.untagged
          .filter((u) => ['SEARCH', 'ESEARCH', 'SORT'].includes(u.kind))
          .map((u) => u.raw.replace(/\(TAG "[^"]*"\)/, '(TAG)').replace(/MODSEQ (\d+)/, (_x, n: string) => `MODSEQ of ${[...m].filter(([, v]) => v === n).map(([s]) => s).join(',') || n}`)),
      ].join(' | ');
    const commands = [
      'SEARCH MODSEQ {M}',
      'UID SEARCH MODSEQ {M} NOT 4',
      'SEARCH RETURN (MIN) MODSEQ {M}',
      'SEARCH RETURN (MAX) MODSEQ {M}',
      'SEARCH RETURN (MIN MAX) MODSEQ {M} NOT 5',
      'SEARCH RETURN (COUNT) MODSEQ {M}',
      'UID SEARCH RETURN (ALL) MODSEQ {M}',
      'SORT (REVERSE ARRIVAL) UTF-8 MODSEQ {M}',
      'UID SORT (ARRIVAL) UTF-8 MODSEQ {M} NOT 4',
      'SEARCH MODSEQ 9000000000000000000',
      'SORT (ARRIVAL) UTF-8 MODSEQ 9000000000000000000',
      'SORT (ARRIVAL) UTF-8 2:3',
    ];
    for (const cmd of commands) {
      timing.n++;
      const [a, b] = await Promise.all([timed(mt, [cmd.replace('{M}', ma.get(2) ?? '')], 'mt'), timed(dc, [cmd.replace('{M}', mb.get(2) ?? '')], 'dc')]);
      d.add(`command: ${cmd}`, 'answer', shown(a, ma), shown(b, mb));
      assert.ok(a.status === 'OK' && b.status === 'OK', `${cmd}: mailtk ${tagged(a)}, Dovecot ${tagged(b)}`);
      // The stores raised 2, 4 and 5 above the copies, 5 last: both servers must say so, not just agree.
      if (cmd === 'SEARCH MODSEQ {M}') for (const [r, m] of [[a, ma], [b, mb]] as const) assert.equal(shown(r, m), 'OK | * SEARCH 2 4 5 (MODSEQ of 5)');
    }
    await both(['CLOSE']);
    await both(['DELETE Modseq']);
    judge(d);
  });

  test('every listed difference still occurs', () => {
    const present = new Set(corpus.map((m) => m.name));
    const stale = known.filter((k) => {
      const subjects = knownSubjects(k).filter((s) => s.startsWith('command: ') || present.has(s));
      return subjects.length > 0 && !subjects.every((s) => found.some((f) => f.subject === s && matches(k, f)));
    });
    assert.deepEqual(
      stale.map((k) => `${knownSubjects(k).join(', ')} | ${k.item} | mailtk ${k.mailtk} | dovecot ${k.dovecot}`),
      [],
      'entries of test/corpus/known-differences.json that no longer occur (fixed, or changed): remove or update them',
    );
    assert.ok(Date.now() - t0 < 90_000, `the comparison took ${Date.now() - t0} ms`);
  });
});
