// Control records: one a line, first character the record type, documented
// in sendmail(8) under FILES. They open a queue entry's file (entry-file.ts
// puts the message after them) and a maildrop file (enqueue.ts). Recipients
// are crossed off by appending journal records (X, F) to the end of the
// entry with O_APPEND and fdatasync, so a crash repeats at most the delivery
// under way (Postfix's idea, with an append instead of an overwrite); a
// deferral appends N, K, Y and M records, the last of each kind counting.

import { validateEnvelopeAddress } from '../message/index.ts';
import type { QueueId } from './id.ts';

export type Notify = { never: boolean; success: boolean; failure: boolean; delay: boolean };

export interface Recipient {
  address: string;
  /** DSN ORCPT (RFC 3461), "rfc822;addr" form, when given. */
  orcpt?: string;
  /** DSN NOTIFY as given; undefined means the default (FAILURE,DELAY). */
  notify?: string;
}

export interface Placement {
  path: string;
  offset: number;
  length: number;
  digest: string;
}

export interface Journal {
  /** rcpt index -> destination keys delivered. */
  done: Map<number, Set<string>>;
  /** rcpt index -> destination keys failed permanently (already bounced). */
  failed: Map<number, Set<string>>;
  /** "rcpt\tkey" -> where an mbox append about to happen put the message. */
  placed: Map<string, Placement>;
}

export interface Control {
  id: QueueId;
  arrival: number; // ms since epoch
  sender: string; // '' is the null reverse-path
  submitter: string; // login that submitted it
  envid?: string;
  ret?: 'full' | 'hdrs';
  bodyType?: string;
  hops: number;
  attempts: number;
  lastAttempt: number;
  nextTry: number;
  warned: boolean;
  reason?: string; // last deferral reason, shown by mailq
  flags: string; // 'b' = a DSN we made (never bounce it)
  size: number; // bytes of the message
  /** CRC-32 of the message, from the entry file's D record (entry-file.ts). */
  crc?: string;
  recipients: Recipient[];
  journal: Journal;
}

const VERSION = 'V1';

/** Strip what would break the line format; envelope data was validated before. */
function field(v: string): string {
  return v.replace(/[\r\n\t\0]/g, ' ');
}

export function serializeControl(c: Control): string {
  const out = [VERSION, `I${c.id}`, `T${c.arrival}`, `S${field(c.sender)}`, `U${field(c.submitter)}`];
  if (c.envid !== undefined) out.push(`Z${field(c.envid)}`);
  if (c.ret) out.push(`E${c.ret}`);
  if (c.bodyType) out.push(`B${field(c.bodyType)}`);
  out.push(`H${c.hops}`, `N${c.attempts}`, `K${c.lastAttempt}`, `Y${c.nextTry}`, `L${c.size}`);
  if (c.warned) out.push('W');
  if (c.flags) out.push(`G${c.flags}`);
  if (c.reason) out.push(`M${field(c.reason)}`);
  for (const r of c.recipients) out.push(`R${field(r.notify ?? '')}\t${field(r.orcpt ?? '')}\t${field(r.address)}`);
  for (const [i, keys] of c.journal.done) for (const k of keys) out.push(journalDone(i, k).slice(0, -1));
  for (const [i, keys] of c.journal.failed) for (const k of keys) out.push(journalFailed(i, k).slice(0, -1));
  for (const [ik, p] of c.journal.placed) {
    const [i, k] = ik.split('\t');
    out.push(journalPlaced(Number(i), k, p).slice(0, -1));
  }
  return out.join('\n') + '\n';
}

export function placedKey(rcpt: number, key: string): string {
  return `${rcpt}\t${key}`;
}

/** Intent: this destination's copy is about to be written there (see transition.recordPlacement). */
export function journalPlaced(rcpt: number, key: string, p: Placement): string {
  return `P${rcpt}\t${field(key)}\t${p.offset}\t${p.length}\t${p.digest}\t${field(p.path)}\n`;
}

export function journalDone(rcpt: number, key: string): string {
  return `X${rcpt}\t${field(key)}\n`;
}

export function journalFailed(rcpt: number, key: string): string {
  return `F${rcpt}\t${field(key)}\n`;
}

/** A control record with a fresh entry's defaults: no attempts, no journal. */
export function newControl(fields: Pick<Control, 'id' | 'arrival' | 'sender' | 'submitter' | 'recipients'> & Partial<Control>): Control {
  return {
    hops: 0,
    attempts: 0,
    lastAttempt: 0,
    nextTry: 0,
    warned: false,
    flags: '',
    size: 0,
    journal: { done: new Map(), failed: new Map(), placed: new Map() },
    ...fields,
  };
}

export class ControlParseError extends Error {}

export function parseControl(text: string): Control {
  const lines = text.split('\n');
  // The last element is '' after a final newline, or a torn line: drop it.
  lines.pop();
  if (lines[0] !== VERSION) throw new ControlParseError(`unknown control file version "${lines[0] ?? ''}"`);
  const c = newControl({ id: '', arrival: 0, sender: '', submitter: '', recipients: [] });
  let sawSender = false;
  for (const line of lines.slice(1)) {
    if (line[0] === 'S') sawSender = true;
    applyRecord(c, line);
  }
  if (!c.id || !sawSender || c.recipients.length === 0) throw new ControlParseError('missing I, S or R record');
  return c;
}

/**
 * The journal appended after an entry's message: the same records, but a
 * crash may tear one, so a record that does not parse is skipped.
 */
export function parseJournal(text: string, c: Control): void {
  const lines = text.split('\n');
  lines.pop();
  for (const line of lines) {
    try {
      applyRecord(c, line);
    } catch (e) {
      if (!(e instanceof ControlParseError)) throw e;
    }
  }
}

function applyRecord(c: Control, line: string): void {
  const v = line.slice(1);
  switch (line[0]) {
    case 'I': c.id = v; break;
    case 'T': c.arrival = num(v, line); break;
    case 'S': c.sender = v; break;
    case 'U': c.submitter = v; break;
    case 'Z': c.envid = v; break;
    case 'E': c.ret = v === 'hdrs' ? 'hdrs' : 'full'; break;
    case 'B': c.bodyType = v; break;
    case 'H': c.hops = num(v, line); break;
    case 'N': c.attempts = num(v, line); break;
    case 'K': c.lastAttempt = num(v, line); break;
    case 'Y': c.nextTry = num(v, line); break;
    case 'L': c.size = num(v, line); break;
    case 'W': c.warned = true; break;
    case 'G': c.flags = v; break;
    case 'C': break; // an older mailtk's commit log position: nothing to keep
    case 'M': c.reason = v; break;
    case 'R': {
      const [notify, orcpt, address] = v.split('\t');
      if (address === undefined || address === '') throw new ControlParseError(`bad recipient record "${line}"`);
      c.recipients.push({ address, orcpt: orcpt || undefined, notify: notify || undefined });
      break;
    }
    case 'X':
    case 'F': {
      const tab = v.indexOf('\t');
      const i = num(v.slice(0, tab), line);
      const map = line[0] === 'X' ? c.journal.done : c.journal.failed;
      if (!map.has(i)) map.set(i, new Set());
      map.get(i)!.add(v.slice(tab + 1));
      break;
    }
    case 'P': {
      const [i, key, offset, length, digest, file] = v.split('\t');
      if (file === undefined) throw new ControlParseError(`bad placement record "${line}"`);
      c.journal.placed.set(placedKey(num(i, line), key), { path: file, offset: num(offset, line), length: num(length, line), digest });
      break;
    }
    default:
      throw new ControlParseError(`unknown record "${line}"`);
  }
}

function num(v: string, line: string): number {
  if (!/^\d+$/.test(v)) throw new ControlParseError(`bad number in "${line}"`);
  return Number(v);
}

/** RFC 3461 4.2 and 4.4: ORCPT at most 500 characters, ENVID at most 100. */
const MAX_ORCPT = 500;
const MAX_ENVID = 100;
const CONTROL_CHAR = /[\x00-\x1f\x7f]/;
const NOTIFY = /^(NEVER|(SUCCESS|FAILURE|DELAY)(,(SUCCESS|FAILURE|DELAY)){0,2})$/i;

export type Envelope = Pick<Control, 'sender' | 'recipients' | 'envid' | 'ret' | 'bodyType'>;

/**
 * Why an envelope cannot be queued as it is, or undefined: addresses as
 * RFC 5321 allows them, DSN values in RFC 3461's grammar, at most
 * maxRecipients recipients. For envelopes nothing checked before: a
 * maildrop file's, and the one an ordinary user's sendmail is about to drop.
 */
export function envelopeError(e: Envelope, maxRecipients: number): string | undefined {
  const s = validateEnvelopeAddress(e.sender);
  if (s) return `sender ${shown(e.sender)}: ${s}`;
  if (e.recipients.length === 0) return 'no recipients';
  if (e.recipients.length > maxRecipients) return `${e.recipients.length} recipients (at most ${maxRecipients})`;
  for (const r of e.recipients) {
    const a = r.address === '' ? 'empty address' : validateEnvelopeAddress(r.address);
    if (a) return `recipient ${shown(r.address)}: ${a}`;
    if (r.notify && !NOTIFY.test(r.notify)) return `recipient ${shown(r.address)}: bad NOTIFY ${shown(r.notify)}`;
    if (r.orcpt !== undefined && (r.orcpt.length > MAX_ORCPT || CONTROL_CHAR.test(r.orcpt) || !/^[A-Za-z0-9-]+;./.test(r.orcpt))) {
      return `recipient ${shown(r.address)}: bad ORCPT ${shown(r.orcpt)}`;
    }
  }
  if (e.envid !== undefined && (e.envid.length > MAX_ENVID || CONTROL_CHAR.test(e.envid))) return `bad ENVID ${shown(e.envid)}`;
  if (e.ret !== undefined && e.ret !== 'full' && e.ret !== 'hdrs') return `bad RET ${shown(e.ret)}`;
  if (e.bodyType && !/^(7BIT|8BITMIME)$/i.test(e.bodyType)) return `bad BODY ${shown(e.bodyType)}`;
  return undefined;
}

/** A value quoted for an error or a log line: control characters escaped, at most 80 characters. */
export function shown(v: string): string {
  const q = JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
  return q.replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function parseNotify(n: string | undefined): Notify {
  if (n === undefined || n === '') return { never: false, success: false, failure: true, delay: true };
  const parts = n.toUpperCase().split(',');
  if (parts.includes('NEVER')) return { never: true, success: false, failure: false, delay: false };
  return {
    never: false,
    success: parts.includes('SUCCESS'),
    failure: parts.includes('FAILURE'),
    delay: parts.includes('DELAY'),
  };
}
