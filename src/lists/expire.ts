// The lists' periodic work, done by the queue runner's full runs (the
// daemon's, `sendmail -q`), not by a daemon of its own: confirmations nobody
// answered within list_pending_expire are dropped (the request is as if never
// made), held posts nobody approved within list_held_expire are discarded
// and their posters told, and bounce counts with no bounce for
// list_bounce_stale_after are forgotten (members.ts). Times come from the
// run's clock. Costs a directory read of each list's pending/ and held/ a
// run, and one read of its bounces file.

import { type Config, formatDuration } from '../config/index.ts';
import { log } from '../log/index.ts';
import { getHeader, splitMessage } from '../message/index.ts';
import type { QueueId } from '../queue/index.ts';
import { notice } from './handle.ts';
import { dropStaleBounces } from './members.ts';
import { allLists, bounceStaleAfter, dropExpiredPending, expiredHeld, heldTtl, readSettings, takeHeld } from './store.ts';

/** Expire what is due in every list; returns the notices queued (the run delivers them). */
export async function expireLists(config: Config, now: number): Promise<QueueId[]> {
  const queued: QueueId[] = [];
  for (const name of allLists(config)) {
    try {
      queued.push(...(await expireList(config, name, now)));
    } catch (e) {
      log(config, '', `SYSERR: list ${name}: periodic work failed: ${(e as Error).message}`);
    }
  }
  return queued;
}

async function expireList(config: Config, name: string, now: number): Promise<QueueId[]> {
  const queued: QueueId[] = [];
  const dropped = dropExpiredPending(config, name, now);
  for (const d of dropped) log(config, '', `list ${name}: confirmation ${d.token} expired${d.pending ? ` (${d.pending.action} ${d.pending.address})` : ''}`);
  const expired = expiredHeld(config, name, now);
  if (expired.length) {
    const s = readSettings(config, name);
    for (const token of expired) {
      const held = takeHeld(config, name, token);
      if (!held) continue; // decided meanwhile
      const subject = getHeader(splitMessage(held.data).headers, 'Subject') ?? '(no subject)';
      log(config, '', `list ${name}: held post ${token} from <${held.sender}> expired after ${formatDuration(heldTtl(config))}; discarded`);
      if (!held.sender) continue;
      queued.push(
        ...(await notice(config, s, [held.sender], {
          subject: `${name}: your post was not approved`,
          body: [
            `Your post to ${name} was held for the owners, who did not approve it`,
            `within ${formatDuration(heldTtl(config))}. It has been discarded.`,
            '',
            `  Subject: ${subject.replace(/[\r\n]+/g, ' ')}`,
          ],
        })),
      );
    }
  }
  for (const a of await dropStaleBounces(config, name, now)) log(config, '', `list ${name}: bounce count of ${a} forgotten (no bounce for ${formatDuration(bounceStaleAfter(config))})`);
  return queued;
}
