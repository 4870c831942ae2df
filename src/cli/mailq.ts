// mailq / sendmail -bp: the queue in sendmail 8's format:
//
//   /var/spool/mqueue is empty
//   		Total requests: 0
//
//   		/var/spool/mqueue (1 request)
//   -----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------
//   g752Uks025580*      598 Mon Aug  5 09:34 <root@host>
//                    (Deferred: Connection refused)
//                                            <u1@host>
//   		Total requests: 1
//
// '*' marks an entry being delivered. Colour only at a terminal (chalk, loaded
// on demand), never when piped or with NO_COLOR set.

import type { Config } from '../config/index.ts';
import { listQueue, type QueueListing } from '../queue/index.ts';
import type { QueueFilter } from './sendmail-args.ts';

const HEADING = '-----Q-ID----- --Size-- -----Q-Time----- ------------Sender/Recipient-----------';

interface Paint {
  id(s: string): string;
  reason(s: string): string;
  dim(s: string): string;
}

const plain: Paint = { id: (s) => s, reason: (s) => s, dim: (s) => s };

async function paintFor(stream: NodeJS.WriteStream): Promise<Paint> {
  if (!stream.isTTY || process.env.NO_COLOR) return plain;
  const { default: chalk } = await import('chalk');
  return { id: chalk.bold, reason: chalk.yellow, dim: chalk.dim };
}

function qtime(ms: number): string {
  // ctime(3)'s first 16 characters: "Mon Aug  5 09:34"
  const d = new Date(ms);
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][d.getDay()];
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][d.getMonth()];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${day} ${mon} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

function matches(q: QueueListing, filters: QueueFilter[]): boolean {
  const c = q.control;
  for (const f of filters) {
    const hay =
      f.kind === 'I' ? [q.id] : f.kind === 'S' ? [c?.sender ?? ''] : (c?.recipients ?? []).map((r) => r.address);
    const hit = hay.some((h) => h.toLowerCase().includes(f.substr.toLowerCase()));
    if (hit === f.negate) return false;
  }
  return true;
}

/** Pending recipients: those with a destination not yet crossed off. */
function pending(q: QueueListing): string[] {
  const c = q.control!;
  return c.recipients.filter((_, i) => !(c.journal.done.has(i) || c.journal.failed.has(i))).map((r) => r.address);
}

export function formatQueue(config: Config, entries: QueueListing[], paint: Paint = plain): string {
  const lines: string[] = [];
  if (entries.length === 0) {
    lines.push(`${config.queueDir} is empty`);
  } else {
    lines.push(`\t\t${config.queueDir} (${entries.length} request${entries.length === 1 ? '' : 's'})`, HEADING);
    for (const q of entries) {
      const c = q.control;
      if (!c) {
        lines.push(`${paint.id(q.id.padEnd(14))}? ${paint.reason('(unreadable control file)')}`);
        continue;
      }
      const mark = q.state === 'active' ? '*' : q.state === 'held' ? '-' : ' ';
      lines.push(`${paint.id(q.id.padEnd(14))}${mark}${String(c.size).padStart(8)} ${qtime(c.arrival)} <${c.sender}>`);
      if (q.state === 'held') lines.push(`${' '.repeat(17)}${paint.reason('(held)')}`);
      else if (c.reason) lines.push(`${' '.repeat(17)}${paint.reason(`(${c.reason})`)}`);
      const rcpts = pending(q);
      for (const r of rcpts.length ? rcpts : c.recipients.map((x) => x.address)) lines.push(`${' '.repeat(41)}<${r}>`);
    }
  }
  lines.push(`\t\tTotal requests: ${entries.length}`);
  return lines.join('\n') + '\n';
}

export async function printQueue(config: Config, filters: QueueFilter[]): Promise<number> {
  const entries = listQueue(config).filter((q) => q.state !== 'corrupt' && matches(q, filters));
  process.stdout.write(formatQueue(config, entries, await paintFor(process.stdout)));
  return 0;
}
