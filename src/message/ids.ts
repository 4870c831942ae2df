// Names we make up: Message-IDs (RFC 5322 3.6.4) and MIME boundaries
// (RFC 2046 5.1.1), and the cleaning of the host names and queue IDs
// that go into them. Guarantees: the results hold only characters their
// grammar allows, whatever the inputs hold, so they can never break a
// header line; the random part keeps them unique when a queue ID recurs.

import { randomBytes } from 'node:crypto';

/** A host name for a header: letters, digits, '.', '-', '_', and [IPv6:...] literals. */
export function safeHost(host: string): string {
  return host.replace(/[^A-Za-z0-9.\-_[\]:]/g, '') || 'localhost';
}

/** Queue IDs are alphanumeric (sendmail's are); anything else is dropped. */
export function safeQueueId(id: string): string {
  return id.replace(/[^A-Za-z0-9]/g, '') || 'NOQUEUE';
}

/** "20261122000344": the UTC time, to the second. */
function utcStamp(now: Date): string {
  return now.toISOString().replace(/\D/g, '').slice(0, 14);
}

/**
 * <QUEUEID.YYYYMMDDhhmmss.RANDOM@host>: the queue ID is unique among live
 * queue entries; the UTC time and 6 random hex digits keep the ID unique
 * once a queue ID is reused. (sendmail writes <$t.$i@$j>: the same parts.)
 */
export function newMessageId(opts: { queueId: string; hostname: string; now: Date }): string {
  const host = safeHost(opts.hostname).replace(/[[\]:]/g, '') || 'localhost';
  return `<${safeQueueId(opts.queueId)}.${utcStamp(opts.now)}.${randomBytes(3).toString('hex')}@${host}>`;
}

/**
 * A boundary in sendmail's style, "ID.TIME.RANDOM/host", at most 70
 * characters, and not found anywhere in `avoid` (the enclosed message).
 */
export function newBoundary(opts: { queueId: string; hostname: string; now: Date }, avoid: Buffer): string {
  const host = opts.hostname.replace(/[^A-Za-z0-9.-]/g, '');
  for (;;) {
    const random = randomBytes(6).toString('hex');
    const b = `${safeQueueId(opts.queueId).slice(0, 20)}.${Math.floor(opts.now.getTime() / 1000)}.${random}/${host}`.slice(0, 70);
    if (!avoid.includes('--' + b)) return b;
  }
}
