// Reading the queue without changing it: the list of entries for mailq and
// for a queue run, oldest first (IDs sort by time), with each entry's state.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { readLogged } from './commit-log.ts';
import { type Control, parseControl } from './control.ts';
import type { QueueId } from './id.ts';
import { PREFIX, type QueueState } from './state.ts';
import { queuePath } from './files.ts';

export interface QueueListing {
  id: QueueId;
  state: QueueState;
  control?: Control; // absent when unreadable (corrupt)
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

/** IDs of committed entries (qf), oldest first. */
export function listQueueIds(config: Config): QueueId[] {
  return queueNames(config)
    .filter((n) => n.startsWith(PREFIX.control) && !n.endsWith('.lock'))
    .map((n) => n.slice(PREFIX.control.length))
    .sort();
}

export function isLocked(config: Config, id: QueueId): boolean {
  try {
    const st = fs.statSync(queuePath(config, PREFIX.control, id) + '.lock');
    return Date.now() - st.mtimeMs < config.queueLockStaleMs;
  } catch {
    return false;
  }
}

/** Every entry with its state, for mailq. Entries that vanish while read are skipped. */
export function listQueue(config: Config): QueueListing[] {
  const names = queueNames(config);
  const out: QueueListing[] = [];
  for (const n of names.sort()) {
    if (n.endsWith('.lock')) continue;
    const prefix = n.slice(0, 2);
    const id = n.slice(2);
    const state = prefix === PREFIX.control ? 'queued' : prefix === PREFIX.held ? 'held' : prefix === PREFIX.corrupt ? 'corrupt' : undefined;
    if (!state) continue;
    let control: Control | undefined;
    try {
      control = parseControl(fs.readFileSync(`${config.queueDir}/${n}`, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
    }
    let s: QueueState = state;
    if (state === 'queued') {
      if (isLocked(config, id)) s = 'active';
      else if (control && control.attempts > 0) s = 'deferred';
    }
    out.push({ id, state: s, control });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The message text: df<ID>, or the commit log segment that still holds it. */
export function readData(config: Config, entry: Control | QueueId): Buffer {
  const id = typeof entry === 'string' ? entry : entry.id;
  const df = queuePath(config, PREFIX.data, id);
  try {
    return fs.readFileSync(df);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const c = typeof entry === 'string' ? parseControl(fs.readFileSync(queuePath(config, PREFIX.control, id), 'utf8')) : entry;
  if (!c.commitLog) return fs.readFileSync(df);
  // Retired between the two reads: the df was written before the segment went.
  return readLogged(config, c.commitLog, c.size) ?? fs.readFileSync(df);
}
