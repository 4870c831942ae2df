// What the queue runner does with a Sieve Verdict once the user's agent has
// filed the message: a reject becomes this recipient's permanent failure
// (5.7.1 with the script's reason), so the sender gets the usual DSN (RFC 5429
// 2.1 allows a DSN where no MDN is made); each redirect is a new queue entry
// with the original envelope sender (RFC 5228 4.2) and one hop more; a
// vacation reply goes from the null sender (RFC 5230 5, RFC 3834 3.3). The
// new entries go through enqueue(), the queue's one commit path, as the
// runner's own DSNs do, and are delivered by the same run.

import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import type { DeliveryStatus } from '../message/status.ts';
import { enqueue } from '../queue/index.ts';
import type { Verdict } from './deliver.ts';

export interface VerdictContext {
  config: Config;
  id: string;
  sender: string;
  hops: number;
  /** The user whose script decided (the submitter of what it sends). */
  user: string;
  data: Buffer;
}

/**
 * The recipient's result, after queueing what the verdict sends; the new IDs go to `made`.
 * The message is filed already: a redirect or reply that cannot be queued is logged, not retried.
 */
export async function applyVerdict(x: VerdictContext, v: Verdict | undefined, made: string[]): Promise<DeliveryStatus | 'ok'> {
  if (!v) return 'ok';
  try {
    await send(x, v, made);
  } catch (e) {
    log(x.config, x.id, `SYSERR: sieve: cannot queue what ${x.user}'s script sends: ${(e as Error).message}`);
  }
  if (v.reject !== undefined) {
    log(x.config, x.id, `sieve: ${x.user} rejected the message`);
    return { status: '5.7.1', text: `rejected by the recipient's filter: ${v.reject.replace(/\s+/g, ' ').trim().slice(0, 400)}` };
  }
  return 'ok';
}

async function send(x: VerdictContext, v: Verdict, made: string[]): Promise<void> {
  for (const to of v.redirect) {
    const id = await enqueue(x.config, { sender: x.sender, submitter: x.user, recipients: [{ address: to }], data: x.data, hops: x.hops + 1 });
    log(x.config, x.id, `sieve: ${x.user} redirected to <${to}> as ${id}`);
    made.push(id);
  }
  if (v.reply && x.sender) {
    const data = Buffer.from(v.reply.data.buffer, v.reply.data.byteOffset, v.reply.data.byteLength);
    const id = await enqueue(x.config, { sender: '', submitter: x.user, recipients: [{ address: v.reply.to }], data, hops: x.hops + 1 });
    log(x.config, x.id, `sieve: ${x.user} vacation reply to <${v.reply.to}> as ${id}`);
    made.push(id);
  }
}
