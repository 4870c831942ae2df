// What the listener does to a message before it is queued: sendmail's header
// preparation (src/message's prepareSubmission: LF line ends, Date, From and
// Message-ID when missing) with its local Received field replaced by the SMTP
// form of seed 001, 14-5, every client-given part cleaned:
//   Received: from HELO (NAME [ADDRESS])\n\t(authenticated as USER)
//   \tby HOST (mailtk 0.1.0) with ESMTPSA id QUEUEID
//   \t(version=TLSv1.3 cipher=TLS_AES_256_GCM_SHA384 bits=256)
//   \tfor <RCPT>; DATE

import { HeaderTokens, makeHeader, prepareSubmission, rfc5322Date, safeHost } from '../message/index.ts';
import { SOFTWARE } from './replies.ts';

export interface TraceInfo {
  queueId: string;
  hostname: string;
  /** The HELO/EHLO argument, as given. */
  helo: string | undefined;
  /** The client's forward-confirmed reverse name, if any. */
  clientName: string | undefined;
  /** The client's IP address; undefined for `sendmail -bs`. */
  clientAddress: string | undefined;
  /** `sendmail -bs`: the user who ran it. */
  login: string;
  /** RFC 3848 / 6531 "with" keyword: ESMTP, ESMTPS, ESMTPSA, UTF8SMTPS, ... */
  protocol: string;
  tls: { version: string; cipher: string; bits: number } | undefined;
  authUser: string | undefined;
  recipients: string[];
  sender: string;
  now: Date;
}

export interface Prepared {
  data: Buffer;
  messageId: string;
  /** Trace fields the message already had: hops made before us. */
  hops: number;
}

export function prepareForQueue(raw: Buffer, t: TraceInfo): Prepared {
  const p = prepareSubmission(raw, {
    queueId: t.queueId,
    hostname: t.hostname,
    envelopeSender: t.sender,
    login: t.authUser ?? t.login,
    extractRecipients: false,
    receivedFrom: '',
    now: t.now,
    bareLocalDomain: t.hostname,
  });
  // prepareSubmission puts its own Received field first; ours takes its place.
  if (p.data.toString('latin1', 0, 9) !== 'Received:') throw new Error('prepareForQueue: no Received field first');
  const ours = makeHeader('Received', receivedValue(t)).raw;
  return { data: Buffer.concat([ours, p.data.subarray(firstFieldEnd(p.data))]), messageId: p.messageId, hops: p.hops };
}

/** The offset just past the first field, its folds and line end. */
function firstFieldEnd(data: Buffer): number {
  const t = new HeaderTokens(data, true);
  return t.next() ? t.end : 0;
}

/** Text for inside a comment or a "from" word: printable, no parentheses or backslashes. */
function word(s: string): string {
  return s.replace(/[^\x21-\x7e]|[()\\;]/g, '').slice(0, 255) || 'unknown';
}

function receivedValue(t: TraceInfo): string {
  const who = t.clientAddress === undefined ? `${word(t.login)}@localhost` : `${word(t.clientName ?? 'unknown')} [${t.clientAddress}]`;
  const lines = [`from ${word(t.helo ?? t.clientName ?? 'unknown')} (${who})`];
  if (t.authUser !== undefined) lines.push(`(authenticated as ${word(t.authUser)})`);
  lines.push(`by ${safeHost(t.hostname)} (${SOFTWARE}) with ${t.protocol} id ${t.queueId}`);
  if (t.tls) lines.push(`(version=${word(t.tls.version)} cipher=${word(t.tls.cipher)} bits=${t.tls.bits})`);
  if (t.recipients.length === 1) lines.push(`for <${t.recipients[0].replace(/[\x00-\x20\x7f<>]/g, '')}>`);
  lines[lines.length - 1] += ';';
  lines.push(rfc5322Date(t.now));
  return lines.join('\n\t');
}
