// Delivery status notifications (RFC 3464) queued as new messages: bounces,
// delay warnings and success notices. A DSN has the null sender, so it can
// never itself be bounced back and forth; when one fails it goes once to
// postmaster (a "double bounce", flag 'd'), and a failed double bounce is
// logged and kept corrupt-free but not re-sent (Postfix's rule), so no loop.

import type { Config } from '../config/index.ts';
import { buildDsn } from '../message/index.ts';
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
  opts: { double?: boolean } = {},
): Promise<QueueId | undefined> {
  if (!to || recipients.length === 0) return undefined;
  const now = new Date();
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
  });
}

function formatHours(ms: number): string {
  const h = Math.floor(ms / 3_600_000);
  if (h >= 1) return `${h} hour${h === 1 ? '' : 's'}`;
  const m = Math.max(1, Math.floor(ms / 60_000));
  return `${m} minute${m === 1 ? '' : 's'}`;
}
