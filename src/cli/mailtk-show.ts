// `mailtk queue show ID`: one entry as an administrator reads it (Postfix's
// postcat -q): where it is and in what state, its envelope (sender,
// recipients and how far each got, attempts, next try, last reason), then
// the message; --headers stops after the message's header, --json prints
// the same as one JSON object.

import type { Config } from '../config/index.ts';
import { EX, MailError, splitMessage } from '../message/index.ts';
import { type Control, type FoundEntry, findEntry, isQueueId } from '../queue/index.ts';

interface ShownRecipient {
  address: string;
  orcpt?: string;
  notify?: string;
  /** delivered: every destination crossed off; failed: bounced; pending: still to try. */
  status: 'pending' | 'delivered' | 'failed';
}

interface Shown {
  id: string;
  state: string;
  file: string;
  damage?: string;
  arrival?: string;
  sender?: string;
  submitter?: string;
  size?: number;
  attempts?: number;
  lastAttempt?: string;
  nextTry?: string;
  reason?: string;
  recipients: ShownRecipient[];
  message?: string;
}

const iso = (ms: number) => new Date(ms).toISOString();

function recipientsOf(c: Control): ShownRecipient[] {
  return c.recipients.map((r, i) => ({
    address: r.address,
    orcpt: r.orcpt,
    notify: r.notify,
    status: c.journal.failed.has(i) ? 'failed' : c.journal.done.has(i) ? 'delivered' : 'pending',
  }));
}

/** The header fields of a message, without the empty line after them. */
function headerOf(message: Buffer): Buffer {
  const { headerBytes, separator } = splitMessage(message);
  return message.subarray(0, headerBytes - separator.length);
}

function shown(f: FoundEntry, headersOnly: boolean): Shown {
  const out: Shown = { id: f.id, state: f.state, file: f.file, damage: f.damage, recipients: [] };
  const e = f.entry;
  if (!e) return out;
  const c = e.control;
  Object.assign(out, {
    arrival: iso(c.arrival),
    sender: c.sender,
    submitter: c.submitter,
    size: c.size,
    attempts: c.attempts,
    lastAttempt: c.lastAttempt ? iso(c.lastAttempt) : undefined,
    nextTry: f.state === 'held' || f.state === 'corrupt' ? undefined : iso(f.nextTry),
    reason: c.reason,
    recipients: recipientsOf(c),
  });
  if (e.data) out.message = (headersOnly ? headerOf(e.data) : e.data).toString('utf8');
  return out;
}

function formatShown(s: Shown): string {
  const rows: Array<[string, string | number | undefined]> = [
    ['Queue-ID', s.id],
    ['State', s.state],
    ['File', s.file],
    ['Damage', s.damage],
    ['Arrival', s.arrival],
    ['Sender', s.sender === undefined ? undefined : `<${s.sender}>`],
    ['Submitter', s.submitter],
    ['Size', s.size],
    ['Attempts', s.attempts],
    ['Last-Attempt', s.lastAttempt],
    ['Next-Try', s.nextTry],
    ['Reason', s.reason],
    ...s.recipients.map((r): [string, string] => ['Recipient', `<${r.address}> ${r.status}${r.orcpt ? ` orcpt=${r.orcpt}` : ''}${r.notify ? ` notify=${r.notify}` : ''}`]),
  ];
  const head = rows.filter(([, v]) => v !== undefined).map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`).join('\n');
  return s.message === undefined ? `${head}\n` : `${head}\n\n${s.message}${s.message.endsWith('\n') ? '' : '\n'}`;
}

export function showEntry(config: Config, id: string, o: { json: boolean; headersOnly: boolean }): number {
  const bare = id.replace(/[*!]$/, '');
  if (!isQueueId(bare)) throw new MailError('usage', `queue show: "${id}" is not a queue ID (14 letters and digits, as mailq shows them)`);
  const f = findEntry(config, bare);
  if (!f) throw new MailError('no-input', `queue show: ${bare}: no such entry in ${config.queueDir} (delivered or deleted?); mailq lists the entries`);
  const s = shown(f, o.headersOnly);
  process.stdout.write(o.json ? JSON.stringify(s, null, 2) + '\n' : formatShown(s));
  return EX.OK;
}
