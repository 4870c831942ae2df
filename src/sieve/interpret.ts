// Running a compiled Sieve script against one message: the tests (RFC 5228 5,
// envelope, body RFC 5173, relational RFC 5231, imap4flags RFC 5232 hasflag),
// the comparators i;ascii-casemap, i;octet and i;ascii-numeric, the match
// types :is, :contains, :matches, :regex, :count and :value, and the actions,
// gathered into one Outcome with the implicit keep settled (RFC 5228 2.10.2).
// Pure: the message and envelope in, the outcome out; nothing is delivered
// here (deliver.ts does that with the user's identity). A runtime error (an
// incompatible pair of actions, a bad regex) is a SieveError with the line.

import { parseAddressList, splitAddress } from '../message/address.ts';
import { getAll, getHeader, type HeaderField, splitMessage } from '../message/headers.ts';
import { paramValue, parseParams } from '../message/mime-params.ts';
import type { Node } from './check.ts';
import { SieveError } from './parse.ts';

export interface SieveMessage {
  headers: readonly HeaderField[];
  body: Buffer;
  size: number;
  envelope: { from: string; to: string };
}

export interface VacationAction {
  reason: string;
  days?: number;
  subject?: string;
  from?: string;
  addresses: string[];
  mime: boolean;
  handle?: string;
}

export interface Outcome {
  /** Copies for INBOX (the implicit or explicit keep), with their IMAP flags. */
  keep?: { flags: string[] };
  fileinto: Array<{ folder: string; flags: string[] }>;
  redirect: string[];
  reject?: { reason: string; ereject: boolean };
  vacation?: VacationAction;
  discarded: boolean;
}

/** RFC 5228 4.2: implementations limit redirects per message (Pigeonhole's default is 4). */
const MAX_REDIRECTS = 10;

interface State {
  msg: SieveMessage;
  flags: string[];
  out: Outcome;
  implicitKeep: boolean;
  stopped: boolean;
}

export function runScript(script: Node[], msg: SieveMessage): Outcome {
  const s: State = { msg, flags: [], out: { fileinto: [], redirect: [], discarded: false }, implicitKeep: true, stopped: false };
  block(s, script);
  if (s.implicitKeep && !s.out.keep) s.out.keep = { flags: [...s.flags] };
  return s.out;
}

function block(s: State, cmds: Node[]): void {
  let taken = false;
  for (const c of cmds) {
    if (s.stopped) return;
    if (c.name === 'if') taken = false;
    if (c.name === 'if' || c.name === 'elsif') {
      if (taken) continue;
      if (test(s, c.tests[0])) {
        taken = true;
        block(s, c.block!);
      }
      continue;
    }
    if (c.name === 'else') {
      if (!taken) block(s, c.block!);
      taken = true;
      continue;
    }
    action(s, c);
  }
}

const str = (v: unknown) => v as string;
const list = (v: unknown) => v as string[];

function action(s: State, c: Node): void {
  const o = s.out;
  const flagsOf = () => (c.tags.has('flags') ? normaliseFlags(list(c.tags.get('flags'))) : [...s.flags]);
  switch (c.name) {
    case 'stop':
      s.stopped = true;
      return;
    case 'keep':
      incompatible(s, c, 'keep');
      o.keep = { flags: flagsOf() };
      s.implicitKeep = false;
      return;
    case 'discard':
      o.discarded = true;
      s.implicitKeep = false;
      return;
    case 'redirect': {
      const to = str(c.pos[0]).trim();
      if (parseAddressList(to).length !== 1) throw new SieveError(`redirect: "${to}" is not one address`, c.line);
      if (!o.redirect.includes(to)) o.redirect.push(to);
      if (o.redirect.length > MAX_REDIRECTS) throw new SieveError(`more than ${MAX_REDIRECTS} redirects`, c.line);
      if (!c.tags.has('copy')) s.implicitKeep = false;
      return;
    }
    case 'fileinto': {
      incompatible(s, c, 'fileinto');
      const folder = str(c.pos[0]);
      if (!o.fileinto.some((f) => f.folder === folder)) o.fileinto.push({ folder, flags: flagsOf() });
      if (!c.tags.has('copy')) s.implicitKeep = false;
      return;
    }
    case 'reject':
    case 'ereject':
      if (o.keep || o.fileinto.length || o.vacation) throw new SieveError(`${c.name} cannot be combined with keep, fileinto or vacation`, c.line);
      if (o.reject) throw new SieveError('only one reject per message', c.line);
      o.reject = { reason: str(c.pos[0]), ereject: c.name === 'ereject' };
      s.implicitKeep = false;
      return;
    case 'vacation':
      if (o.reject) throw new SieveError('vacation cannot be combined with reject', c.line);
      if (o.vacation) throw new SieveError('only one vacation per message', c.line);
      o.vacation = {
        reason: str(c.pos[0]),
        days: c.tags.get('days') as number | undefined,
        subject: c.tags.get('subject') as string | undefined,
        from: c.tags.get('from') as string | undefined,
        addresses: (c.tags.get('addresses') as string[] | undefined) ?? [],
        mime: c.tags.has('mime'),
        handle: c.tags.get('handle') as string | undefined,
      };
      return;
    case 'setflag':
      s.flags = normaliseFlags(list(c.pos[0]));
      return;
    case 'addflag':
      s.flags = normaliseFlags([...s.flags, ...list(c.pos[0])]);
      return;
    case 'removeflag': {
      const gone = new Set(normaliseFlags(list(c.pos[0])).map((f) => f.toLowerCase()));
      s.flags = s.flags.filter((f) => !gone.has(f.toLowerCase()));
      return;
    }
    default:
      throw new SieveError(`no action "${c.name}"`, c.line);
  }
}

function incompatible(s: State, c: Node, what: string): void {
  if (s.out.reject) throw new SieveError(`${what} cannot be combined with reject`, c.line);
}

/** RFC 5232 3: flags are space-separated words in strings; duplicates (case-insensitive) go. */
export function normaliseFlags(values: string[]): string[] {
  const out: string[] = [];
  for (const f of values.flatMap((v) => v.split(/\s+/)).filter(Boolean)) {
    if (!out.some((o) => o.toLowerCase() === f.toLowerCase())) out.push(f);
  }
  return out;
}

// ------------------------------------------------------------------ tests

function test(s: State, t: Node): boolean {
  const m = s.msg;
  switch (t.name) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'not':
      return !test(s, t.tests[0]);
    case 'allof':
      return t.tests.every((x) => test(s, x));
    case 'anyof':
      return t.tests.some((x) => test(s, x));
    case 'exists':
      return list(t.pos[0]).every((h) => getHeader(m.headers, h) !== undefined);
    case 'size':
      return t.tags.has('over') ? m.size > (t.tags.get('over') as number) : m.size < (t.tags.get('under') as number);
    case 'header':
      return match(t, list(t.pos[0]).flatMap((h) => getAll(m.headers, h).map(decodeWords)), list(t.pos[1]));
    case 'address':
      return match(t, list(t.pos[0]).flatMap((h) => getAll(m.headers, h).flatMap((v) => parseAddressList(v).map((a) => part(t, a.address)))), list(t.pos[1]));
    case 'envelope':
      return match(t, list(t.pos[0]).flatMap((p) => envelopePart(m, p.toLowerCase())).map((a) => part(t, a)), list(t.pos[1]));
    case 'body':
      return match(t, bodyTexts(t, m), list(t.pos[0]), true);
    case 'hasflag':
      return match(t, s.flags, list(t.pos[0]));
    default:
      throw new SieveError(`no test "${t.name}"`, t.line);
  }
}

function envelopePart(m: SieveMessage, p: string): string[] {
  if (p === 'from') return [m.envelope.from];
  if (p === 'to') return [m.envelope.to];
  return [];
}

function part(t: Node, address: string): string {
  const { local, domain } = splitAddress(address);
  if (t.tags.has('localpart')) return local;
  if (t.tags.has('domain')) return domain;
  return address;
}

/** RFC 2047 encoded words in a header value, decoded (base64 and Q, UTF-8 and Latin-1). */
export function decodeWords(v: string): string {
  return v.replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=(\s+(?==\?))?/g, (_all, cs: string, enc: string, text: string) => {
    const bytes = enc.toUpperCase() === 'B' ? Buffer.from(text, 'base64') : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
    return bytes.toString(/^(utf-?8|us-ascii)$/i.test(cs) ? 'utf8' : 'latin1');
  });
}

// ------------------------------------------------------------------ body (RFC 5173)

function bodyTexts(t: Node, m: SieveMessage): string[] {
  if (t.tags.has('raw')) return [m.body.toString('utf8')];
  const types = t.tags.has('content') ? list(t.tags.get('content')).map((x) => x.toLowerCase()) : ['text'];
  const out: string[] = [];
  walkParts(m.headers, m.body, (type, body) => {
    if (types.some((w) => w === '' || type === w || type.split('/')[0] === w)) out.push(body);
  });
  return out;
}

/** Each leaf part's content type and decoded text; multiparts are walked, not matched. */
function walkParts(headers: readonly HeaderField[], body: Buffer, visit: (type: string, text: string) => void, depth = 0): void {
  const ct = getHeader(headers, 'Content-Type') ?? 'text/plain';
  const type = ct.split(';')[0].trim().toLowerCase();
  if (type.startsWith('multipart/') && depth < 10) {
    const boundary = paramValue(parseParams(ct), 'boundary');
    if (!boundary) return;
    const text = body.toString('latin1');
    const pieces = text.split(new RegExp(`(?:^|\\r?\\n)--${boundary.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?:--)?[ \\t]*(?:\\r?\\n|$)`));
    for (const piece of pieces.slice(1, -1)) {
      const p = splitMessage(Buffer.from(piece, 'latin1'));
      walkParts(p.headers, p.body, visit, depth + 1);
    }
    return;
  }
  const cte = (getHeader(headers, 'Content-Transfer-Encoding') ?? '').trim().toLowerCase();
  let bytes = body;
  if (cte === 'base64') bytes = Buffer.from(body.toString('latin1'), 'base64');
  else if (cte === 'quoted-printable') bytes = Buffer.from(body.toString('latin1').replace(/=\r?\n/g, '').replace(/=([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  const charset = paramValue(parseParams(ct), 'charset') ?? 'us-ascii';
  visit(type, bytes.toString(/^(utf-?8|us-ascii)$/i.test(charset) ? 'utf8' : 'latin1'));
}

// ------------------------------------------------------------------ matching

type Cmp = (a: string, b: string) => number | undefined;

function comparator(t: Node): { name: string; fold: (x: string) => string } {
  const name = ((t.tags.get('comparator') as string | undefined) ?? 'i;ascii-casemap').toLowerCase();
  return { name, fold: name === 'i;ascii-casemap' ? (x) => x.replace(/[A-Z]/g, (c) => c.toLowerCase()) : (x) => x };
}

/** i;ascii-numeric (RFC 4790 9.1): the leading digits as a number; none is positive infinity. */
function numeric(x: string): number {
  const m = /^[0-9]+/.exec(x);
  return m ? Number(m[0]) : Infinity;
}

const RELATION: Record<string, (c: number) => boolean> = {
  gt: (c) => c > 0,
  ge: (c) => c >= 0,
  lt: (c) => c < 0,
  le: (c) => c <= 0,
  eq: (c) => c === 0,
  ne: (c) => c !== 0,
};

function match(t: Node, values: string[], keys: string[], substring = false): boolean {
  const { name, fold } = comparator(t);
  const order: Cmp = name === 'i;ascii-numeric' ? (a, b) => Math.sign(numeric(a) - numeric(b)) || 0 : (a, b) => (fold(a) < fold(b) ? -1 : fold(a) > fold(b) ? 1 : 0);
  if (t.tags.has('count')) {
    const rel = RELATION[str(t.tags.get('count')).toLowerCase()];
    return keys.some((k) => rel(Math.sign(values.length - numeric(k))));
  }
  if (t.tags.has('value')) {
    const rel = RELATION[str(t.tags.get('value')).toLowerCase()];
    return values.some((v) => keys.some((k) => rel(order(v, k)!)));
  }
  const kind = t.tags.has('is') ? 'is' : t.tags.has('matches') ? 'matches' : t.tags.has('regex') ? 'regex' : t.tags.has('contains') || substring ? 'contains' : 'is';
  return values.some((v) => keys.some((k) => matchOne(t, kind, fold(v), fold(k), name)));
}

function matchOne(t: Node, kind: string, v: string, k: string, comparatorName: string): boolean {
  switch (kind) {
    case 'is':
      return comparatorName === 'i;ascii-numeric' ? numeric(v) === numeric(k) : v === k;
    case 'contains':
      return v.includes(k);
    case 'matches':
      return globToRegExp(k).test(v);
    default:
      try {
        return new RegExp(k, comparatorName === 'i;ascii-casemap' ? 'i' : '').test(v);
      } catch {
        throw new SieveError(`bad regular expression "${k}"`, t.line);
      }
  }
}

/** :matches keys: * any run, ? one character, \ quotes the next. */
export function globToRegExp(k: string): RegExp {
  let re = '';
  for (let i = 0; i < k.length; i++) {
    const c = k[i];
    if (c === '\\' && i + 1 < k.length) re += k[++i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    else if (c === '*') re += '[\\s\\S]*';
    else if (c === '?') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 'u');
}
