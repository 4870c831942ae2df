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
import { eachQueueEntry, type QueueListing } from '../queue/index.ts';
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

/** One entry's lines, each ending in a newline. */
function formatEntry(q: QueueListing, paint: Paint): string {
  const c = q.control;
  if (!c) return `${paint.id(q.id.padEnd(14))}? ${paint.reason('(unreadable control file)')}\n`;
  const mark = q.state === 'active' ? '*' : q.state === 'held' ? '-' : ' ';
  let out = `${paint.id(q.id.padEnd(14))}${mark}${String(c.size).padStart(8)} ${qtime(c.arrival)} <${c.sender}>\n`;
  if (q.state === 'held') out += `${' '.repeat(17)}${paint.reason('(held)')}\n`;
  else if (c.reason) out += `${' '.repeat(17)}${paint.reason(`(${c.reason})`)}\n`;
  const rcpts = pending(q);
  for (const r of rcpts.length ? rcpts : c.recipients.map((x) => x.address)) out += `${' '.repeat(41)}<${r}>\n`;
  return out;
}

function heading(config: Config, n: number): string {
  return n === 0 ? `${config.queueDir} is empty\n` : `\t\t${config.queueDir} (${n} request${n === 1 ? '' : 's'})\n${HEADING}\n`;
}

/** The whole listing as text (for tests; printQueue streams it). */
export function formatQueue(config: Config, entries: QueueListing[], paint: Paint = plain): string {
  return heading(config, entries.length) + entries.map((q) => formatEntry(q, paint)).join('') + `\t\tTotal requests: ${entries.length}\n`;
}

/**
 * sendmail's way: the heading counts the entries the directory scan found,
 * then each is read and printed as it comes (one that went meanwhile is
 * skipped, and the total at the end says how many were shown), so that a
 * queue of 100,000 entries is never held in memory. With -qR or -qS the
 * entries are read first, to count the ones that match.
 */
export async function printQueue(config: Config, filters: QueueFilter[]): Promise<number> {
  const paint = await paintFor(process.stdout);
  const out = new Output();
  if (filters.length) {
    const shown = [...wanted(eachQueueEntry(config), filters)];
    await out.write(formatQueue(config, shown, paint));
    return out.end();
  }
  const entries = eachQueueEntry(config);
  const first = entries.next();
  const count = first.done ? 0 : first.value.count;
  await out.write(heading(config, count));
  let n = 0;
  for (let r = first; !r.done; r = entries.next()) {
    if (r.value.state === 'corrupt') continue;
    n++;
    await out.write(formatEntry(r.value, paint));
  }
  await out.write(`\t\tTotal requests: ${n}\n`);
  return out.end();
}

/** stdout in pieces of about 256 KB, waiting when a slow reader lets them pile up. */
class Output {
  private piece = '';

  async write(s: string): Promise<void> {
    this.piece += s;
    if (this.piece.length < 1 << 18) return;
    this.flushPiece();
    if (process.stdout.writableLength > 1 << 20) await new Promise((r) => process.stdout.once('drain', r));
  }

  private flushPiece(): void {
    process.stdout.write(this.piece);
    this.piece = '';
  }

  end(): number {
    this.flushPiece();
    return 0;
  }
}

function* wanted(entries: Iterable<QueueListing>, filters: QueueFilter[]): Generator<QueueListing> {
  for (const q of entries) if (q.state !== 'corrupt' && matches(q, filters)) yield q;
}
