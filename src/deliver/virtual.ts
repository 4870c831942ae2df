// Delivery to a virtual user's mailbox (src/virtual). The mailbox belongs to
// mail_owner, which the queue runner already is as root's daemon: so the
// runner writes it itself and no per-user agent is started (least privilege:
// no root process touches it). Under a quota (quota_file), one message at a
// time, so those that fit go in and the rest defer or bounce
// (quota_exceeded), the check made by the mailbox writer under the lock; a
// crossing of quota_warn_percent adds one warning message (virtual/quota.ts).
// The user's active Sieve script (home/.sieve, as ManageSieve or `mailtk
// sieve` set it) runs here too, as mail_owner, the mailbox's owner; each
// message's Verdict goes to onVerdict for the runner (src/sieve).

import type { Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import { log } from '../log/index.ts';
import { type MboxMessage, type PlacedMessage, appendToMbox } from '../mailbox/index.ts';
import { type DeliveryStatus, statusOf } from '../message/status.ts';
import { deliverFiltered, type Verdict } from '../sieve/index.ts';
import { mailboxQuota } from '../virtual/quota.ts';
import type { LocalAgent } from './local-agent.ts';

/** Each message's outcome, in order; beforeWrite gets the indexes of the messages a write holds and their places. */
export async function deliverToVirtual(
  config: Config,
  user: User,
  messages: MboxMessage[],
  agent: LocalAgent,
  beforeWrite: (which: number[], placed: PlacedMessage[]) => void,
  onVerdict: (i: number, v: Verdict | undefined) => void = () => undefined,
): Promise<Array<DeliveryStatus | 'ok'>> {
  const euid = process.geteuid?.();
  const here = euid === undefined || euid === 0 || euid === user.uid;
  const warnings: MboxMessage[] = [];
  const quota = mailboxQuota(config, user, (w) => warnings.push(w));
  const groups = quota ? messages.map((_, i) => [i]) : [messages.map((_, i) => i)];
  const out: Array<DeliveryStatus | 'ok'> = [];
  for (const which of groups) {
    const batch = which.map((i) => messages[i]);
    const placed = (p: PlacedMessage[]) => beforeWrite(which, p);
    try {
      const verdicts = here ? await deliverFiltered(config, user, batch, placed, quota) : await agent.appendToMbox(config, user, batch, placed);
      which.forEach((i, j) => onVerdict(i, verdicts[j]));
      for (const i of which) out[i] = 'ok';
    } catch (err) {
      for (const i of which) out[i] = statusOf(err);
    }
  }
  for (const w of warnings) {
    try {
      await appendToMbox(config, user, [w]);
      log(config, '', `${user.name}: quota warning delivered (quota_warn_percent ${config.raw.quota_warn_percent})`);
    } catch (err) {
      log(config, '', `${user.name}: quota warning not delivered: ${(err as Error).message}`);
    }
  }
  return out;
}
