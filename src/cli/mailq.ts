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
// '*' marks an entry being delivered, '!' one an administrator holds
// (Postfix's marks; `mailtk queue hold`). Colour only at a terminal (chalk,
// loaded on demand), never when piped or with NO_COLOR set. `mailtk queue
// list --json` prints the same rows (QueueRow) as JSON: one model, two forms.

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

/** One entry as the listing shows it, in text or JSON. */
export interface QueueRow {
  id: string;
  state: QueueListing['state'];
  /** Absent when the entry's file cannot be read. */
  size?: number;
  /** Arrival, ms since the epoch. */
  arrival?: number;
  sender?: string;
  /** The line in parentheses: "held", or the last deferral's reason. */
  status?: string;
  /** Recipients still to deliver (all of them when none is crossed off). */
  recipients: string[];
}

export function queueRow(q: QueueListing): QueueRow {
  const c = q.control;
  if (!c) return { id: q.id, state: q.state, status: 'unreadable control file', recipients: [] };
  const rcpts = pending(q);
  return {
    id: q.id,
    state: q.state,
    size: c.size,
    arrival: c.arrival,
    sender: c.sender,
    status: q.state === 'held' ? 'held' : c.reason || undefined,
    recipients: rcpts.length ? rcpts : c.recipients.map((x) => x.address),
  };
}

const MARK: Partial<Record<QueueListing['state'], string>> = { active: '*', held: '!' };

/** One entry's lines, each ending in a newline. */
function formatEntry(r: QueueRow, paint: Paint): string {
  if (r.size === undefined) return `${paint.id(r.id.padEnd(14))}? ${paint.reason(`(${r.status})`)}\n`;
  let out = `${paint.id(r.id.padEnd(14))}${MARK[r.state] ?? ' '}${String(r.size).padStart(8)} ${qtime(r.arrival!)} <${r.sender}>\n`;
  if (r.status) out += `${' '.repeat(17)}${paint.reason(`(${r.status})`)}\n`;
  for (const a of r.recipients) out += `${' '.repeat(41)}<${a}>\n`;
  return out;
}

function heading(config: Config, n: number): string {
  return n === 0 ? `${config.queueDir} is empty\n` : `\t\t${config.queueDir} (${n} request${n === 1 ? '' : 's'})\n${HEADING}\n`;
}

/** The whole listing as text (for tests; printQueue streams it). */
export function formatQueue(config: Config, entries: QueueListing[], paint: Paint = plain): string {
  return heading(config, entries.length) + entries.map((q) => formatEntry(queueRow(q), paint)).join('') + `\t\tTotal requests: ${entries.length}\n`;
}

/**
 * sendmail's way: the heading counts the entries the directory scan found,
 * then each is read and printed as it comes (one that went meanwhile is
 * skipped, and the total at the end says how many were shown), so that a
 * queue of 100,000 entries is never held in memory. With -qR or -qS the
 * entries are read first, to count the ones that match. `json` prints the
 * same rows as one JSON document, streamed the same way:
 * {"queue": dir, "entries": [QueueRow...], "total": n}.
 */
export async function printQueue(config: Config, filters: QueueFilter[], form: 'text' | 'json' = 'text'): Promise<number> {
  const paint = form === 'json' ? plain : await paintFor(process.stdout);
  const out = new Output();
  const shown = filters.length ? [...wanted(eachQueueEntry(config), filters)] : undefined;
  const rows: Iterator<QueueListing> = shown ? shown.values() : eachQueueEntry(config);
  const first = rows.next();
  const count = shown ? shown.length : first.done ? 0 : first.value.count;
  await out.write(form === 'json' ? `{"queue":${JSON.stringify(config.queueDir)},"entries":[` : heading(config, count));
  let n = 0;
  for (let r = first; !r.done; r = rows.next()) {
    if (r.value.state === 'corrupt') continue;
    const row = queueRow(r.value);
    await out.write(form === 'json' ? `${n ? ',' : ''}\n${JSON.stringify(row)}` : formatEntry(row, paint));
    n++;
  }
  await out.write(form === 'json' ? `\n],"total":${n}}\n` : `\t\tTotal requests: ${n}\n`);
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
