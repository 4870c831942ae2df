// Reading the queue without changing it: the entries a run should take, in
// arrival order (IDs sort by arrival to the millisecond, see id.ts), and the
// listing mailq prints. A run decides whether an entry is due from its
// control file's mtime, the next try time (transition.defer sets it), so
// a queue of deferred mail costs a stat an entry, not a read.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import type { Control } from './control.ts';
import { readEntry, readMessage } from './entry-file.ts';
import { holderAlive } from './entry-lock.ts';
import type { QueueId } from './id.ts';
import { PREFIX, type QueueState } from './state.ts';
import { queuePath } from './files.ts';

export interface QueueListing {
  id: QueueId;
  state: QueueState;
  control?: Control; // absent when unreadable (corrupt)
  /** How many entries the directory scan found (qf and hf), for a heading printed before reading them. */
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

const LISTED: Record<string, QueueState> = { [PREFIX.control]: 'queued', [PREFIX.held]: 'held' };

/** Every entry with its state, for mailq, in arrival order, read one at a time. Entries that vanish are skipped. */
export function* eachQueueEntry(config: Config): Generator<QueueListing> {
  const all = queueNames(config);
  // Locks are few: known from the listing, so an entry without one costs no lookup.
  const locks = new Set(all.filter((n) => n.endsWith('.lock')));
  const names = all
    .filter((n) => LISTED[n.slice(0, 2)] && !n.endsWith('.lock'))
    .sort((a, b) => (a.slice(2) < b.slice(2) ? -1 : a.slice(2) > b.slice(2) ? 1 : 0));
  for (const n of names) {
    const id = n.slice(2);
    let control: Control | undefined;
    try {
      control = readEntry(path.join(config.queueDir, n)).control;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
    }
    let state = LISTED[n.slice(0, 2)];
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

/** The message of a queued entry (qf or hf), checked against its checksum; for `mailtk queue show` and tests. */
export function readData(config: Config, id: QueueId): Buffer {
  for (const prefix of [PREFIX.control, PREFIX.held]) {
    try {
      return readMessage(readEntry(queuePath(config, prefix, id), { message: true }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || prefix === PREFIX.held) throw e;
    }
  }
  throw new Error('unreachable');
}
