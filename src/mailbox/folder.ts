// One mbox as POP3 and IMAP see it: messages with UIDs, flags and cached
// summaries, kept in a per-mailbox index (folder-file.ts) and shared by every
// session of this process that has the mailbox open (openFolder counts them).
// Guarantees: every read of message bytes and every change of the mbox runs
// under the mailbox dotlock, after a sync, so a rewrite by mail(1) or a
// delivery is never half seen; a rewrite keeps mail appended meanwhile
// (rewrite.ts); UIDs only grow, and survive rewrites by other programs. With
// spec.beneath, nothing below those trusted directories (the mbox, its index)
// is reached through a symlink (safe-open.ts's openDirBeneath).
//
// This class is the façade; the parts, each in its file: the records and
// their lookup by UID (folder-records.ts), syncing with the mbox
// (folder-sync.ts), mod-sequences (folder-modseq.ts), flags and keywords and
// their headers (folder-flags.ts), the lock and the turn of work
// (folder-lock.ts), watching (folder-watch.ts), the index on disk
// (folder-store.ts, folder-file.ts, folder-cache.ts), reads (folder-reader.ts),
// APPEND (folder-append.ts) and EXPUNGE (folder-expunge.ts). Flags changed by
// sessions go into the headers at the next rewrite: an expunge, or the last
// session's close.

import { EventEmitter } from 'node:events';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { appendMessages, type NewMessage } from './folder-append.ts';
import { FolderCache, SPILL_BYTES } from './folder-cache.ts';
import { type IndexState, type MboxStamp, type MessageRecord, nextUidValidity } from './folder-file.ts';
import { rewriteFolder, rewriteNeeded } from './folder-expunge.ts';
import { KeywordTable } from './folder-flags.ts';
import { FolderLock } from './folder-lock.ts';
import { ModseqLog } from './folder-modseq.ts';
import { type FolderReader, makeReader } from './folder-reader.ts';
import { RecordTable, setKeywords } from './folder-records.ts';
import { IndexStore } from './folder-store.ts';
import { EMPTY_STAMP, fileStamp, rescan, sameStamp, scanAppended, statStamp, type SyncTarget } from './folder-sync.ts';
import { FolderWatch } from './folder-watch.ts';
import { recoverRewrite, type RewriteOptions } from './rewrite.ts';

export type { MessageRecord } from './folder-file.ts';
export type { FolderReader } from './folder-reader.ts';
export type { NewMessage } from './folder-append.ts';

export interface FolderSpec {
  mbox: string;
  /** Where mailtk.index lives; undefined keeps the index in memory only. */
  indexDir?: string;
  /** Owner of files we create (root only). */
  owner?: { uid: number; gid: number };
  /** Where rewriteMbox keeps its crash backup (the user's home, so mail(1) finds it). */
  backupDir?: string;
  /**
   * Trusted directories above the mbox and above the index directory: every
   * component below them is opened without following a symlink (IMAP passes
   * the user's home). Without them only each path's last component is checked.
   */
  beneath?: { mbox?: string; index?: string };
  /** Summaries to compute from a new message's header block and keep in the cache, by field name. */
  summaries?: Record<string, (header: Buffer) => Buffer>;
}

const open = new Map<string, Folder>();

/**
 * A folder this large, once let go, is collected before the next is read
 * (in a process started with --expose-gc, as session agents are): V8 frees
 * old objects only when its heap has grown well past what it last kept, so
 * logging out and in again held a 100,000-message INBOX's records and
 * ENVELOPE cache twice, the old copy garbage beside the new (bench/mailbox-open.sh).
 */
const COLLECT_AFTER = 10_000;
let released: NodeJS.Timeout | undefined;

function collect(): void {
  clearTimeout(released);
  released = undefined;
  (globalThis as { gc?: () => void }).gc?.();
}

/** The shared Folder for an mbox, its index loaded; call release() when done. */
export async function openFolder(spec: FolderSpec): Promise<Folder> {
  const key = path.resolve(spec.mbox);
  let f = open.get(key);
  if (!f) {
    if (released) collect();
    f = new Folder({ ...spec, mbox: key });
    open.set(key, f);
  } else if (spec.beneath) f.confine(spec.beneath);
  f.refs++;
  try {
    await f.loaded;
  } catch (e) {
    await f.release();
    throw e;
  }
  return f;
}

export class Folder extends EventEmitter implements SyncTarget {
  readonly mbox: string;
  refs = 0;
  uidValidity = 0;
  uidNext = 1;
  recentUid = 0;
  /** Goes up whenever messages or flags change, so that a session can skip comparing. */
  version = 0;
  readonly loaded: Promise<void>;
  readonly table = new RecordTable();
  readonly modseq = new ModseqLog();
  readonly keywordTable = new KeywordTable(() => this.store.schedule());
  stamp: MboxStamp = EMPTY_STAMP;
  /** The index on disk counted sizes as mboxo readers do; see load(). */
  legacyQuoting = false;
  private readonly cache = new FolderCache();
  private readonly lock: FolderLock;
  private readonly store: IndexStore;
  private watcher: FolderWatch | undefined;
  /** UIDs a MOVE of this process is copying: see claim(). */
  private moving = new Set<number>();
  private backupWarned = false;

  constructor(private readonly spec: FolderSpec) {
    super();
    this.setMaxListeners(0);
    this.mbox = spec.mbox;
    this.lock = new FolderLock(spec);
    const folder = this;
    this.store = new IndexStore(spec, this.lock, this.cache, {
      get uidValidity() {
        return folder.uidValidity;
      },
      state: () => this.indexState(),
      uids: () => Uint32Array.from(this.table.list, (r) => r.uid),
      has: (uid) => this.table.has(uid),
    }, (e) => this.emit('warning', e));
    this.loaded = this.load();
  }

  // ------------------------------------------------------------ the index

  /** The messages, in mbox order (ascending UIDs). */
  get records(): MessageRecord[] {
    return this.table.list;
  }

  /** The keywords in use; a record's keyword bit i is keywords[i]. */
  get keywords(): string[] {
    return this.keywordTable.names;
  }

  private async load(): Promise<void> {
    const state = await this.store.read();
    if (state) {
      Object.assign(this, { uidValidity: state.uidValidity, uidNext: state.uidNext, recentUid: state.recentUid, stamp: state.stamp });
      this.keywordTable.names = state.keywords;
      this.table.set(state.records);
      this.modseq.load(state, state.records);
      if (state.quoting !== 'mboxrd') {
        // Written when ^>>+From  lines were served with all their '>': their
        // sizes are one byte a line too big now. The next sync scans the
        // whole mbox and matches messages by the fingerprints of then, so
        // UIDs and flags stay.
        this.legacyQuoting = true;
        this.stamp = EMPTY_STAMP;
      }
      // Written before X-Keywords: was read: the next sync reads every header once (UIDs and flags stay).
      if (!state.keywordHeaders) this.stamp = EMPTY_STAMP;
    } else {
      this.store.markDirty(); // a new index: its UIDVALIDITY is kept even if the mailbox stays empty
      this.uidValidity = this.spec.indexDir ? await nextUidValidity(this.spec.indexDir, this.spec.owner, this.spec.beneath?.index) : Math.floor(Date.now() / 1000);
    }
    this.watcher = new FolderWatch(this.mbox, () => this.refs > 0, () => this.sync().catch((e) => this.emit('warning', e)));
  }

  private indexState(): IndexState {
    return {
      uidValidity: this.uidValidity, uidNext: this.uidNext, recentUid: this.recentUid, keywords: this.keywordTable.names, stamp: this.stamp,
      records: this.table.list, ...(this.legacyQuoting ? {} : { quoting: 'mboxrd' as const }),
      highestModseq: this.modseq.highest, vanished: this.modseq.vanished, vanishedFloor: this.modseq.floor, keywordHeaders: true,
    };
  }

  /** Adopt trusted directories a later opener knows of (the first may have had none). */
  confine(beneath: { mbox?: string; index?: string }): void {
    this.spec.beneath = { ...beneath, ...this.spec.beneath };
  }

  /** Read mailtk.cache, once, when a protocol first asks for a summary (POP3 never does). */
  ensureCache(): Promise<void> {
    return this.store.ensureCache();
  }

  /** Write the index and the cache, those that changed, now; never from inside locked() or read(). */
  save(): Promise<void> {
    return this.store.save();
  }

  /** RFC 7162's HIGHESTMODSEQ: the modseq of the latest change. */
  get highestModseq(): number {
    return this.modseq.highest;
  }

  /** UIDs expunged after `modseq`, ascending; undefined when that reaches back past what is remembered. */
  vanishedSince(modseq: number): number[] | undefined {
    return this.modseq.since(modseq);
  }

  // ------------------------------------------------------------ syncing

  /** Pick up changes by others; true when the messages changed. Cheap when nothing did. */
  async sync(): Promise<boolean> {
    if (sameStamp(await statStamp(this.mbox), this.stamp)) return false;
    // New messages' summaries are spilled into mailtk.cache as the scan makes them: it must be open first.
    if (this.spec.summaries) await this.store.ensureCache();
    return this.lock.locked(() => this.lock.withFile((fh) => this.syncLocked(fh)));
  }

  private async syncLocked(fh: Parameters<typeof fileStamp>[0]): Promise<boolean> {
    const stamp = await fileStamp(fh, this.mbox);
    if (sameStamp(stamp, this.stamp)) return false;
    if (!(await scanAppended(this, fh, stamp))) {
      if (fh && recoverRewrite(this.mbox, this.rewriteOptions())) return this.syncLocked(fh);
      await rescan(this, fh, stamp.size);
    }
    this.stamp = stamp;
    this.version++;
    this.store.schedule();
    this.emit('change');
    return true;
  }

  /** SyncTarget: a new message's summaries, into the cache. */
  summarize(uid: number, header: Buffer): void {
    for (const [field, fn] of Object.entries(this.spec.summaries ?? {})) this.putCache(field, uid, fn(header));
  }

  // ------------------------------------------------------------ reading

  /** Run fn with reads of the mbox, under the lock, after a sync. */
  read<T>(fn: (reader: FolderReader) => Promise<T>): Promise<T> {
    return this.lock.locked(() =>
      this.lock.withFile(async (fh) => {
        await this.syncLocked(fh);
        return fn(makeReader(fh, this.mbox));
      }),
    );
  }

  byUidGet(uid: number): MessageRecord | undefined {
    return this.table.get(uid);
  }

  getCache(field: string, uid: number): Buffer | undefined {
    return this.cache.get(field, uid);
  }

  hasCache(field: string, uid: number): boolean {
    return this.cache.has(field, uid);
  }

  /** Keep a summary; past a few MB held in memory, they are appended to mailtk.cache and let go (or the next turn rewrites it). */
  putCache(field: string, uid: number, bytes: Buffer): void {
    this.cache.set(field, uid, bytes);
    const full = this.cache.heldBytes > SPILL_BYTES;
    this.store.schedule(false, full && !this.store.spillNow());
  }

  // ------------------------------------------------------------ flags

  /** UIDs above the recent mark, which this caller now owns as \Recent (claim = false only looks). */
  takeRecent(claim: boolean): Set<number> {
    const out = new Set<number>();
    const rs = this.table.list;
    for (let i = rs.length - 1; i >= 0 && rs[i].uid > this.recentUid; i--) out.add(rs[i].uid);
    if (claim && out.size > 0) {
      this.recentUid = this.uidNext - 1;
      this.store.schedule();
    }
    return out;
  }

  /** The bit of a keyword, made if new; undefined when 32 are in use. */
  keywordBit(name: string, make: boolean): number | undefined {
    return this.keywordTable.bit(name, make);
  }

  keywordNames(mask: number): string[] {
    return this.keywordTable.namesOf(mask);
  }

  /** Set, add or remove flags and keyword bits; the records that changed. Emits 'flags'. */
  setFlags(uids: number[], mode: 'set' | 'add' | 'remove', flags: number, keywords: number): MessageRecord[] {
    const changed: MessageRecord[] = [];
    for (const uid of uids) {
      const r = this.table.get(uid);
      if (!r) continue;
      const [f, k] =
        mode === 'set' ? [flags, keywords] : mode === 'add' ? [r.flags | flags, (r.keywords | keywords) >>> 0] : [r.flags & ~flags, (r.keywords & ~keywords) >>> 0];
      if (f === r.flags && k === r.keywords) continue;
      r.flags = f;
      if (k !== r.keywords) setKeywords(r, k);
      changed.push(r);
    }
    if (changed.length) {
      const modseq = this.modseq.next();
      for (const r of changed) r.modseq = modseq;
      this.version++;
      this.store.schedule();
      this.emit('flags', changed.map((r) => r.uid));
    }
    return changed;
  }

  /**
   * Claim messages for a MOVE: the UIDs no other session of this process is
   * moving, now marked as ours until unclaim(), so that two MOVEs of one
   * message cannot both copy it.
   */
  claim(uids: number[]): number[] {
    const mine = uids.filter((u) => !this.moving.has(u) && this.table.has(u));
    for (const u of mine) this.moving.add(u);
    return mine;
  }

  unclaim(uids: number[]): void {
    for (const u of uids) this.moving.delete(u);
  }

  // ------------------------------------------------------------ changing the mbox

  /** Append messages (IMAP APPEND, COPY); their UIDs, in order. Their flags and keywords travel in their headers. */
  append(messages: NewMessage[]): Promise<number[]> {
    if (messages.length === 0) return Promise.resolve([]);
    return this.lock.locked(async () => {
      await this.lock.withFile(async (fh) => {
        await this.syncLocked(fh);
        await appendMessages(this.spec, fh, messages);
      });
      const before = this.table.list.length;
      await this.lock.withFile((fh) => this.syncLocked(fh));
      return this.table.list.slice(before).map((r) => r.uid);
    });
  }

  /**
   * Remove messages by UID and write pending flags into the headers of the
   * rest, in one rewrite that keeps mail appended meanwhile. The UIDs removed.
   */
  expunge(uids: Iterable<number>): Promise<number[]> {
    const gone = new Set(uids);
    return this.lock.locked((lock) =>
      this.lock.withFile(async (fh) => {
        await this.syncLocked(fh);
        if (!fh || !rewriteNeeded(this.table.list, gone)) return [];
        const removed = this.table.list.filter((r) => gone.has(r.uid)).map((r) => r.uid);
        await rewriteFolder({ mbox: this.mbox, table: this.table, keywords: this.keywordTable, size: this.stamp.size }, fh, gone, lock, this.rewriteOptions());
        this.stamp = EMPTY_STAMP; // whatever it was, scan it all again
        await this.syncLocked(fh);
        return removed.filter((uid) => !this.table.has(uid));
      }),
    );
  }

  private rewriteOptions(): RewriteOptions {
    return {
      backupDir: this.spec.backupDir,
      beneath: this.spec.beneath?.mbox,
      onIgnoredBackup: (why) => {
        if (this.backupWarned) return;
        this.backupWarned = true;
        this.emit('warning', new MailError('mailbox-unsafe', `ignored a rewrite backup: ${why}`, { file: this.mbox }));
      },
    };
  }

  /** One fewer user; the last one writes pending flags into the mbox and the index to disk. */
  async release(): Promise<void> {
    if (--this.refs > 0) return;
    try {
      if (rewriteNeeded(this.table.list, new Set())) await this.expunge([]);
    } catch (e) {
      this.emit('warning', e);
    }
    try {
      await this.save();
    } catch (e) {
      this.emit('warning', e);
    }
    if (this.refs > 0) return; // opened again meanwhile
    this.watcher?.close();
    if (open.get(this.mbox) === this) open.delete(this.mbox);
    this.store.close().catch((e) => this.emit('warning', e));
    // Collected at the next open, or in a moment if none comes (the session that let go is gone by then).
    if (this.table.list.length >= COLLECT_AFTER && !released) released = setTimeout(collect, 1000).unref();
  }
}
