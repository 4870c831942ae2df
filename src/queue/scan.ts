// Reading the queue without changing it: the entries a run should take, in
// arrival order (IDs sort by arrival to the millisecond, see id.ts), and the
// listing mailq prints. A run decides whether an entry is due from its
// control file's mtime, the next try time (transition.defer sets it), so
// a queue of deferred mail costs a stat an entry, not a read.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { DamagedEntry, type EntryFile, readEntry, readMessage } from './entry-file.ts';
import { type Control, ControlParseError } from './control.ts';
import { holderAlive } from './entry-lock.ts';
import type { QueueId } from './id.ts';
import { CORRUPT_DIR, HOLD_DIR, PICKUP_DIR, PREFIX, type QueueState } from './state.ts';
import { queuePath } from './files.ts';

export interface QueueListing {
  id: QueueId;
  state: QueueState;
  control?: Control; // absent when unreadable (corrupt)
  /** How many entries the directory scan found (queue_dir and hold/), for a heading printed before reading them. */
  count: number;
}

/** The queue directory's names; none when it does not exist yet. */
function queueNames(config: Config): string[] {
  try {
    return fs.readdirSync(config.queueDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

function isControlName(n: string): boolean {
  return n.startsWith(PREFIX.control) && !n.endsWith('.lock');
}

/** A tf<ID> this old was left by a writer that died before its commit point. */
export const UNCOMMITTED_MS = 3600 * 1000;

/**
 * One look at the queue directory for a run: the committed entries in
 * arrival order (with `now`, only those whose next try has come: mtime at or
 * before it), and the IDs of uncommitted files a dead writer left.
 */
export function scanQueue(config: Config, now?: number): { ids: QueueId[]; abandoned: QueueId[] } {
  const ids: QueueId[] = [];
  const abandoned: QueueId[] = [];
  const dir = config.queueDir + path.sep;
  for (const n of queueNames(config)) {
    if (n.startsWith(PREFIX.temp)) {
      const st = fs.lstatSync(dir + n, { throwIfNoEntry: false });
      if (st && Date.now() - st.mtimeMs > UNCOMMITTED_MS) abandoned.push(n.slice(PREFIX.temp.length));
      continue;
    }
    if (!isControlName(n)) continue;
    if (now === undefined) {
      ids.push(n.slice(PREFIX.control.length));
      continue;
    }
    const st = fs.lstatSync(dir + n, { throwIfNoEntry: false }); // undefined: finished meanwhile
    // mtime holds the next try to the millisecond (utimes through a float may read back a hair above it).
    if (st && Math.floor(st.mtimeMs) <= now) ids.push(n.slice(PREFIX.control.length));
  }
  return { ids: ids.sort(), abandoned };
}

/** IDs of committed entries (qf), in arrival order. */
export function listQueueIds(config: Config): QueueId[] {
  return scanQueue(config).ids;
}

/** IDs of committed entries whose next try has come, in arrival order. */
export function dueQueueIds(config: Config, now: number): QueueId[] {
  return scanQueue(config, now).ids;
}

/** True while a live process holds the entry's lock (entry-lock.ts). */
export function isLocked(config: Config, id: QueueId): boolean {
  return holderAlive(queuePath(config, PREFIX.control, id) + '.lock');
}

/** The entries in queue_dir/hold, by file name; none when the folder was never made. */
function heldNames(config: Config): string[] {
  try {
    return fs.readdirSync(path.join(config.queueDir, HOLD_DIR)).filter(isControlName);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

const byId = (a: string, b: string) => (a.slice(2) < b.slice(2) ? -1 : a.slice(2) > b.slice(2) ? 1 : 0);

/**
 * Every entry with its state, for mailq, in arrival order, read one at a
 * time: queued, deferred (tried before), active (a live lock) and held
 * (queue_dir/hold). Entries that vanish are skipped.
 */
export function* eachQueueEntry(config: Config): Generator<QueueListing> {
  const all = queueNames(config);
  // Locks are few: known from the listing, so an entry without one costs no lookup.
  const locks = new Set(all.filter((n) => n.endsWith('.lock')));
  const names: Array<[string, string]> = [
    ...all.filter(isControlName).map((n): [string, string] => [n, config.queueDir]),
    ...heldNames(config).map((n): [string, string] => [n, path.join(config.queueDir, HOLD_DIR)]),
  ].sort((a, b) => byId(a[0], b[0]));
  for (const [n, dir] of names) {
    const id = n.slice(2);
    let control: Control | undefined;
    try {
      control = readEntry(path.join(dir, n)).control;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
    }
    let state: QueueState = dir === config.queueDir ? 'queued' : 'held';
    if (state === 'queued') {
      if (locks.has(`${n}.lock`) && isLocked(config, id)) state = 'active';
      else if (control && control.attempts > 0) state = 'deferred';
    }
    yield { id, state, control, count: names.length };
  }
}

/** Every entry with its state, as a list. */
export function listQueue(config: Config): QueueListing[] {
  return [...eachQueueEntry(config)];
}

/** One entry as an administrator looks at it: where its file is, its state, its envelope and message. */
export interface FoundEntry {
  id: QueueId;
  state: QueueState;
  file: string;
  /** The next try: the file's mtime (transition.defer). */
  nextTry: number;
  /** Absent when the file cannot be read (damage says why): a corrupt entry, most likely. */
  entry?: EntryFile;
  damage?: string;
}

/** Find an entry wherever it is (queue, hold/, corrupt/); undefined when it is nowhere. */
export function findEntry(config: Config, id: QueueId): FoundEntry | undefined {
  const places: Array<[QueueState, string]> = [
    ['queued', queuePath(config, PREFIX.control, id)],
    ['held', path.join(config.queueDir, HOLD_DIR, PREFIX.control + id)],
    ['corrupt', path.join(config.queueDir, CORRUPT_DIR, PREFIX.control + id)],
  ];
  for (const [where, file] of places) {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    if (!st) continue;
    let entry: EntryFile | undefined;
    let damage: string | undefined;
    try {
      entry = readEntry(file, { message: true });
      readMessage(entry);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // moved meanwhile: look on
      if (!(e instanceof DamagedEntry || e instanceof ControlParseError)) throw e;
      damage = e.message;
      entry = undefined;
    }
    let state = where;
    if (state === 'queued') state = isLocked(config, id) ? 'active' : (entry?.control.attempts ?? 0) > 0 ? 'deferred' : 'queued';
    return { id, state, file, nextTry: Math.floor(st.mtimeMs), entry, damage };
  }
  return undefined;
}

/** The message of a queued or held entry, checked against its checksum; for `mailtk queue show` and tests. */
export function readData(config: Config, id: QueueId): Buffer {
  try {
    return readMessage(readEntry(queuePath(config, PREFIX.control, id), { message: true }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return readMessage(readEntry(path.join(config.queueDir, HOLD_DIR, PREFIX.control + id), { message: true }));
}

/** Entries by state, for `mailtk status`: the states mailq shows, and what waits before and beside the queue. */
export interface QueueCounts {
  queued: number;
  deferred: number;
  active: number;
  held: number;
  corrupt: number;
  /** Dropped by ordinary users and not yet picked up (maildrop/ and pickup/). */
  maildrop: number;
}

export function countQueue(config: Config): QueueCounts {
  const counts: QueueCounts = { queued: 0, deferred: 0, active: 0, held: 0, corrupt: 0, maildrop: 0 };
  for (const q of eachQueueEntry(config)) counts[q.state === 'writing' ? 'queued' : q.state]++;
  counts.corrupt = countNames(path.join(config.queueDir, CORRUPT_DIR), PREFIX.data);
  counts.maildrop = countNames(config.maildropDir) + countNames(path.join(config.queueDir, PICKUP_DIR));
  return counts;
}

/** Names in a folder, hidden ones (refused drops) and an older entry's df files aside; 0 when it does not exist. */
function countNames(dir: string, skip = '.'): number {
  try {
    return fs.readdirSync(dir).filter((n) => !n.startsWith('.') && !n.startsWith(skip)).length;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw e;
  }
}
