// One outbound SMTP session, RFC 5321 order: greeting, EHLO (HELO when EHLO
// is refused), STARTTLS and a second EHLO, then mail transactions. A
// transaction sends MAIL, every RCPT and DATA in one write when the server
// offers PIPELINING (RFC 2920), and reads the replies in order; otherwise it
// waits at each step. SIZE (RFC 1870), 8BITMIME (6152), SMTPUTF8 (6531) and
// DSN (3461: RET, ENVID, and each recipient's own NOTIFY and ORCPT) are used
// when offered. Replies are returned per recipient; what they mean for the
// queue, and which host to try next, is remote.ts's business.
// LMTP (RFC 2033) is the same session with two changes: LHLO instead of EHLO
// (no HELO to fall back to), and after the final dot one reply for each
// recipient that RCPT accepted, in RCPT order (lmtp.ts uses it).

import type { SmtpTimeouts } from '../config/index.ts';
import type { Failure } from '../message/status.ts';
import { type SmtpReply, SmtpClientError, type SmtpWire, replyText } from './smtp-client.ts';

export type TlsLevel = 'none' | 'may' | 'encrypt' | 'verify';

export interface SessionOptions {
  /** Our name for EHLO: the hostname key. */
  helo: string;
  tls: TlsLevel;
  /** The server's name, for TLS SNI and certificate checks; undefined for an IP literal. */
  servername?: string;
  timeouts: SmtpTimeouts;
  /** Speak LMTP: LHLO, and a reply per recipient after the data. */
  lmtp?: boolean;
}

export interface Session {
  wire: SmtpWire;
  /** EHLO keywords, upper case, with their parameters ("SIZE" → "10240000"). */
  extensions: Map<string, string>;
  tls: boolean;
  /** False once a transaction stopped half way: RSET before the next MAIL. */
  clean: boolean;
  /** False after a 421: the server is closing. */
  usable: boolean;
  lmtp: boolean;
}

export interface RemoteRecipient {
  address: string;
  /** DSN NOTIFY as queued ("SUCCESS,FAILURE"), passed on when the server offers DSN. */
  notify?: string;
  /** DSN ORCPT as "type;address", xtext-decoded. */
  orcpt?: string;
}

export interface Envelope {
  sender: string;
  recipients: RemoteRecipient[];
  data: Buffer;
  /** Size of the data in wire form (CRLF, dot-stuffed). */
  wireSize: number;
  eightBit: boolean;
  bodyType?: string;
  envid?: string;
  ret?: 'full' | 'hdrs';
}

/** A recipient's fate in one transaction. */
export type RcptResult =
  | { ok: true; reply: SmtpReply }
  | { ok: false; reply: SmtpReply; command: string }
  | { ok: false; failure: Failure; detail: string };

/** A reply that refuses the whole session (greeting, EHLO, HELO). */
export class SessionRefused extends Error {
  constructor(
    readonly reply: SmtpReply,
    readonly command: string,
  ) {
    super(`${replyText(reply)} (in reply to ${command})`);
  }
}

/** The connection broke during a transaction; after the final dot the mail may have arrived. */
export class TransactionLost extends Error {
  constructor(
    readonly error: SmtpClientError,
    readonly maybeDelivered: boolean,
  ) {
    super(error.message);
  }
}

/** Greeting, EHLO, and STARTTLS as the TLS level asks. `plain` skips STARTTLS (a retry after a failed handshake). */
export async function openSession(wire: SmtpWire, o: SessionOptions, plain = false): Promise<Session> {
  const greeting = await wire.read(o.timeouts.helo, 'receiving the initial server greeting');
  if (greeting.code !== 220) throw new SessionRefused(greeting, 'initial greeting');
  let extensions = await hello(wire, o);
  let tls = false;
  const required = o.tls === 'encrypt' || o.tls === 'verify';
  if (o.tls !== 'none' && !plain) {
    if (extensions.has('STARTTLS')) {
      tls = await startTls(wire, o, required);
      if (tls) extensions = await hello(wire, o);
    }
    if (required && !tls) throw new SmtpClientError('no-tls', `TLS is required, but was not offered by host ${wire.peer}`);
  }
  return { wire, extensions, tls, clean: true, usable: true, lmtp: o.lmtp ?? false };
}

async function hello(wire: SmtpWire, o: SessionOptions): Promise<Map<string, string>> {
  const verb = o.lmtp ? 'LHLO' : 'EHLO';
  wire.write(`${verb} ${o.helo}`);
  const r = await wire.read(o.timeouts.helo, `receiving the reply to ${verb}`);
  if (r.code === 250) return parseExtensions(r);
  if (r.code < 500 || o.lmtp) throw new SessionRefused(r, verb);
  // An old server that knows only HELO: plain SMTP, no extensions.
  wire.write(`HELO ${o.helo}`);
  const h = await wire.read(o.timeouts.helo, 'receiving the reply to HELO');
  if (h.code !== 250) throw new SessionRefused(h, 'HELO');
  return new Map();
}

function parseExtensions(r: SmtpReply): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of r.lines.slice(1)) {
    const [key, ...params] = line.trim().split(/\s+/);
    if (key) map.set(key.toUpperCase(), params.join(' '));
  }
  return map;
}

/** True when the session is now encrypted. A refused STARTTLS goes on in the clear unless TLS is required. */
async function startTls(wire: SmtpWire, o: SessionOptions, required: boolean): Promise<boolean> {
  wire.write('STARTTLS');
  const r = await wire.read(o.timeouts.starttls, 'receiving the reply to STARTTLS');
  if (r.code !== 220) {
    if (required) throw new SmtpClientError('no-tls', `host ${wire.peer} refused STARTTLS: ${replyText(r)}`);
    return false;
  }
  await wire.startTls({ servername: o.servername, verify: o.tls === 'verify', timeoutMs: o.timeouts.starttls });
  return true;
}

/** One mail transaction for all of `env`'s recipients; a result per recipient, in order. */
export async function sendTransaction(s: Session, env: Envelope, t: SmtpTimeouts): Promise<RcptResult[]> {
  const refusal = checkServerLimits(s, env);
  if (refusal) return env.recipients.map(() => refusal);
  let delivering = false;
  try {
    if (!s.clean) await reset(s, t);
    s.clean = false;
    const mail = mailCommand(s, env);
    const rcpts = env.recipients.map((r) => rcptCommand(s, r));
    const replies = s.extensions.has('PIPELINING') ? await pipelined(s, mail, rcpts, t) : await stepwise(s, mail, rcpts, t);
    return await finish(s, env, replies, t, () => (delivering = true));
  } catch (e) {
    if (e instanceof SmtpClientError) throw new TransactionLost(e, delivering);
    throw e;
  }
}

/** What this server has said it cannot take, found before sending anything. */
function checkServerLimits(s: Session, env: Envelope): RcptResult | undefined {
  const limit = Number(s.extensions.get('SIZE') ?? 0);
  if (limit > 0 && env.wireSize > limit) {
    return { ok: false, failure: 'message-too-big', detail: `message size ${env.wireSize} exceeds size limit ${limit} of server ${s.wire.peer}` };
  }
  if (needsUtf8(env) && !s.extensions.has('SMTPUTF8')) {
    return { ok: false, failure: 'smtputf8-unavailable', detail: `SMTPUTF8 is required, but was not offered by host ${s.wire.peer}` };
  }
  return undefined;
}

function needsUtf8(env: Envelope): boolean {
  return /[^\x00-\x7f]/.test(env.sender) || env.recipients.some((r) => /[^\x00-\x7f]/.test(r.address));
}

async function reset(s: Session, t: SmtpTimeouts): Promise<void> {
  s.wire.write('RSET');
  await readReply(s, t.mail, 'receiving the reply to RSET');
  s.clean = true;
}

interface Replies {
  mail: SmtpReply;
  rcpts: Array<SmtpReply | undefined>;
  data?: SmtpReply;
}

/** RFC 2920: the whole envelope and DATA in one write, then the replies in order. */
async function pipelined(s: Session, mail: string, rcpts: string[], t: SmtpTimeouts): Promise<Replies> {
  s.wire.write(mail, ...rcpts, 'DATA');
  const mailReply = await readReply(s, t.mail, 'receiving the reply to MAIL FROM');
  const rcptReplies: SmtpReply[] = [];
  for (const _ of rcpts) rcptReplies.push(await readReply(s, t.rcpt, 'receiving the reply to RCPT TO'));
  const data = await readReply(s, t.dataInit, 'receiving the reply to DATA');
  return { mail: mailReply, rcpts: rcptReplies, data };
}

/** Without PIPELINING: stop at a refused MAIL, and send DATA only when someone was accepted. */
async function stepwise(s: Session, mail: string, rcpts: string[], t: SmtpTimeouts): Promise<Replies> {
  s.wire.write(mail);
  const mailReply = await readReply(s, t.mail, 'receiving the reply to MAIL FROM');
  if (mailReply.code >= 300) return { mail: mailReply, rcpts: rcpts.map(() => undefined) };
  const rcptReplies: SmtpReply[] = [];
  for (const cmd of rcpts) {
    s.wire.write(cmd);
    rcptReplies.push(await readReply(s, t.rcpt, 'receiving the reply to RCPT TO'));
  }
  if (!rcptReplies.some((r) => r.code < 300)) return { mail: mailReply, rcpts: rcptReplies };
  s.wire.write('DATA');
  return { mail: mailReply, rcpts: rcptReplies, data: await readReply(s, t.dataInit, 'receiving the reply to DATA') };
}

/** Send the body when DATA was accepted for someone, and turn the replies into results. */
async function finish(s: Session, env: Envelope, r: Replies, t: SmtpTimeouts, onBody: () => void): Promise<RcptResult[]> {
  if (r.mail.code >= 300) {
    await abortData(s, r.data, t);
    return env.recipients.map(() => ({ ok: false, reply: r.mail, command: 'MAIL FROM' }));
  }
  const results: Array<RcptResult | undefined> = r.rcpts.map((x) => (x && x.code >= 300 ? { ok: false, reply: x, command: 'RCPT TO' } : undefined));
  const accepted = results.flatMap((x, i) => (x ? [] : [i]));
  if (accepted.length === 0) {
    await abortData(s, r.data, t);
    return results as RcptResult[];
  }
  const data = r.data!;
  if (data.code !== 354) {
    for (const i of accepted) results[i] = { ok: false, reply: data, command: 'DATA' };
    return results as RcptResult[];
  }
  await s.wire.sendData(env.data, t.dataXfer);
  onBody();
  if (s.lmtp) return await lmtpReplies(s, results, accepted, t);
  const done = await readReply(s, t.dataDone, 'receiving the final reply after sending the message');
  s.clean = true;
  for (const i of accepted) results[i] = dataResult(done);
  return results as RcptResult[];
}

function dataResult(done: SmtpReply): RcptResult {
  return done.code < 300 ? { ok: true, reply: done } : { ok: false, reply: done, command: 'end of DATA' };
}

/**
 * RFC 2033 4.2: a reply per accepted recipient, in order. A connection lost
 * half way loses only the replies not yet read: those recipients may have
 * had the message and are deferred (as a lost final reply is in SMTP), the
 * ones answered keep their answer.
 */
async function lmtpReplies(s: Session, results: Array<RcptResult | undefined>, accepted: number[], t: SmtpTimeouts): Promise<RcptResult[]> {
  for (const [n, i] of accepted.entries()) {
    try {
      results[i] = dataResult(await readReply(s, t.dataDone, 'receiving the final replies after sending the message'));
    } catch (e) {
      if (!(e instanceof SmtpClientError)) throw e;
      s.usable = false;
      const detail = `${e.message}; the message may have been delivered`;
      for (const j of accepted.slice(n)) results[j] = { ok: false, failure: 'connection-lost', detail };
      return results as RcptResult[];
    }
  }
  s.clean = true;
  return results as RcptResult[];
}

/** DATA was accepted although no recipient was (a pipelined group): end it empty, as RFC 2920 3.1 says. */
async function abortData(s: Session, data: SmtpReply | undefined, t: SmtpTimeouts): Promise<void> {
  if (data?.code !== 354) return;
  s.wire.write('.');
  await readReply(s, t.dataDone, 'receiving the reply to an empty message');
}

async function readReply(s: Session, ms: number, stage: string): Promise<SmtpReply> {
  const r = await s.wire.read(ms, stage);
  if (r.code === 421) s.usable = false;
  return r;
}

function mailCommand(s: Session, env: Envelope): string {
  const ext = s.extensions;
  const params: string[] = [];
  if (ext.has('SIZE')) params.push(`SIZE=${env.wireSize}`);
  const body = env.bodyType?.toUpperCase() ?? (env.eightBit ? '8BITMIME' : undefined);
  if (ext.has('8BITMIME') && (body === '8BITMIME' || body === '7BIT')) params.push(`BODY=${body}`);
  if (ext.has('SMTPUTF8') && needsUtf8(env)) params.push('SMTPUTF8');
  if (ext.has('DSN')) {
    if (env.ret) params.push(`RET=${env.ret.toUpperCase()}`);
    if (env.envid) params.push(`ENVID=${xtext(env.envid)}`);
  }
  return [`MAIL FROM:<${env.sender}>`, ...params].join(' ');
}

function rcptCommand(s: Session, r: RemoteRecipient): string {
  const params: string[] = [];
  if (s.extensions.has('DSN')) {
    const notify = r.notify?.toUpperCase().replace(/\s+/g, '');
    if (notify && /^(NEVER|(SUCCESS|FAILURE|DELAY)(,(SUCCESS|FAILURE|DELAY))*)$/.test(notify)) params.push(`NOTIFY=${notify}`);
    if (r.orcpt) {
      const semi = r.orcpt.indexOf(';');
      const [type, addr] = semi > 0 ? [r.orcpt.slice(0, semi), r.orcpt.slice(semi + 1)] : ['rfc822', r.orcpt];
      params.push(`ORCPT=${type};${xtext(addr)}`);
    }
  }
  return [`RCPT TO:<${r.address}>`, ...params].join(' ');
}

/** RFC 3461 4: xtext, "+XX" for "+", "=", controls, space and non-ASCII bytes. */
export function xtext(v: string): string {
  let out = '';
  for (const byte of Buffer.from(v, 'utf8')) {
    out += byte >= 33 && byte <= 126 && byte !== 0x2b && byte !== 0x3d ? String.fromCharCode(byte) : `+${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}
