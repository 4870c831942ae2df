// Delivery status notifications (RFC 3464) queued as new messages: bounces,
// delay warnings and success notices. A DSN has the null sender, so it can
// never itself be bounced back and forth; when one fails it goes once to
// postmaster (a "double bounce", flag 'd'), and a failed double bounce is
// logged and kept corrupt-free but not re-sent (Postfix's rule), so no loop.

import type { Config } from '../config/index.ts';
import { buildDsn, newMessageId, rfc5322Date } from '../message/index.ts';
import type { Control } from './control.ts';
import { enqueue } from './enqueue.ts';
import type { QueueId } from './id.ts';

export interface DsnRecipient {
  original?: string;
  final: string;
  action: 'failed' | 'delayed' | 'delivered' | 'expanded';
  status: string;
  text: string;
  remote?: string;
  remoteMta?: string;
}

export const FLAG_DSN = 'b';
export const FLAG_DOUBLE = 'd';

/**
 * Queue a DSN about `c` to `to` (the sender, an owner- address, or postmaster).
 * Returns the new ID, or undefined when there is nobody to tell.
 */
export async function enqueueDsn(
  config: Config,
  c: Control,
  original: Buffer,
  kind: 'failed' | 'delayed' | 'delivered',
  to: string,
  recipients: DsnRecipient[],
  opts: { double?: boolean; now?: Date } = {},
): Promise<QueueId | undefined> {
  if (!to || recipients.length === 0) return undefined;
  const now = opts.now ?? new Date();
  const data = buildDsn({
    kind,
    hostname: config.hostname,
    queueId: c.id,
    to,
    envid: c.envid,
    arrival: new Date(c.arrival),
    now,
    ret: c.ret ?? 'full',
    original,
    warnAfter: kind === 'delayed' ? formatHours(now.getTime() - c.arrival) : undefined,
    retryUntil: kind === 'delayed' ? new Date(c.arrival + config.queueReturnMs) : undefined,
    recipients,
  });
  return enqueue(config, {
    sender: '',
    submitter: 'MAILER-DAEMON',
    recipients: [{ address: to }],
    data,
    flags: FLAG_DSN + (opts.double ? FLAG_DOUBLE : ''),
    arrival: now.getTime(),
  });
}

/**
 * Tell postmaster that a queue entry was found damaged and set aside (a run
 * never delivers a message it cannot vouch for). Sent as a DSN is, from the
 * null sender and never returned; a notice that cannot be queued is logged.
 */
export async function enqueueDamageNotice(config: Config, id: QueueId, why: string, where: string, c?: Control): Promise<QueueId> {
  const now = new Date();
  const envelope = c
    ? [`Sender: <${c.sender}>`, `Arrived: ${rfc5322Date(new Date(c.arrival))}`, ...c.recipients.map((r) => `Recipient: <${r.address}>`)]
    : ['The envelope could not be read.'];
  const text = [
    `From: Mail Delivery Subsystem <MAILER-DAEMON@${config.hostname}>`,
    `To: postmaster@${config.hostname}`,
    `Subject: Damaged queue entry ${id} set aside`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: ${newMessageId({ queueId: id, hostname: config.hostname, now })}`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `The queue entry ${id} on ${config.hostname} is damaged: ${why}.`,
    '',
    `It was not delivered and will not be tried again. It is kept as`,
    `${config.queueDir}/${where} for you to inspect; remove it when done.`,
    '',
    ...envelope,
    '',
  ].join('\n');
  return enqueue(config, {
    sender: '',
    submitter: 'MAILER-DAEMON',
    recipients: [{ address: `postmaster@${config.hostname}` }],
    data: Buffer.from(text),
    flags: FLAG_DSN + FLAG_DOUBLE,
    arrival: now.getTime(),
  });
}

function formatHours(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  if (h >= 1) return `${h} hour${h === 1 ? '' : 's'}`;
  const m = Math.max(1, Math.floor(ms / 60_000));
  return `${m} minute${m === 1 ? '' : 's'}`;
}
