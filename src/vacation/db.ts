// vacation's memory of whom it answered: ~/.vacation.db, a text file of one
// record a line, owned and written by the user (vacation runs as the user).
// Guarantees: a sender is answered at most once per interval, also when two
// messages arrive at once, because every read-check-write happens under the
// mbox dotlock convention (FILE.lock, src/mailbox/dotlock.ts) and the file is
// replaced whole by a rename. Records older than the interval are dropped on
// each write, so the file stays the size of the interval's senders.
//
//   # mailtk vacation database
//   interval 604800          seconds, or "infinite" (set by vacation -i -r)
//   exclude @example.org     never answered (vacation -x)
//   reply alice@mail.test 1765000000   answered at this Unix time
//
// Known limit: sendmail's vacation keeps a Berkeley DB; this file is not one,
// so `vacation -l` of another implementation does not read it.

import fs from 'node:fs';
import { acquireDotlock, replaceFile } from '../mailbox/index.ts';
import { splitAddress } from '../message/address.ts';

export const FOREVER = 'infinite';
/** Seconds between two replies to one sender; FOREVER answers each sender once. */
export type Interval = number | typeof FOREVER;
/** vacation(1)'s default: one week. */
export const DEFAULT_INTERVAL: Interval = 7 * 24 * 60 * 60;

export interface VacationDb {
  /** Stored by `vacation -i -r N`; undefined means the default. */
  interval?: Interval;
  /** Lower-cased addresses, or @domain for a whole domain. */
  excluded: string[];
  /** Lower-cased sender -> Unix seconds of the last reply. */
  replies: Map<string, number>;
}

export function emptyDb(interval?: Interval): VacationDb {
  return { interval, excluded: [], replies: new Map() };
}

/** Lenient: a line it cannot read is skipped, so a damaged file costs at most a second reply. */
export function parseDb(text: string): VacationDb {
  const db = emptyDb();
  for (const line of text.split('\n')) {
    const [kind, ...rest] = line.trim().split(/\s+/);
    if (kind === 'interval' && rest.length === 1) {
      db.interval = rest[0] === FOREVER ? FOREVER : /^\d+$/.test(rest[0]) ? Number(rest[0]) : undefined;
    } else if (kind === 'exclude' && rest.length === 1) {
      db.excluded.push(rest[0].toLowerCase());
    } else if (kind === 'reply' && rest.length === 2 && /^\d+$/.test(rest[1])) {
      db.replies.set(rest[0].toLowerCase(), Number(rest[1]));
    }
  }
  return db;
}

export function formatDb(db: VacationDb): string {
  const lines = ['# mailtk vacation database: see vacation(1)'];
  if (db.interval !== undefined) lines.push(`interval ${db.interval}`);
  for (const x of db.excluded) lines.push(`exclude ${x}`);
  for (const [who, at] of db.replies) lines.push(`reply ${who} ${at}`);
  return lines.join('\n') + '\n';
}

/** An address the file can hold as one word: no white space or control characters. */
export function isStorable(address: string): boolean {
  return address !== '' && !/[\s\x00-\x1f\x7f]/.test(address);
}

export function isExcluded(db: VacationDb, sender: string): boolean {
  const who = sender.toLowerCase();
  const domain = splitAddress(who).domain;
  return db.excluded.some((x) => x === who || (x.startsWith('@') && domain !== '' && x.slice(1) === domain));
}

/** Answered within the interval (0: never counts; FOREVER: ever). */
export function repliedRecently(db: VacationDb, sender: string, now: number, interval: Interval): boolean {
  const at = db.replies.get(sender.toLowerCase());
  if (at === undefined) return false;
  return interval === FOREVER || now - at < interval;
}

/** Forget replies that no longer hold anyone back. */
export function prune(db: VacationDb, now: number, interval: Interval): void {
  if (interval === FOREVER) return;
  for (const [who, at] of db.replies) if (now - at >= interval) db.replies.delete(who);
}

function readDb(file: string): VacationDb {
  try {
    return parseDb(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyDb();
    throw e;
  }
}

/**
 * Read the database under its lock, let `change` look and change it, and
 * write it back when `change` returns true. The lock is held until the
 * returned promise settles, `change`'s own work (sending the reply) included.
 */
export async function updateDb(file: string, change: (db: VacationDb) => Promise<boolean> | boolean): Promise<void> {
  const lock = await acquireDotlock(file);
  try {
    const db = readDb(file);
    if (await change(db)) replaceFile(file, formatDb(db), 0o600);
  } finally {
    lock.release();
  }
}

/** The database as it stands, for `vacation -l`. */
export function loadDb(file: string): VacationDb {
  return readDb(file);
}
