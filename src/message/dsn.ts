// Delivery status notifications: RFC 3464 multipart/report messages
// (RFC 6522) for bounces, delay warnings and success notices. The human
// part mirrors sendmail's savemail.c errbody(); the machine part follows
// RFC 3464 2.2-2.3 field order. Guarantees: LF line ends, a boundary found
// nowhere in the returned message, one header line per field whatever the
// texts hold. The whole message goes back only in a failed DSN with RET=FULL
// (RFC 3461 4.3) and within maxFull; otherwise text/rfc822-headers.
// Never bouncing to the null sender is the caller's job.

import { rfc5322Date, formatInterval } from './date.ts';
import { makeHeader, normalizeLineEnds, serializeHeaders, splitMessage, type HeaderField } from './headers.ts';
import { newBoundary, newMessageId, safeHost } from './ids.ts';

export type DsnKind = 'failed' | 'delayed' | 'delivered';
export type DsnAction = 'failed' | 'delayed' | 'delivered' | 'expanded';

export interface DsnRecipient {
  /** ORCPT, or the address as the sender gave it; "type;address" or a bare address. */
  original?: string;
  final: string;
  action: DsnAction;
  /** RFC 3463 code, e.g. "5.1.1". */
  status: string;
  /** Our own words for what happened ("User unknown"). */
  text: string;
  /** The remote server's reply, when a remote server said it. */
  remote?: string;
  /** The remote server's host name. */
  remoteMta?: string;
}

export interface DsnOptions {
  kind: DsnKind;
  hostname: string;
  queueId: string;
  /** Who gets the DSN: the envelope sender of the original. */
  to: string;
  envid?: string;
  arrival: Date;
  now: Date;
  ret: 'full' | 'hdrs';
  original: Buffer;
  /** "4 hours": how long the message has waited, for a delay warning. */
  warnAfter?: string;
  retryUntil?: Date;
  recipients: DsnRecipient[];
  /** Larger originals are returned as headers only. */
  maxFull?: number;
}

const STATUS = /^[245]\.\d{1,3}\.\d{1,3}$/;
const PREAMBLE = 'This is a MIME-encapsulated message\n\n';

const SUBJECTS: Record<DsnKind, (o: DsnOptions) => string> = {
  failed: () => 'Returned mail: see transcript for details',
  delayed: (o) => `Warning: could not send message for past ${waited(o)}`,
  delivered: () => 'Return receipt',
};

/** The DSN as a complete message, LF line ends. */
export function buildDsn(opts: DsnOptions): Buffer {
  for (const r of opts.recipients) {
    if (!STATUS.test(r.status)) throw new Error(`buildDsn: "${r.status}" for ${r.final} is not an RFC 3463 status code`);
  }
  const original = normalizeLineEnds(opts.original);
  const returned = returnedPart(opts, original);
  const boundary = newBoundary(opts, original);
  const human = humanText(opts, returned.full ? undefined : returned.why);
  const parts: Array<[HeaderField[], Buffer]> = [
    [textHeaders(human), Buffer.from(human, 'utf8')],
    [[makeHeader('Content-Type', 'message/delivery-status'), makeHeader('Content-Description', 'Delivery report')], deliveryStatus(opts)],
    [returned.headers, returned.body],
  ];
  const chunks: Buffer[] = [serializeHeaders(topHeaders(opts, boundary)), Buffer.from('\n' + PREAMBLE)];
  for (const [headers, body] of parts) {
    chunks.push(Buffer.from(`--${boundary}\n`), serializeHeaders(headers), Buffer.from('\n'), body, Buffer.from('\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\n`));
  return Buffer.concat(chunks);
}

function oneLine(s: string): string {
  return s.replace(/[\x00-\x1f\x7f]+/g, ' ').replace(/ {2,}/g, ' ').trim();
}

function waited(o: DsnOptions): string {
  return oneLine(o.warnAfter ?? '') || formatInterval(o.now.getTime() - o.arrival.getTime());
}

function topHeaders(o: DsnOptions, boundary: string): HeaderField[] {
  const host = safeHost(o.hostname);
  return [
    makeHeader('From', `Mail Delivery Subsystem <MAILER-DAEMON@${host}>`),
    makeHeader('To', `<${oneLine(o.to).replace(/[<>\s]/g, '')}>`),
    makeHeader('Subject', SUBJECTS[o.kind](o)),
    makeHeader('Date', rfc5322Date(o.now)),
    makeHeader('Message-ID', newMessageId(o)),
    makeHeader('Auto-Submitted', 'auto-replied'), // RFC 3834 5: a response to a message
    makeHeader('MIME-Version', '1.0'),
    makeHeader('Content-Type', `multipart/report; report-type=delivery-status;\n\tboundary="${boundary}"`),
  ];
}

function textHeaders(text: string): HeaderField[] {
  const ascii = /^[\x00-\x7f]*$/.test(text);
  const headers = [makeHeader('Content-Type', `text/plain; charset=${ascii ? 'us-ascii' : 'utf-8'}`)];
  if (!ascii) headers.push(makeHeader('Content-Transfer-Encoding', '8bit'));
  headers.push(makeHeader('Content-Description', 'Notification'));
  return headers;
}

// ---------------------------------------------------------------- human part

const WARNING_BANNER = [
  '    **********************************************',
  '    **      THIS IS A WARNING MESSAGE ONLY      **',
  '    **  YOU DO NOT NEED TO RESEND YOUR MESSAGE  **',
  '    **********************************************',
  '',
];

const SECTIONS: Array<[string, (a: DsnAction) => boolean]> = [
  ['   ----- The following addresses had permanent fatal errors -----', (a) => a === 'failed'],
  ['   ----- The following addresses had transient non-fatal errors -----', (a) => a === 'delayed'],
  ['   ----- The following addresses had successful delivery notifications -----', (a) => a === 'delivered' || a === 'expanded'],
];

/** sendmail's errbody(): who, why, a transcript, and for a delay what happens next. */
function humanText(o: DsnOptions, note: string | undefined): string {
  const lines = o.kind === 'delayed' ? [...WARNING_BANNER] : [];
  lines.push(`The original message was received at ${rfc5322Date(o.arrival)}`, '');
  for (const [title, wanted] of SECTIONS) {
    const rs = o.recipients.filter((r) => wanted(r.action));
    if (rs.length === 0) continue;
    lines.push(title, ...rs.flatMap(recipientLines), '');
  }
  const transcript = o.recipients.filter((r) => r.action === 'failed' || r.action === 'delayed').flatMap(transcriptLines);
  if (o.kind === 'delayed') transcript.push(...delayLines(o));
  if (transcript.length) lines.push('   ----- Transcript of session follows -----', ...transcript, '');
  if (note) lines.push(note, '');
  return lines.join('\n');
}

function recipientLines(r: DsnRecipient): string[] {
  const who = `<${oneLine(r.final)}>`;
  const lines =
    r.action === 'failed' || r.action === 'delayed'
      ? [who, `    (reason: ${oneLine(r.remote ?? `${r.status} ${r.text}`)})`]
      : [`${who}  (${r.action === 'expanded' ? 'expanded by alias' : 'successfully delivered to mailbox'})`];
  const orig = r.original ? oneLine(r.original.replace(/^[A-Za-z0-9-]+;/, '')) : '';
  if (orig && orig !== r.final) lines.push(`    (expanded from: <${orig}>)`);
  return lines;
}

function transcriptLines(r: DsnRecipient): string[] {
  const lines: string[] = [];
  if (r.remoteMta) lines.push(`... while talking to ${oneLine(r.remoteMta)}:`);
  if (r.remote) lines.push(`<<< ${oneLine(r.remote)}`);
  const deferred = r.action === 'delayed' ? 'Deferred: ' : '';
  lines.push(`<${oneLine(r.final)}>... ${deferred}${oneLine(r.text)}`);
  return lines;
}

function delayLines(o: DsnOptions): string[] {
  const lines = [`Warning: message still undelivered after ${waited(o)}`];
  if (o.retryUntil) {
    lines.push(`Will keep trying until message is ${formatInterval(o.retryUntil.getTime() - o.arrival.getTime())} old`);
  }
  return lines;
}

// ---------------------------------------------------------------- machine part

/** RFC 3464 2.2 per-message fields, then one block per recipient (2.3). */
function deliveryStatus(o: DsnOptions): Buffer {
  const fields: HeaderField[] = [];
  const envid = o.envid === undefined ? '' : oneLine(o.envid);
  if (envid) fields.push(makeHeader('Original-Envelope-Id', envid));
  fields.push(makeHeader('Reporting-MTA', `dns; ${safeHost(o.hostname)}`));
  fields.push(makeHeader('Arrival-Date', rfc5322Date(o.arrival)));
  const blocks = [serializeHeaders(fields)];
  for (const r of o.recipients) blocks.push(Buffer.from('\n'), serializeHeaders(recipientFields(o, r)));
  return Buffer.concat(blocks);
}

/** "rfc822;user@host", keeping an address type the sender gave (ORCPT=rfc822;...). */
function typed(addr: string): string {
  const a = oneLine(addr);
  return /^[A-Za-z0-9-]+;/.test(a) ? a : `rfc822;${a}`;
}

function recipientFields(o: DsnOptions, r: DsnRecipient): HeaderField[] {
  const fields: HeaderField[] = [];
  if (r.original) fields.push(makeHeader('Original-Recipient', typed(r.original)));
  fields.push(makeHeader('Final-Recipient', typed(r.final)));
  fields.push(makeHeader('Action', r.action));
  fields.push(makeHeader('Status', r.status));
  if (r.remoteMta) fields.push(makeHeader('Remote-MTA', `dns; ${oneLine(r.remoteMta)}`));
  const diagnostic = r.remote ? `smtp; ${oneLine(r.remote)}` : r.text ? `X-Unix; ${oneLine(r.text)}` : '';
  if (diagnostic) fields.push(makeHeader('Diagnostic-Code', diagnostic));
  fields.push(makeHeader('Last-Attempt-Date', rfc5322Date(o.now)));
  if (r.action === 'delayed' && o.retryUntil) fields.push(makeHeader('Will-Retry-Until', rfc5322Date(o.retryUntil)));
  return fields;
}

// ---------------------------------------------------------------- returned message

interface Returned {
  full: boolean;
  headers: HeaderField[];
  body: Buffer;
  /** Why only the headers came back, for the human part. */
  why?: string;
}

function returnedPart(o: DsnOptions, original: Buffer): Returned {
  const tooBig = o.maxFull !== undefined && original.length > o.maxFull;
  if (o.kind === 'failed' && o.ret === 'full' && !tooBig) {
    const headers = [makeHeader('Content-Type', 'message/rfc822'), makeHeader('Content-Description', 'Undelivered Message')];
    if (hasEightBit(original)) headers.push(makeHeader('Content-Transfer-Encoding', '8bit'));
    return { full: true, headers, body: original };
  }
  const head = serializeHeaders(splitMessage(original).headers);
  const headers = [makeHeader('Content-Type', 'text/rfc822-headers'), makeHeader('Content-Description', 'Message Headers')];
  if (hasEightBit(head)) headers.push(makeHeader('Content-Transfer-Encoding', '8bit'));
  const why = tooBig ? `   ----- The message was ${original.length} octets, over the ${o.maxFull} returned in full; headers follow -----` : undefined;
  return { full: false, headers, body: head, why };
}

function hasEightBit(data: Buffer): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] > 0x7f) return true;
  return false;
}
