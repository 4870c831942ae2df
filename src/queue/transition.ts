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
import path from 'node:path';
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

// ---- before the queue: the maildrop ---------------------------------------
// maildrop/NAME (dropped by an ordinary user) -> pickup/ID (claimed: out of
// its submitter's reach, under the ID pickup gave it) -> writing -> queued;
// or maildrop/NAME | pickup/ID -> corrupt/UNIQUE (kept for a human, never
// read again). pickup/ and corrupt/ are mode 0700, the queue owner's. These
// renames move a directory entry itself: none of them follows a link.

const PICKUP_DIR = 'pickup';
const CORRUPT_DIR = 'corrupt';
/** Entries refused but left in the maildrop (see quarantineDropped): never looked at again. */
export const REFUSED_PREFIX = '.refused.';
let corruptSeq = 0;

export function pickupDir(config: Config): string {
  return path.join(config.queueDir, PICKUP_DIR);
}

export function claimedPath(config: Config, id: QueueId): string {
  return path.join(pickupDir(config), id);
}

/** dropped -> claimed. False when the entry is gone (another picker took it, or its owner did). */
export function claimDropped(config: Config, name: string, id: QueueId): boolean {
  return renameInto(path.join(config.maildropDir, name), pickupDir(config), id);
}

/** Make a batch of claims durable: both directories once, before any of them is queued. */
export function syncClaims(config: Config): void {
  fsyncDir(pickupDir(config));
  fsyncDir(config.maildropDir);
}

/** claimed -> gone: its message is committed in the queue (or was, before a crash). */
export function discardClaimed(config: Config, id: QueueId): void {
  fs.rmSync(claimedPath(config, id), { force: true });
}

/**
 * dropped|claimed -> corrupt: the entry itself, whatever it is, under a new
 * name in queue_dir/corrupt ending with its name in the maildrop. Returns
 * where it went, relative to queue_dir; undefined when the entry is gone.
 * A picker that is not root cannot move to another folder a directory it
 * may not write (rename(2) changes its ".."): an entry it may not move is
 * renamed in the maildrop instead, to a name with REFUSED_PREFIX, which
 * pickup passes over.
 */
export function quarantineDropped(config: Config, from: 'maildrop' | 'pickup', name: string, dropName = name): string | undefined {
  const source = from === 'maildrop' ? path.join(config.maildropDir, name) : claimedPath(config, name);
  const unique = `${Date.now()}.${process.pid}.${corruptSeq++}.${dropName.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64)}`;
  try {
    return renameInto(source, path.join(config.queueDir, CORRUPT_DIR), unique) ? `${CORRUPT_DIR}/${unique}` : undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (from !== 'maildrop' || (code !== 'EACCES' && code !== 'EPERM')) throw e;
    const kept = REFUSED_PREFIX + unique;
    return renameInto(source, config.maildropDir, kept) ? `${path.basename(config.maildropDir)}/${kept}` : undefined;
  }
}

/** rename(2) into one of the queue owner's folders (made on first use); false when the source is gone. */
function renameInto(source: string, dir: string, name: string): boolean {
  const rename = (): boolean => {
    try {
      fs.renameSync(source, path.join(dir, name));
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  };
  if (rename()) return true;
  if (fs.existsSync(dir)) return false;
  makeOwnerDir(path.dirname(dir), dir);
  return rename();
}

/** A folder only the queue's owner may enter; owned like queue_dir when root makes it. */
function makeOwnerDir(queueDir: string, dir: string): void {
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    return;
  }
  const q = fs.statSync(queueDir);
  if (process.geteuid?.() === 0 && q.uid !== 0) fs.chownSync(dir, q.uid, q.gid);
}
