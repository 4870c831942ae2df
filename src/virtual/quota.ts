// Quotas of virtual users, as the queue runner applies them: the limits of
// quota_file turned into the mailbox writer's MboxQuota (checked there under
// the mailbox lock, against the file as it is, so space freed by a POP3 or
// IMAP deletion counts at once), quota_exceeded's choice of 4.2.2 or 5.2.2,
// and quota_warn_percent's warning: one message when a delivery takes usage
// (bytes or messages) from below the percentage to it or above; another only
// after usage has fallen below and crossed again. The warning is written
// straight into the mailbox (Dovecot's quota_warning does the same through
// its LDA), exempt from the quota, so it can neither bounce nor loop.
// Known limit: counting messages reads the whole mbox (a scan for From_
// lines), only when the quota limits messages.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import type { MboxMessage, MboxQuota, MboxUsage } from '../mailbox/index.ts';
import { mboxPath } from '../mailbox/index.ts';
import { rfc5322Date } from '../message/date.ts';
import { newMessageId } from '../message/ids.ts';
import { type Quota, quotaOf } from './tables.ts';

/** The writer's quota for a virtual user, or undefined (no quota, or not a virtual user). */
export function mailboxQuota(config: Config, user: User, onCross: (warning: MboxMessage) => void): MboxQuota | undefined {
  if (!user.name.includes('@')) return undefined;
  const q = quotaOf(config, user.name);
  if (!q || (q.bytes === 0 && q.messages === 0)) return undefined;
  const percent = Number(config.raw.quota_warn_percent);
  return {
    bytes: q.bytes,
    messages: q.messages,
    bounce: config.raw.quota_exceeded === 'bounce',
    used: (before, after) => {
      if (crossed(q, percent, before, after)) onCross(warningMessage(config, user, q, after, percent));
    },
  };
}

/** True when usage went from below `percent` of a limit to at or above it. */
export function crossed(q: Pick<Quota, 'bytes' | 'messages'>, percent: number, before: MboxUsage, after: MboxUsage): boolean {
  if (percent <= 0) return false;
  const over = (used: number, limit: number) => limit > 0 && used * 100 >= limit * percent;
  return (over(after.bytes, q.bytes) && !over(before.bytes, q.bytes)) || (over(after.messages, q.messages) && !over(before.messages, q.messages));
}

/** True when a virtual user's mailbox is at its byte limit already (what SMTP can know at RCPT without reading it). */
export function mailboxFull(config: Config, name: string): boolean {
  const q = quotaOf(config, name);
  return q !== undefined && q.bytes > 0 && mailboxBytes(config, name) >= q.bytes;
}

/** The usage of a virtual user's mailbox in bytes (messages are counted only by the writer). */
export function mailboxBytes(config: Config, name: string): number {
  try {
    return fs.statSync(mboxPath(config, name)).size;
  } catch {
    return 0;
  }
}

/** The warning itself, from MAILER-DAEMON, marked auto-generated (RFC 3834) so no responder answers it. */
export function warningMessage(config: Config, user: User, q: Quota, usage: MboxUsage, percent: number): MboxMessage {
  const now = new Date();
  const host = config.hostname;
  const of = (used: number, limit: number, unit: string) => (limit > 0 ? `${used} of ${limit} ${unit} (${Math.floor((used * 100) / limit)}%)` : '');
  const lines = [
    `From: Mail Delivery Subsystem <MAILER-DAEMON@${host}>`,
    `To: <${user.name}>`,
    `Subject: Your mailbox is ${percent}% full`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: ${newMessageId({ queueId: 'quota', hostname: host, now })}`,
    'Auto-Submitted: auto-generated',
    'Precedence: bulk',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `Your mailbox ${user.name} now uses ${[of(usage.bytes, q.bytes, 'bytes'), of(usage.messages, q.messages, 'messages')].filter(Boolean).join(' and ')}.`,
    'When it is full, new mail to you will not be delivered.',
    'Please delete messages you no longer need.',
    '',
  ];
  return { sender: '', recipient: user.name, data: Buffer.from(lines.join('\n')) };
}
