// Queue transitions. Owns every rename and unlink under the spool (see
// state.ts for the states). Each transition is one function ending in one
// atomic rename (or, for finish, the unlink of the control file), made after
// what it commits is fsync'd. Once commit() returns, the message survives
// kill -9 and power loss (in the daemon, the commit log gives that promise
// for a whole group, see commit-log.ts). activate() is a lock (entry-lock.ts:
// qf<ID>.lock, a hard link to the runner's token), so a runner killed
// mid-delivery leaves the entry deferred-in-place and the lock goes stale for
// the next runner.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { type Control, ControlParseError, type Placement, journalDone, journalFailed, journalPlaced, parseControl, placedKey, serializeControl } from './control.ts';
import type { QueueId } from './id.ts';
import { PREFIX } from './state.ts';
import { fsyncDir, queuePath, writeDurable } from './files.ts';
import { markDoneSync } from './commit-log.ts';
import { lockEntry } from './entry-lock.ts';
import { keepSpare } from './spares.ts';

// ---- group commit --------------------------------------------------------
// Concurrent SMTP sessions each need their own commit before their 250. One
// directory fsync covers every rename made before it, so renames that arrive
// while a directory fsync is in flight wait and share the next one (the group
// commit of databases). The data files' own fsyncs run in libuv's thread pool
// at the same time, where the file system merges them into one journal commit.

interface Waiter {
  id: QueueId;
  resolve(): void;
  reject(e: unknown): void;
}

interface Group {
  waiting: Waiter[];
  flushing: boolean;
}

const groups = new Map<string, Group>();

/** writing -> queued, sharing the directory fsync with concurrent commits. */
export function commit(config: Config, id: QueueId): Promise<void> {
  let g = groups.get(config.queueDir);
  if (!g) {
    g = { waiting: [], flushing: false };
    groups.set(config.queueDir, g);
  }
  const group = g;
  const done = new Promise<void>((resolve, reject) => group.waiting.push({ id, resolve, reject }));
  if (!group.flushing) void flushGroup(config, group);
  return done;
}

async function flushGroup(config: Config, g: Group): Promise<void> {
  g.flushing = true;
  // Let every session whose files became durable in this turn join the group.
  await new Promise((r) => setImmediate(r));
  while (g.waiting.length > 0) {
    const batch = g.waiting.splice(0);
    const renamed: Waiter[] = [];
    for (const w of batch) {
      try {
        fs.renameSync(queuePath(config, PREFIX.temp, w.id), queuePath(config, PREFIX.control, w.id));
        renamed.push(w);
      } catch (e) {
        w.reject(e);
      }
    }
    try {
      const dir = await fs.promises.open(config.queueDir, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
      // COMMIT POINT for every entry of this group.
      for (const w of renamed) w.resolve();
    } catch (e) {
      for (const w of renamed) w.reject(e);
    }
  }
  g.flushing = false;
}

export interface ActiveEntry {
  control: Control;
  dataPath: string;
  controlPath: string;
  /** True when our lock was taken over (it went stale): stop and touch nothing. */
  readonly compromised: boolean;
  release(): Promise<void>;
}

/** queued|deferred -> active: lock and read. undefined when locked by another runner or gone. */
export async function activate(config: Config, id: QueueId): Promise<ActiveEntry | undefined> {
  const controlPath = queuePath(config, PREFIX.control, id);
  const lock = lockEntry(config, id);
  if (!lock) return undefined;
  let text: string;
  try {
    text = fs.readFileSync(controlPath, 'utf8');
  } catch (e) {
    lock.release();
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // finished by another runner
    throw e;
  }
  let control: Control;
  try {
    control = parseControl(text);
  } catch (e) {
    if (e instanceof ControlParseError) {
      quarantine(config, id);
      lock.release();
      throw new MailError('internal', `corrupt control file ${controlPath}: ${e.message}; moved to Qf${id}`);
    }
    throw e;
  }
  return {
    control,
    controlPath,
    dataPath: queuePath(config, PREFIX.data, id),
    get compromised() {
      return !lock.held();
    },
    release: async () => lock.release(),
  };
}

/** Cross recipients' destinations off: appended journal records, made durable. */
export function crossOff(entry: ActiveEntry, done: Array<[number, string]>, failed: Array<[number, string]>): void {
  if (entry.compromised) throw new MailError('internal', `lock on ${entry.controlPath} was lost`);
  const text = done.map(([i, k]) => journalDone(i, k)).join('') + failed.map(([i, k]) => journalFailed(i, k)).join('');
  if (!text) return;
  const fd = fs.openSync(entry.controlPath, 'a');
  try {
    fs.writeSync(fd, text);
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  for (const [i, k] of done) addTo(entry.control.journal.done, i, k);
  for (const [i, k] of failed) addTo(entry.control.journal.failed, i, k);
}

/**
 * Record where mbox copies are about to be written, before the write. Not
 * fsync'd: it guards against a runner killed between the mailbox's fsync and
 * the cross-off (the page cache survives SIGKILL); the next runner finds the
 * bytes there (isStillThere) and crosses off instead of delivering again.
 */
export function recordPlacement(entry: ActiveEntry, placed: Array<[number, string, Placement]>): void {
  if (entry.compromised) throw new MailError('internal', `lock on ${entry.controlPath} was lost`);
  const fd = fs.openSync(entry.controlPath, 'a');
  try {
    fs.writeSync(fd, placed.map(([i, k, p]) => journalPlaced(i, k, p)).join(''));
  } finally {
    fs.closeSync(fd);
  }
  for (const [i, k, p] of placed) entry.control.journal.placed.set(placedKey(i, k), p);
}

function addTo(map: Map<number, Set<string>>, i: number, k: string): void {
  if (!map.has(i)) map.set(i, new Set());
  map.get(i)!.add(k);
}

/** active -> deferred: rewrite the control file with the next try and the reason. */
export function defer(config: Config, entry: ActiveEntry, update: Partial<Control>): void {
  if (entry.compromised) throw new MailError('internal', `lock on ${entry.controlPath} was lost`);
  Object.assign(entry.control, update);
  rewrite(config, entry.control);
}

function rewrite(config: Config, c: Control): void {
  const tf = queuePath(config, PREFIX.temp, c.id);
  fs.rmSync(tf, { force: true });
  writeDurable(tf, serializeControl(c));
  fs.renameSync(tf, queuePath(config, PREFIX.control, c.id));
  fsyncDir(config.queueDir);
}

/** active -> gone: every recipient delivered or bounced. */
export function finish(config: Config, entry: ActiveEntry): void {
  finishAll(config, [entry]);
}

/**
 * active -> gone for a runner's batch. An entry made durable by a commit log
 * segment that still lives has its ID written to the segment's .done file
 * first (one fdatasync a segment, not one an entry), so that recovering the
 * log never brings a delivered message back.
 */
export function finishAll(config: Config, entries: ActiveEntry[]): void {
  for (const e of entries) if (e.compromised) throw new MailError('internal', `lock on ${e.controlPath} was lost`);
  const bySegment = new Map<string, QueueId[]>();
  for (const e of entries) {
    const seg = e.control.commitLog?.segment;
    if (seg) bySegment.set(seg, [...(bySegment.get(seg) ?? []), e.control.id]);
  }
  for (const [seg, ids] of bySegment) markDoneSync(config, seg, ids);
  for (const e of entries) {
    if (!keepSpare(config, e.controlPath)) fs.unlinkSync(e.controlPath);
    fs.rmSync(e.dataPath, { force: true });
  }
}

/** queued|deferred -> held (sendmail's hf prefix): no run touches it. */
export function hold(config: Config, id: QueueId): void {
  fs.renameSync(queuePath(config, PREFIX.control, id), queuePath(config, PREFIX.held, id));
  fsyncDir(config.queueDir);
}

/** held -> queued. */
export function unhold(config: Config, id: QueueId): void {
  fs.renameSync(queuePath(config, PREFIX.held, id), queuePath(config, PREFIX.control, id));
  fsyncDir(config.queueDir);
}

/** any -> corrupt (sendmail's Qf "lost" prefix): kept for a human, never deleted. */
export function quarantine(config: Config, id: QueueId): void {
  fs.renameSync(queuePath(config, PREFIX.control, id), queuePath(config, PREFIX.corrupt, id));
  fsyncDir(config.queueDir);
}
