// The commit log: how the daemon makes many SMTP acceptances durable with
// one fsync. Messages accepted by concurrent sessions are appended to one log
// segment and made durable together by a single fdatasync (the group commit
// of databases); only then is each one's qf written (page cache, no fsync)
// and its 250 sent. The message text stays in the segment: the qf's C record
// says where, and the runner reads it from there. A segment retires a few
// seconds after it closes: the entries still queued then get their df
// written and, with their qf, fdatasync'd; the rest were delivered meanwhile
// and never cost a flush or a df of their own. Fewer fsyncs and half the
// files created is where the daemon gets ahead of a queue that writes and
// fsyncs every file (on ext4 without a journal, creating a file costs more
// CPU than anything else in accepting a message).
//
//   queue_dir/commitlog/c<ms>-<n>       records, appended at explicit offsets:
//       "MTKC1 <id> <data bytes> <crc32 data>\n" data "<control bytes> <crc32 control>\n" control
//   queue_dir/commitlog/c<ms>-<n>.done  IDs of its entries finished while it was live
//
// A segment's life: open (appends) -> closed (after ROTATE_MS) -> retired
// (after RETIRE_DELAY_MS: df written for entries still present, their files
// fdatasync'd, the directory fsync'd, then the segment and its .done are
// removed). A runner that finishes an entry whose C record names a live
// segment writes its ID to the .done file (fdatasync, once per batch) before
// the unlink, so that recovery never brings a delivered message back.
//
// Recovery, at daemon start or in `sendmail -q` when no daemon holds the log:
// every record of a remaining segment that is not finished gets its df and,
// when missing or torn, its qf written again, durably; then the segment is
// retired. A torn last record (a crash mid-append, never acknowledged) fails
// its checksum and ends the replay.

import fs from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { type Control, parseControl, serializeControl } from './control.ts';
import type { QueueId } from './id.ts';
import { PREFIX } from './state.ts';
import { takeSpare } from './spares.ts';
import { fsyncDir, lockOwned, queuePath, syncDir, writeDurable } from './files.ts';

/** A segment takes appends for this long, then the next one starts. */
const ROTATE_MS = 1000;
/** ...or until it holds this many bytes. */
const ROTATE_BYTES = 64 << 20;
/** A closed segment waits this long for the runner to take its mail away before its files are fsync'd. */
const RETIRE_DELAY_MS = Number(process.env.MAILTK_COMMITLOG_RETIRE_MS) || 3000;
const MAGIC = 'MTKC1';
const SEGMENT = /^c\d+-\d+$/;
const LOCK = { stale: 10_000, update: 3_000 };

export function commitLogDir(config: Config): string {
  return path.join(config.queueDir, 'commitlog');
}

// node:zlib is loaded when a log is opened or recovered, not by every sendmail that imports this module.
let crc32: (b: Buffer) => number;
const loadCrc = async () => (crc32 ??= (await import('node:zlib')).crc32);
const crc = (b: Buffer): string => crc32(b).toString(16).padStart(8, '0');

interface Pending {
  control: Control;
  data: Buffer;
  resolve(): void;
  reject(e: unknown): void;
}

/** Where one entry's message text sits in its segment. */
interface Logged {
  id: QueueId;
  offset: number;
  length: number;
}

interface Segment {
  name: string;
  fh: FileHandle;
  size: number;
  opened: number;
  closedAt: number;
  entries: Logged[];
}

/** The open commit logs of this process, by queue directory: enqueue() looks here. */
const open = new Map<string, CommitLog>();

export function commitLogFor(config: Config): CommitLog | undefined {
  return open.get(config.queueDir);
}

export class CommitLog {
  private current?: Segment;
  private closed: Segment[] = [];
  private pending: Pending[] = [];
  private flushing?: Promise<void>;
  private retiring?: Promise<void>;
  private seq = 0;
  private timer: NodeJS.Timeout;
  readonly dir: string;

  private constructor(private config: Config, private unlock: () => Promise<void>) {
    this.dir = commitLogDir(config);
    this.timer = setInterval(() => void this.tick(), ROTATE_MS / 2);
    this.timer.unref();
  }

  /**
   * Take the log (recovering what a crashed daemon left), or undefined when
   * another live process holds it: that daemon keeps using it, and this one
   * commits every message with its own fsyncs.
   */
  static async open(config: Config): Promise<CommitLog | undefined> {
    await loadCrc();
    const unlock = await lockLog(config);
    if (!unlock) {
      log(config, '', `commit log ${commitLogDir(config)} is held by another process; committing each message on its own`);
      return undefined;
    }
    try {
      await recoverLocked(config);
    } catch (e) {
      await unlock().catch(() => {});
      throw e;
    }
    const cl = new CommitLog(config, unlock);
    open.set(config.queueDir, cl);
    return cl;
  }

  /** Make one message durable with the next group; resolves once its qf<ID> exists. */
  append(control: Control, data: Buffer): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.pending.push({ control, data, resolve, reject }));
    if (!this.flushing) this.flushing = this.flush().finally(() => (this.flushing = undefined));
    return done;
  }

  private async flush(): Promise<void> {
    // Let every session whose DATA ended in this turn join the group.
    await new Promise((r) => setImmediate(r));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0);
      try {
        await this.commitGroup(batch);
      } catch (e) {
        for (const p of batch) p.reject(e);
      }
    }
  }

  private async commitGroup(batch: Pending[]): Promise<void> {
    const seg = await this.writableSegment();
    const bufs: Buffer[] = [];
    const logged: Logged[] = [];
    let at = seg.size;
    const controls = batch.map((p) => {
      const head = Buffer.from(`${MAGIC} ${p.control.id} ${p.data.length} ${crc(p.data)}\n`);
      const where = { id: p.control.id, offset: at + head.length, length: p.data.length };
      p.control.commitLog = { segment: seg.name, offset: where.offset };
      const ctl = Buffer.from(serializeControl(p.control));
      const tail = Buffer.from(`${ctl.length} ${crc(ctl)}\n`);
      bufs.push(head, p.data, tail, ctl);
      at += head.length + p.data.length + tail.length + ctl.length;
      logged.push(where);
      return ctl;
    });
    const total = at - seg.size;
    // Each tf is written while the log is flushed: in the page cache, only the log fsync'd.
    const staged = Promise.allSettled(batch.map((p, i) => stage(this.config, p.control.id, controls[i])));
    try {
      // Written here, on the event loop: a copy into the page cache costs less than a trip to the thread pool.
      const written = fs.writevSync(seg.fh.fd, bufs, seg.size);
      if (written !== total) throw new Error(`short write to ${seg.name} (${written} of ${total} bytes)`);
      await seg.fh.datasync();
      // COMMIT POINT for every message of this group.
    } catch (e) {
      await seg.fh.truncate(seg.size).catch(() => {});
      (await staged).forEach((r, i) => r.status === 'fulfilled' && unstage(this.config, batch[i].control.id));
      throw e;
    }
    seg.size = at;
    const lost: QueueId[] = [];
    (await staged).forEach((r, i) => {
      const p = batch[i];
      const id = p.control.id;
      try {
        if (r.status === 'rejected') throw r.reason;
        fs.renameSync(queuePath(this.config, PREFIX.temp, id), queuePath(this.config, PREFIX.control, id));
        seg.entries.push(logged[i]);
        p.resolve();
      } catch (e) {
        // Logged but never promised (the client hears 451): recovery must not bring it back.
        if (r.status === 'fulfilled') unstage(this.config, id);
        lost.push(id);
        p.reject(e);
      }
    });
    if (lost.length) {
      try {
        markDoneSync(this.config, seg.name, lost);
      } catch {
        // At worst recovery brings back a message whose client heard 451: a duplicate, not a loss.
      }
    }
  }

  private async writableSegment(): Promise<Segment> {
    const now = Date.now();
    const cur = this.current;
    if (cur && now - cur.opened < ROTATE_MS && cur.size < ROTATE_BYTES) return cur;
    if (cur) await this.close(cur);
    const name = `c${now}-${this.seq++}`;
    const file = path.join(this.dir, name);
    const fh = await fs.promises.open(file, 'wx', 0o600);
    try {
      await fs.promises.writeFile(file + '.done', '', { flag: 'wx', mode: 0o600 });
      // The segment's own name must survive a crash before any record in it counts.
      await syncDir(this.dir);
    } catch (e) {
      await fh.close();
      fs.rmSync(file, { force: true });
      fs.rmSync(file + '.done', { force: true });
      throw e;
    }
    this.current = { name, fh, size: 0, opened: now, closedAt: 0, entries: [] };
    return this.current;
  }

  private async close(seg: Segment): Promise<void> {
    if (this.current === seg) this.current = undefined;
    seg.closedAt = Date.now();
    await seg.fh.close().catch(() => {});
    this.closed.push(seg);
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    if (this.current && !this.flushing && now - this.current.opened >= ROTATE_MS) await this.close(this.current);
    if (this.retiring) return;
    const due = this.closed.filter((s) => now - s.closedAt >= RETIRE_DELAY_MS);
    if (due.length === 0) return;
    this.retiring = this.retire(due).finally(() => (this.retiring = undefined));
  }

  private async retire(segs: Segment[]): Promise<void> {
    try {
      await retireSegments(this.config, segs);
      this.closed = this.closed.filter((s) => !segs.includes(s));
    } catch (e) {
      log(this.config, '', `SYSERR: commit log: cannot retire ${segs.map((s) => s.name).join(' ')}: ${(e as Error).message}; will try again`);
    }
  }

  /** Finish the group under way, make every remaining entry durable, retire every segment, let go. */
  async shutdown(): Promise<void> {
    clearInterval(this.timer);
    while (this.flushing) await this.flushing;
    if (this.current) await this.close(this.current);
    await this.retiring;
    await this.retire(this.closed);
    open.delete(this.config.queueDir);
    await this.unlock().catch(() => {});
  }
}

/** Write tf<ID>: into a spare file when there is one (no inode to allocate), else a new file. */
function stage(config: Config, id: QueueId, control: Buffer): Promise<void> {
  const tf = queuePath(config, PREFIX.temp, id);
  try {
    if (takeSpare(config, tf)) {
      fs.writeFileSync(tf, control); // truncates what the spare held
      return Promise.resolve();
    }
  } catch (e) {
    return Promise.reject(e);
  }
  return fs.promises.writeFile(tf, control, { flag: 'wx', mode: 0o600 });
}

function unstage(config: Config, id: QueueId): void {
  fs.rmSync(queuePath(config, PREFIX.temp, id), { force: true });
}

/** fdatasync one file if it is there; false when it is not. */
async function syncIfPresent(file: string): Promise<boolean> {
  let fh: FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return true;
}

const ENTRY_FILES = [PREFIX.control, PREFIX.held, PREFIX.corrupt];

/** The entry's control file under whichever name it has now (qf, hf, Qf); undefined when finished. */
function presentControl(config: Config, id: QueueId): string | undefined {
  return ENTRY_FILES.map((p) => queuePath(config, p, id)).find((f) => fs.existsSync(f));
}

/** Make what is left of these segments' entries durable on their own, then remove the segments. */
async function retireSegments(config: Config, segs: Array<{ name: string; entries: Logged[] }>): Promise<void> {
  const dir = commitLogDir(config);
  for (const s of segs) {
    let fh: FileHandle | undefined;
    try {
      fh = await fs.promises.open(path.join(dir, s.name), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    try {
      // A few at a time: the thread pool also serves the listeners' own writes.
      for (let i = 0; i < s.entries.length; i += 8) await Promise.all(s.entries.slice(i, i + 8).map((e) => keepEntry(config, e, fh)));
    } finally {
      await fh?.close();
    }
  }
  await syncDir(config.queueDir);
  for (const s of segs) fs.rmSync(path.join(dir, s.name), { force: true });
  // The segments' removal is durable before their .done files go: a runner
  // finishing one of their entries meanwhile still finds the .done to write.
  await syncDir(dir);
  for (const s of segs) fs.rmSync(path.join(dir, s.name + '.done'), { force: true });
}

/** A retiring segment's entry that is still queued: its df written, its files fdatasync'd. */
async function keepEntry(config: Config, e: Logged, seg: FileHandle | undefined): Promise<void> {
  if (!presentControl(config, e.id)) return; // delivered: nothing to keep
  const df = queuePath(config, PREFIX.data, e.id);
  if (seg && !fs.existsSync(df)) {
    const data = Buffer.alloc(e.length);
    const { bytesRead } = await seg.read(data, 0, e.length, e.offset);
    if (bytesRead !== e.length) throw new Error(`${e.id}: segment shorter than its record`);
    try {
      await fs.promises.writeFile(df, data, { flag: 'wx', mode: 0o600 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    // Finished while the df was written: do not leave it behind.
    if (!presentControl(config, e.id)) return fs.promises.rm(df, { force: true });
  }
  await Promise.all([...ENTRY_FILES.map((p) => queuePath(config, p, e.id)), df].map(syncIfPresent));
}

/** An entry's message text from its live segment; undefined once the segment is retired. */
export function readLogged(config: Config, where: { segment: string; offset: number }, length: number): Buffer | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path.join(commitLogDir(config), where.segment), 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  try {
    const data = Buffer.alloc(length);
    const n = fs.readSync(fd, data, 0, length, where.offset);
    if (n !== length) throw new Error(`commit log ${where.segment} holds ${n} of the ${length} bytes at ${where.offset}`);
    return data;
  } finally {
    fs.closeSync(fd);
  }
}

/** Record that these entries of a live segment are finished: durable before their files go. */
export function markDoneSync(config: Config, segment: string, ids: QueueId[]): void {
  let fd: number;
  try {
    // No O_CREAT: a retired segment has no .done, and then nothing needs saying.
    fd = fs.openSync(path.join(commitLogDir(config), segment + '.done'), fs.constants.O_WRONLY | fs.constants.O_APPEND);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  try {
    fs.writeSync(fd, ids.map((id) => id + '\n').join(''));
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

async function lockLog(config: Config): Promise<(() => Promise<void>) | undefined> {
  const dir = commitLogDir(config);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return lockOwned(dir, path.join(dir, 'owner'), {
    ...LOCK,
    onCompromised: (e) => log(config, '', `SYSERR: commit log lock ${dir}.lock lost (${e.message}); another process may recover the log`),
  });
}

/**
 * Recovery for `sendmail -q`: when no daemon holds the commit log, bring back
 * what a crashed one left. Returns the number of messages written again.
 */
export async function recoverCommitLog(config: Config): Promise<number> {
  if (commitLogFor(config)) return 0;
  try {
    if (!fs.readdirSync(commitLogDir(config)).some((n) => SEGMENT.test(n))) return 0;
  } catch {
    return 0; // no commit log: nothing to recover
  }
  const unlock = await lockLog(config);
  if (!unlock) return 0;
  try {
    await loadCrc();
    return await recoverLocked(config);
  } finally {
    await unlock().catch(() => {});
  }
}

export interface LogRecord {
  id: QueueId;
  offset: number;
  data: Buffer;
  control: Buffer;
}

/** The whole records of a segment, in order; stops at the first torn or damaged one. */
export function readSegment(buf: Buffer): { records: LogRecord[]; torn: boolean } {
  const records: LogRecord[] = [];
  const line = (from: number, re: RegExp): { m: RegExpExecArray; next: number } | undefined => {
    const nl = buf.indexOf(10, from);
    const m = nl < 0 || nl - from > 200 ? null : re.exec(buf.toString('latin1', from, nl));
    return m ? { m, next: nl + 1 } : undefined;
  };
  let at = 0;
  while (at < buf.length) {
    const head = line(at, /^MTKC1 (\S+) (\d+) ([0-9a-f]{8})$/);
    if (!head) return { records, torn: true };
    const dataEnd = head.next + Number(head.m[2]);
    const tail = dataEnd < buf.length ? line(dataEnd, /^(\d+) ([0-9a-f]{8})$/) : undefined;
    if (!tail) return { records, torn: true };
    const end = tail.next + Number(tail.m[1]);
    if (end > buf.length) return { records, torn: true };
    const data = buf.subarray(head.next, dataEnd);
    const control = buf.subarray(tail.next, end);
    if (crc(data) !== head.m[3] || crc(control) !== tail.m[2]) return { records, torn: true };
    records.push({ id: head.m[1], offset: head.next, data, control });
    at = end;
  }
  return { records, torn: false };
}

async function recoverLocked(config: Config): Promise<number> {
  const dir = commitLogDir(config);
  const segs = fs.readdirSync(dir).filter((n) => SEGMENT.test(n)).sort(bySegmentOrder);
  let restored = 0;
  for (const name of segs) {
    const file = path.join(dir, name);
    let finished = new Set<string>();
    try {
      finished = new Set(fs.readFileSync(file + '.done', 'utf8').split('\n').filter(Boolean));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const { records, torn } = readSegment(fs.readFileSync(file));
    let n = 0;
    for (const r of records) {
      if (finished.has(r.id)) continue;
      if (restoreEntry(config, r)) n++;
    }
    restored += n;
    await retireSegments(config, [{ name, entries: [] }]);
    if (n || torn) log(config, '', `commit log ${name}: ${records.length} records, ${n} queue entries written again${torn ? ', a torn last record ignored (never acknowledged)' : ''}`);
  }
  return restored;
}

function bySegmentOrder(a: string, b: string): number {
  const [am, an] = a.slice(1).split('-').map(Number);
  const [bm, bn] = b.slice(1).split('-').map(Number);
  return am - bm || an - bn;
}

/** Make one logged entry whole on disk again; true when anything had to be written. */
function restoreEntry(config: Config, r: LogRecord): boolean {
  let wrote = false;
  const existing = [PREFIX.control, PREFIX.held, PREFIX.corrupt].find((p) => fs.existsSync(queuePath(config, p, r.id)));
  let controlOk = existing !== undefined && existing !== PREFIX.control;
  if (existing === PREFIX.control) {
    try {
      parseControl(fs.readFileSync(queuePath(config, PREFIX.control, r.id), 'utf8'));
      controlOk = true;
    } catch {
      // Torn by the crash: the log's copy replaces it.
    }
  }
  const df = queuePath(config, PREFIX.data, r.id);
  let dataOk = false;
  try {
    dataOk = fs.readFileSync(df).equals(r.data);
  } catch {
    // missing: written below
  }
  if (!dataOk) {
    const tmp = `${df}.restore`;
    fs.rmSync(tmp, { force: true });
    writeDurable(tmp, r.data);
    fs.renameSync(tmp, df);
    wrote = true;
  }
  if (!controlOk) {
    const tf = queuePath(config, PREFIX.temp, r.id);
    fs.rmSync(tf, { force: true });
    writeDurable(tf, r.control);
    fs.renameSync(tf, queuePath(config, PREFIX.control, r.id));
    wrote = true;
  }
  if (wrote) fsyncDir(config.queueDir);
  return wrote;
}
