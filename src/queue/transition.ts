// Queue transitions. Owns every rename and unlink under the spool (see
// state.ts for the states). Each transition is one function ending in one
// atomic rename (or, for finish, an unlink), made after what it commits is
// fsync'd. Once commit() returns, the message survives kill -9 and power
// loss. activate() is a lock (entry-lock.ts: qf<ID>.lock), so a runner
// killed mid-delivery leaves the entry where it was, its lock stale at once.
// The next try time is the control file's mtime (Postfix's convention), so
// that a run learns an entry is not due from a stat, without reading it.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { type Control, ControlParseError, type Placement, journalDone, journalFailed, journalPlaced, placedKey } from './control.ts';
import { DamagedEntry, type EntryFile, entryBytes, legacyDataFile, readEntry, readMessage } from './entry-file.ts';
import type { QueueId } from './id.ts';
import { CORRUPT_DIR, HOLD_DIR, PICKUP_DIR, PREFIX } from './state.ts';
import { fsyncDir, queuePath } from './files.ts';
import { lockEntry } from './entry-lock.ts';
import { step } from './steps.ts';

// ---- group commit --------------------------------------------------------
// Concurrent SMTP sessions each need their own commit before their 250. One
// directory fsync covers every rename made before it, so renames that arrive
// while a directory fsync is in flight wait and share the next one (the group
// commit of databases). The entry files' own fsyncs run in libuv's thread
// pool at the same time.

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
      step('commit');
      for (const w of renamed) w.resolve();
    } catch (e) {
      // Not promised: the renamed files go back to being unwritten.
      for (const w of renamed) fs.rmSync(queuePath(config, PREFIX.control, w.id), { force: true });
      for (const w of renamed) w.reject(e);
    }
  }
  g.flushing = false;
}

/** Write a new entry's file as tf<ID>, durably: EEXIST when the ID is taken. */
export async function writeEntry(config: Config, c: Control, data: Buffer): Promise<void> {
  const tf = queuePath(config, PREFIX.temp, c.id);
  const bufs = entryBytes(c, data);
  const want = bufs[0].length + bufs[1].length;
  const fh = await fs.promises.open(tf, 'wx', 0o600);
  try {
    // writev loops over partial writes; a full disk throws ENOSPC.
    const { bytesWritten } = await fh.writev(bufs);
    if (bytesWritten !== want) throw Object.assign(new Error(`short write to ${tf} (${bytesWritten} of ${want} bytes)`), { code: 'ENOSPC' });
    await fh.datasync();
  } catch (e) {
    await fh.close().catch(() => {});
    fs.rmSync(tf, { force: true });
    throw e;
  }
  await fh.close();
  step('enqueue');
}

/** writing -> gone: a new entry's file that will not be committed, or one a dead writer left (scanQueue). */
export function discardEntry(config: Config, id: QueueId): void {
  fs.rmSync(queuePath(config, PREFIX.temp, id), { force: true });
}

export interface ActiveEntry {
  control: Control;
  controlPath: string;
  /** Bytes of the file past the message: the journal, grown by each append. */
  journalBytes: number;
  /** The message, checked against its length and checksum (DamagedEntry when it is not whole). */
  message(): Buffer;
  /** True when our lock was taken over (it went stale): stop and touch nothing. */
  readonly compromised: boolean;
  release(): Promise<void>;
}

/**
 * queued|deferred -> active: lock and read. undefined when locked by another
 * runner or gone. An entry that cannot be read is quarantined (corrupt/) and
 * reported by the DamagedEntry thrown.
 */
export function activate(config: Config, id: QueueId): ActiveEntry | undefined {
  const controlPath = queuePath(config, PREFIX.control, id);
  const lock = lockEntry(config, id);
  if (!lock) return undefined;
  let entry: EntryFile;
  try {
    entry = readEntry(controlPath, { message: true });
  } catch (e) {
    lock.release();
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined; // finished by another runner
    if (e instanceof ControlParseError || e instanceof DamagedEntry) {
      const where = quarantine(config, id);
      throw new DamagedEntry(`queue entry ${controlPath} is damaged (${e.message}); moved to ${where}`, e instanceof DamagedEntry ? e.control : undefined, where);
    }
    throw e;
  }
  return {
    control: entry.control,
    controlPath,
    journalBytes: entry.journalBytes,
    message: () => readMessage(entry),
    get compromised() {
      return !lock.held();
    },
    release: async () => lock.release(),
  };
}

/** Append journal records to an entry, after a newline if a crash tore the last one. */
function appendRecords(entry: ActiveEntry, text: string, durable: boolean): void {
  const file = entry.controlPath;
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_APPEND);
  try {
    const size = fs.fstatSync(fd).size;
    const last = Buffer.alloc(1);
    if (size > 0 && fs.readSync(fd, last, 0, 1, size - 1) === 1 && last[0] !== 10) text = '\n' + text;
    const buf = Buffer.from(text);
    if (fs.writeSync(fd, buf) !== buf.length) throw Object.assign(new Error(`short write to ${file}`), { code: 'ENOSPC' });
    entry.journalBytes += buf.length;
    if (durable) fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Before what cannot be undone (a finish). A live holder's lock is never
 * judged stale (entry-lock.ts), so this fails only when someone removed it
 * by hand: appends and deferrals need no check.
 */
function assertHeld(entry: ActiveEntry): void {
  if (entry.compromised) throw new MailError('internal', `lock on ${entry.controlPath} was lost`);
}

/** Cross recipients' destinations off: appended journal records, made durable. */
export function crossOff(entry: ActiveEntry, done: Array<[number, string]>, failed: Array<[number, string]>): void {
  const text = done.map(([i, k]) => journalDone(i, k)).join('') + failed.map(([i, k]) => journalFailed(i, k)).join('');
  if (!text) return;
  appendRecords(entry, text, true);
  for (const [i, k] of done) addTo(entry.control.journal.done, i, k);
  for (const [i, k] of failed) addTo(entry.control.journal.failed, i, k);
  step('cross-off');
}

/**
 * Record where mbox copies are about to be written, before the write. Not
 * fsync'd: it guards against a runner killed between the mailbox's fsync and
 * the cross-off (the page cache survives SIGKILL); the next runner finds the
 * bytes there (isStillThere) and crosses off instead of delivering again.
 */
export function recordPlacement(entry: ActiveEntry, placed: Array<[number, string, Placement]>): void {
  appendRecords(entry, placed.map(([i, k, p]) => journalPlaced(i, k, p)).join(''), false);
  for (const [i, k, p] of placed) entry.control.journal.placed.set(placedKey(i, k), p);
}

function addTo(map: Map<number, Set<string>>, i: number, k: string): void {
  if (!map.has(i)) map.set(i, new Set());
  map.get(i)!.add(k);
}

export interface Deferral {
  attempts: number;
  lastAttempt: number;
  nextTry: number;
  reason: string;
  warned: boolean;
}

/**
 * active -> deferred: what changed appended (not fsync'd: lost in a crash,
 * it only makes the next try come sooner) and the next try set as the
 * file's mtime. An entry that was not tried (its destination was found dead
 * earlier in the run) has nothing new to say: only its mtime moves. A
 * journal grown past COMPACT_BYTES is written anew, compacted.
 */
export function defer(config: Config, entry: ActiveEntry, d: Deferral): void {
  const c = entry.control;
  let text = '';
  if (d.attempts !== c.attempts) text += `N${d.attempts}\n`;
  if (d.lastAttempt !== c.lastAttempt) text += `K${d.lastAttempt}\n`;
  if (d.reason !== c.reason) text += `M${d.reason.replace(/[\r\n\t\0]/g, ' ')}\n`;
  if (d.warned && !c.warned) text += 'W\n';
  // Y is for mailq; the mtime decides. Alone it is not worth a write.
  if (text) text += `Y${d.nextTry}\n`;
  Object.assign(c, d);
  if (entry.journalBytes > COMPACT_BYTES) rewrite(config, entry);
  else if (text) appendRecords(entry, text, false);
  const at = new Date(d.nextTry);
  fs.utimesSync(entry.controlPath, at, at);
}

/** Past this much journal and envelope, a deferral writes the entry anew. */
const COMPACT_BYTES = 32 << 10;

function rewrite(config: Config, entry: ActiveEntry): void {
  const c = entry.control;
  const data = entry.message();
  const tf = queuePath(config, PREFIX.temp, c.id);
  fs.rmSync(tf, { force: true });
  const bufs = entryBytes(c, data);
  const want = bufs[0].length + bufs[1].length;
  const fd = fs.openSync(tf, 'wx', 0o600);
  try {
    // A short write (a full disk) must never replace the whole entry with a part of it.
    const written = fs.writevSync(fd, bufs);
    if (written !== want) throw Object.assign(new Error(`short write to ${tf} (${written} of ${want} bytes)`), { code: 'ENOSPC' });
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tf, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  fs.renameSync(tf, entry.controlPath);
  fsyncDir(config.queueDir);
}

/** active -> gone: every recipient delivered or bounced. */
export function finish(config: Config, entry: ActiveEntry): void {
  finishAll(config, [entry]);
}

/** active -> gone for a runner's batch. */
export function finishAll(config: Config, entries: ActiveEntry[]): void {
  for (const e of entries) assertHeld(e);
  for (const e of entries) {
    fs.unlinkSync(e.controlPath);
    fs.rmSync(legacyDataFile(e.controlPath), { force: true });
    step('finish');
  }
}

// ---- an administrator's transitions (mailtk queue) ------------------------
// Each takes the entry's lock first, as activate() does, so that it never
// moves or removes an entry under the runner delivering it: a locked entry is
// 'busy', and the caller says so. A runner that listed the entry before it
// moved finds it gone when it locks it (activate returns undefined).

/** What an administrator's transition did. */
export type AdminOutcome = 'done' | 'busy' | 'missing';

function underLock(config: Config, id: QueueId, work: () => boolean): AdminOutcome {
  const lock = lockEntry(config, id);
  if (!lock) return 'busy';
  try {
    return work() ? 'done' : 'missing';
  } finally {
    lock.release();
  }
}

/** queue_dir/hold, where held entries are kept (state.ts). */
export function holdDir(config: Config): string {
  return path.join(config.queueDir, HOLD_DIR);
}

/** queued|deferred -> held: moved into queue_dir/hold, out of every run's sight (Postfix's hold queue). */
export function hold(config: Config, id: QueueId): AdminOutcome {
  return underLock(config, id, () => moveEntry(config, config.queueDir, holdDir(config), id));
}

/** held -> queued (deferred while its next try, the file's mtime, is still to come). */
export function unhold(config: Config, id: QueueId): AdminOutcome {
  return underLock(config, id, () => moveEntry(config, holdDir(config), config.queueDir, id));
}

/** An entry's file (and an older entry's df beside it) from one folder to another, durably. */
function moveEntry(config: Config, from: string, to: string, id: QueueId): boolean {
  const name = PREFIX.control + id;
  if (!renameInto(path.join(from, name), to, name)) return false;
  renameInto(path.join(from, PREFIX.data + id), to, PREFIX.data + id);
  fsyncDir(to);
  fsyncDir(from);
  return true;
}

/** Where an entry removed by remove() was. */
export type RemovedFrom = 'queue' | 'hold' | 'corrupt';

/**
 * queued|deferred|held|corrupt -> gone: an administrator's delete (postsuper
 * -d). Returns where the entry was; 'missing' when it is nowhere.
 */
export function remove(config: Config, id: QueueId): AdminOutcome | RemovedFrom {
  let from: RemovedFrom | undefined;
  const outcome = underLock(config, id, () => {
    const dirs: Array<[RemovedFrom, string]> = [['queue', config.queueDir], ['hold', holdDir(config)], ['corrupt', path.join(config.queueDir, CORRUPT_DIR)]];
    for (const [where, dir] of dirs) {
      const file = path.join(dir, PREFIX.control + id);
      try {
        fs.unlinkSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      fs.rmSync(legacyDataFile(file), { force: true });
      fsyncDir(dir);
      from = where;
      return true;
    }
    return false;
  });
  return outcome === 'done' ? from! : outcome;
}

/**
 * deferred -> queued: the next try is now (the file's mtime, see defer), so
 * that the next run, scheduled or not, takes it (postsuper -r's "requeue").
 * 'missing' for an entry that is not in the queue (a held one is released first).
 */
export function makeDue(config: Config, id: QueueId, now = Date.now()): AdminOutcome {
  return underLock(config, id, () => {
    const at = new Date(now);
    try {
      fs.utimesSync(queuePath(config, PREFIX.control, id), at, at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
    return true;
  });
}

/**
 * any -> corrupt: the entry's file (and an older entry's df) moved into
 * queue_dir/corrupt, kept for a human, never read by a run again. Returns
 * where it went, relative to queue_dir.
 */
export function quarantine(config: Config, id: QueueId): string {
  const dir = path.join(config.queueDir, CORRUPT_DIR);
  const control = queuePath(config, PREFIX.control, id);
  renameInto(control, dir, path.basename(control));
  renameInto(legacyDataFile(control), dir, PREFIX.data + id);
  fsyncDir(dir);
  fsyncDir(config.queueDir);
  return `${CORRUPT_DIR}/${PREFIX.control}${id}`;
}

/** The entries quarantined by runs: corrupt/qf<ID>. */
export function corruptEntries(config: Config): string[] {
  try {
    return fs.readdirSync(path.join(config.queueDir, CORRUPT_DIR)).filter((n) => n.startsWith(PREFIX.control));
  } catch {
    return [];
  }
}

// ---- before the queue: the maildrop ---------------------------------------
// maildrop/NAME (dropped by an ordinary user) -> pickup/ID (claimed: out of
// its submitter's reach, under the ID pickup gave it) -> writing -> queued;
// or maildrop/NAME | pickup/ID -> corrupt/UNIQUE (kept for a human, never
// read again). pickup/ and corrupt/ are mode 0700, the queue owner's. These
// renames move a directory entry itself: none of them follows a link.

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
