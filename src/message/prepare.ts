// Submission: what sendmail's collect() and eatheader() do to a message
// read from `sendmail [-t] [-f] [-F]` before it is queued. Line ends to LF,
// a leading Unix "From " line eaten, From/Date/Message-ID added when missing
// (and Resent-From/Date/Message-ID on a resent message), a Received line on
// top, recipients taken from the header with -t, Bcc removed. Guarantees:
// the output is a valid message even for empty input, and no option value
// can add a header line. Pure: the caller brings the clock and queue ID.

import { parseAddressList, qualify, validateEnvelopeAddress } from './address.ts';
import { rfc5322Date } from './date.ts';
import { formatMailbox } from './display-name.ts';
import { newMessageId, safeHost, safeQueueId } from './ids.ts';
import {
  getHeader,
  joinMessage,
  makeHeader,
  normalizeLineEnds,
  removeHeaders,
  splitMessage,
  type HeaderField,
} from './headers.ts';

export interface SubmissionOptions {
  queueId: string;
  hostname: string;
  /** The envelope sender (-f, or the login); '' is the null sender. */
  envelopeSender: string;
  login: string;
  /** -F, or the gecos name. */
  fullName?: string;
  /** -t: take recipients from To/Cc/Bcc (Resent-To/Cc/Bcc on a resent message). */
  extractRecipients: boolean;
  /** The comment sendmail puts after "Received:", e.g. "(from root@localhost)". */
  receivedFrom: string;
  now: Date;
  /** The domain that bare local names ("root") are qualified with. */
  bareLocalDomain: string;
}

export interface Submission {
  /** The message as it goes to the queue, LF line ends. */
  data: Buffer;
  /** With -t: the header recipients, qualified, de-duplicated, in order. */
  recipients: string[];
  /** Header recipients that cannot be envelope addresses, and why (for the caller to report). */
  badRecipients: Array<{ address: string; error: string }>;
  /** The Message-ID (Resent-Message-ID on a resent message), as found or as added. */
  messageId: string;
  /** Trace fields already in the message, for the hop-count loop check. */
  hops: number;
}

/** sendmail's H_TRACE fields (conf.c HdrInfo): each is one hop already made. */
const TRACE = new Set(['received', 'via', 'mail-from', 'x400-received']);
/** sendmail's H_RESENT fields: any of them makes the message a resent one. */
const RESENT = new Set([
  'resent-sender', 'resent-from', 'resent-reply-to', 'resent-to',
  'resent-cc', 'resent-bcc', 'resent-date', 'resent-message-id',
]);
/** sendmail's H_RCPT fields, read with -t; on a resent message only the Resent- ones. */
const RCPT = ['to', 'cc', 'bcc', 'apparently-to'];
const RESENT_RCPT = ['resent-to', 'resent-cc', 'resent-bcc'];
/** Fields we add when missing; an empty one counts as missing and is replaced. */
const ORIGINATOR = new Set(['date', 'from', 'message-id', 'resent-date', 'resent-from', 'resent-message-id']);

export function prepareSubmission(input: Buffer, opts: SubmissionOptions): Submission {
  const split = splitMessage(eatUnixFrom(normalizeLineEnds(input)));
  const lower = split.headers.map((h) => h.name.toLowerCase());
  const resent = lower.some((n) => RESENT.has(n));
  const hops = lower.filter((n) => TRACE.has(n)).length;
  const { recipients, badRecipients } = opts.extractRecipients
    ? extractRecipients(split.headers, resent ? RESENT_RCPT : RCPT, domainFor(opts))
    : { recipients: [], badRecipients: [] };
  const present = split.headers.filter((h) => !(h.value === '' && ORIGINATOR.has(h.name.toLowerCase())));
  const added = [receivedHeader(opts), ...missingHeaders(present, resent, opts)];
  const kept = removeHeaders(present, 'bcc', 'resent-bcc');
  const headers = [...added, ...kept];
  const idField = resent ? 'Resent-Message-ID' : 'Message-ID';
  return {
    data: joinMessage(headers, terminated(split.body)),
    recipients,
    badRecipients,
    messageId: getHeader(headers, idField) ?? '',
    hops,
  };
}

/** sendmail's collect() drops a first line "From user date" (mbox style), taking nothing from it. */
function eatUnixFrom(data: Buffer): Buffer {
  if (data.subarray(0, 5).toString('latin1') !== 'From ') return data;
  const nl = data.indexOf(0x0a);
  return nl < 0 ? Buffer.alloc(0) : data.subarray(nl + 1);
}

/** The last line of a body always ends with a line end, as it does in sendmail's df file. */
function terminated(body: Buffer): Buffer {
  return body.length === 0 || body[body.length - 1] === 0x0a ? body : Buffer.concat([body, Buffer.from('\n')]);
}

function domainFor(opts: SubmissionOptions): string {
  return safeHost(opts.bareLocalDomain || opts.hostname);
}

/** Text for inside a comment: no controls, no parentheses or backslashes that would unbalance it. */
function commentText(s: string): string {
  return s.replace(/[\x00-\x1f\x7f()\\]/g, '').trim();
}

/**
 * sendmail's local Received form (cf/m4/proto.m4, submit.cf):
 *   Received: (from root@localhost)
 *   \tby host.example.com (8.x/8.x/Submit) id ID;
 *   \tSun, 22 Nov 2026 00:03:44 +0000
 */
function receivedHeader(opts: SubmissionOptions): HeaderField {
  const value = `${receivedComment(opts)}\n\tby ${safeHost(opts.hostname)} (mailtk) id ${safeQueueId(opts.queueId)};\n\t${rfc5322Date(opts.now)}`;
  return makeHeader('Received', value);
}

/** "(from root@localhost)"; a bare "root@localhost" is wrapped, an empty one made from the login. */
function receivedComment(opts: SubmissionOptions): string {
  const given = opts.receivedFrom.replace(/[\x00-\x1f\x7f]+/g, ' ').trim();
  if (given.startsWith('(') && given.endsWith(')')) return given;
  const who = commentText(given.replace(/^from\s+/i, '')) || `${commentText(opts.login)}@localhost`;
  return `(from ${who})`;
}

/** The From/Date/Message-ID sendmail's cf adds when missing; Resent- ones too on a resent message. */
function missingHeaders(headers: HeaderField[], resent: boolean, opts: SubmissionOptions): HeaderField[] {
  const has = (name: string) => getHeader(headers, name) !== undefined;
  const values: Array<[string, () => string]> = [
    ['Date', () => rfc5322Date(opts.now)],
    ['From', () => fromValue(opts)],
    ['Message-ID', () => newMessageId(opts)],
  ];
  const wanted = resent ? [...values.map(([n, f]): [string, () => string] => [`Resent-${n}`, f]), ...values] : values;
  return wanted.filter(([name]) => !has(name)).map(([name, make]) => makeHeader(name, make()));
}

/** `Full Name <sender>`; the null sender shows as MAILER-DAEMON, as bounces do. */
function fromValue(opts: SubmissionOptions): string {
  const host = domainFor(opts);
  const sender = opts.envelopeSender.replace(/[\x00-\x20\x7f<>]/g, '');
  const address = sender === '' ? `MAILER-DAEMON@${host}` : qualify(sender, host);
  return formatMailbox(opts.fullName, address);
}

function extractRecipients(headers: HeaderField[], fields: string[], domain: string): Pick<Submission, 'recipients' | 'badRecipients'> {
  const recipients: string[] = [];
  const badRecipients: Submission['badRecipients'] = [];
  const seen = new Set<string>();
  for (const h of headers) {
    if (!fields.includes(h.name.toLowerCase())) continue;
    for (const { address } of parseAddressList(h.value)) {
      const addr = qualify(address, domain);
      const error = validateEnvelopeAddress(addr);
      if (error) badRecipients.push({ address: addr, error });
      else if (!seen.has(addr)) {
        seen.add(addr);
        recipients.push(addr);
      }
    }
  }
  return { recipients, badRecipients };
}
