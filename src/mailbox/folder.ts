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
// How we sync: stat the mbox; unchanged (dev, inode, size, mtime) means the
// index holds. Grown, with the last known message still in place and a blank
// line at the old end, means deliveries: scan only the new bytes. Anything else
// means a rewrite: scan it all and match the messages in order against the old
// index by fingerprint (visible header + body size, so changed Status: lines
// do not matter); once one message fails to match, it and all after it get new
// UIDs, which keeps UIDs ascending. Flags come from the index, except where
// the Status:/X-Status: headers changed since the last scan (mail(1) marked
// it): then the headers win. Flags go into the headers at the next rewrite:
// an expunge, or the last session's close.
//
// Mod-sequences (RFC 7162): highestModseq goes up by one for each change, and
// the records changed take it: new messages, flag changes (setFlags, or the
// headers changed by another program), and the UIDs a sync no longer finds,
// remembered with it in `vanished` (the last VANISHED_MAX; older ones only as
// vanishedFloor). Known limit: a change made less than SAVE_DELAY_MS before a
// crash is lost with its modseq, which a later change then takes again.

import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { acquireMailboxLock } from './dotlock-helper.ts';
import type { Dotlock } from './dotlock.ts';
import {
  CACHE_FILE, decodeIndex, encodeIndex, INDEX_FILE,
  type IndexState, type MboxStamp, type MessageRecord, nextUidValidity, openIndexDir, readIndexFile, replaceIndexFile,
} from './folder-file.ts';
import { FolderCache } from './folder-cache.ts';
import { fingerprint, flagsFromHeader, withStatusHeaders } from './folder-flags.ts';
import { type ScannedMessage, scanFolder } from './folder-scan.ts';
import { storedForm } from './format.ts';
import { appendAllOrNothing } from './io.ts';
import { recoverRewrite, rewriteMbox, type RewriteKeep } from './rewrite.ts';
import { lstatBeneath, openDirBeneath, openMailbox, UnsafePath } from './safe-open.ts';
import type { MboxEntry, MboxIndex } from './scan.ts';

export type { MessageRecord } from './folder-file.ts';

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

export interface NewMessage {
  /** The message, LF line ends. */
  data: Buffer;
  flags: number;
  keywords: string[];
  date: Date;
}

/** Reads of stored bytes, valid inside Folder.read() only. */
export interface FolderReader {
  /** The stored header block (blank line included). */
  header(r: MessageRecord): Promise<Buffer>;
  /**
   * Stored bytes [from, to) counted from the first header byte, in chunks.
   * With `into`, each chunk is a view of that buffer, good until the next is
   * asked for: a copy loop then allocates nothing per chunk.
   */
  chunks(r: MessageRecord, from: number, to: number, into?: Buffer): AsyncGenerator<Buffer>;
}

const CHUNK = 256 << 10;
const SAVE_DELAY_MS = 300;
const POLL_MS = 5000;
/** Expunged UIDs remembered with their modseq for QRESYNC; older ones are answered conservatively. */
const VANISHED_MAX = 2000;
const EMPTY_STAMP: MboxStamp = { dev: '0', ino: '0', size: 0, mtimeNs: '0' };
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

const open = new Map<string, Folder>();

/** The shared Folder for an mbox, its index loaded; call release() when done. */
export async function openFolder(spec: FolderSpec): Promise<Folder> {
  const key = path.resolve(spec.mbox);
  let f = open.get(key);
  if (!f) {
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

export class Folder extends EventEmitter {
  readonly mbox: string;
  refs = 0;
  uidValidity = 0;
  uidNext = 1;
  recentUid = 0;
  keywords: string[] = [];
  records: MessageRecord[] = [];
  /** Goes up whenever messages or flags change, so that a session can skip comparing. */
  version = 0;
  /** RFC 7162's HIGHESTMODSEQ: the modseq of the latest change. */
  highestModseq = 1;
  /** [uid, modseq of its expunge], oldest first; expunges up to vanishedFloor are forgotten. */
  vanished: Array<[number, number]> = [];
  vanishedFloor = 0;
  private readonly cache = new FolderCache();
  readonly loaded: Promise<void>;
  /**
   * Records by UID, made only if `records` are not in ascending UID order
   * (they always are as this file makes them): else byUidGet searches them,
   * and a 100,000-message folder holds no Map of 100,000 entries.
   */
  private byUidMap: Map<number, MessageRecord> | undefined;
  private stamp: MboxStamp = EMPTY_STAMP;
  /** The index on disk counted sizes as mboxo readers do; see load(). */
  private legacyQuoting = false;
  private mutex: Promise<unknown> = Promise.resolve();
  private saveTimer: NodeJS.Timeout | undefined;
  /** What the files on disk lack: the index (records, UIDs, flags...), the cache. */
  private indexDirty = false;
  private cacheDirty = false;
  private watcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private kickTimer: NodeJS.Timeout | undefined;

  constructor(private readonly spec: FolderSpec) {
    super();
    this.setMaxListeners(0);
    this.mbox = spec.mbox;
    this.loaded = this.load();
  }

  // ------------------------------------------------------------ index on disk

  private async load(): Promise<void> {
    const state = this.spec.indexDir ? await this.readIndex() : undefined;
    if (state) {
      Object.assign(this, { uidValidity: state.uidValidity, uidNext: state.uidNext, recentUid: state.recentUid, keywords: state.keywords, stamp: state.stamp });
      this.setRecords(state.records);
      this.loadModseqs(state);
      if (state.quoting !== 'mboxrd') {
        // Written when ^>>+From  lines were served with all their '>': their
        // sizes are one byte a line too big now. The next sync scans the
        // whole mbox and matches messages by the fingerprints of then, so
        // UIDs and flags stay.
        this.legacyQuoting = true;
        this.stamp = EMPTY_STAMP;
      }
    } else {
      this.indexDirty = true; // a new index: its UIDVALIDITY is kept even if the mailbox stays empty
      this.uidValidity = this.spec.indexDir ? await nextUidValidity(this.spec.indexDir, this.spec.owner, this.spec.beneath?.index) : Math.floor(Date.now() / 1000);
    }
    this.watch();
  }

  /** The index's modseqs, checked: HIGHESTMODSEQ never below a message's, the expunge list well formed. */
  private loadModseqs(state: IndexState): void {
    let high = Number.isSafeInteger(state.highestModseq) ? (state.highestModseq as number) : 1;
    for (const r of this.records) if (r.modseq > high) high = r.modseq;
    this.highestModseq = Math.max(1, high);
    const list = Array.isArray(state.vanished) ? state.vanished : [];
    this.vanished = list.filter((p) => Array.isArray(p) && Number.isSafeInteger(p[0]) && Number.isSafeInteger(p[1]));
    this.vanishedFloor = Number.isSafeInteger(state.vanishedFloor) ? (state.vanishedFloor as number) : 0;
    if (state.highestModseq === undefined) this.vanishedFloor = this.highestModseq; // version 1: no history
  }

  /**
   * UIDs expunged after `modseq`, ascending; undefined when that reaches back
   * past what is remembered (the caller then answers conservatively).
   */
  vanishedSince(modseq: number): number[] | undefined {
    if (modseq < this.vanishedFloor) return undefined;
    return this.vanished.filter(([, m]) => m > modseq).map(([uid]) => uid).sort((a, b) => a - b);
  }

  /** Remember UIDs that are gone, under one new modseq. */
  private noteVanished(uids: number[]): void {
    if (uids.length === 0) return;
    const m = ++this.highestModseq;
    for (const uid of uids) this.vanished.push([uid, m]);
    if (this.vanished.length > VANISHED_MAX) {
      const dropped = this.vanished.splice(0, this.vanished.length - VANISHED_MAX);
      this.vanishedFloor = Math.max(this.vanishedFloor, dropped[dropped.length - 1][1]);
    }
  }

  /** Adopt trusted directories a later opener knows of (the first may have had none). */
  confine(beneath: { mbox?: string; index?: string }): void {
    this.spec.beneath = { ...beneath, ...this.spec.beneath };
  }

  /** Refuse now when a directory on the way to the mbox or its index is a symlink (UnsafePath). */
  private checkPaths(): void {
    const { mbox, index } = this.spec.beneath ?? {};
    if (mbox) lstatBeneath(this.mbox, mbox);
    if (index && this.spec.indexDir) lstatBeneath(this.spec.indexDir, index);
  }

  /** The mbox's path for open(2): through its held directory when there is a trusted one. */
  private withMboxPath<T>(fn: (at: string) => Promise<T>): Promise<T> {
    const anchor = this.spec.beneath?.mbox;
    if (!anchor) return fn(this.mbox);
    const dir = openDirBeneath(path.dirname(this.mbox), anchor);
    if (!dir) return Promise.reject(Object.assign(new Error(`${path.dirname(this.mbox)}: no such directory`), { code: 'ENOENT' }));
    return fn(dir.at(path.basename(this.mbox))).finally(() => dir.close());
  }

  private cacheLoaded: Promise<void> | undefined;

  /** Read mailtk.cache, once, when a protocol first asks for a summary (POP3 never does). */
  ensureCache(): Promise<void> {
    this.cacheLoaded ??= (async () => {
      if (!this.spec.indexDir) return;
      const bytes = await readIndexFile(this.spec.indexDir, CACHE_FILE, this.spec.beneath?.index).catch(() => undefined);
      // Entries made since the open (new messages) win over the file's.
      if (bytes) this.cache.load(bytes, this.uidValidity, (uid) => this.byUidGet(uid) !== undefined);
    })();
    return this.cacheLoaded;
  }

  private async readIndex(): Promise<IndexState | undefined> {
    const bytes = await readIndexFile(this.spec.indexDir!, INDEX_FILE, this.spec.beneath?.index).catch((e) => {
      if (e instanceof UnsafePath) throw e; // a symlink on the way: refuse the folder, do not start afresh
      return undefined;
    });
    return bytes ? decodeIndex(bytes) : undefined;
  }

  private setRecords(records: MessageRecord[]): void {
    this.records = records;
    this.byUidMap = undefined;
    for (let i = 1; i < records.length; i++) {
      if (records[i].uid > records[i - 1].uid) continue;
      this.byUidMap = new Map();
      for (const r of records) this.byUidMap.set(r.uid, r);
      break;
    }
  }

  /** Write the index (`index`: it changed; else only the cache did) a moment from now. */
  private scheduleSave(index = true): void {
    if (index) this.indexDirty = true;
    if (!this.spec.indexDir || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined;
      void this.save().catch((e) => this.emit('warning', e));
    }, SAVE_DELAY_MS);
  }

  /**
   * Write the index and the cache, those that changed, now. Saves run one at
   * a time, in turn with syncs and the other locked work (no dotlock taken),
   * so that no half-made scan is ever written; so never call it from inside
   * locked() or read(), where it would wait for itself.
   */
  save(): Promise<void> {
    if (!this.spec.indexDir) return Promise.resolve();
    if (this.saveTimer) clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const run = this.mutex.then(() => this.saveNow());
    this.mutex = run.catch(() => undefined);
    return run;
  }

  private async saveNow(): Promise<void> {
    if (!this.indexDirty && !this.cacheDirty) return;
    const [index, cache] = [this.indexDirty, this.cacheDirty];
    if (cache) await this.ensureCache(); // what is on disk must not be lost by writing only what is in memory
    this.indexDirty = false;
    this.cacheDirty = false;
    const dir = openIndexDir(this.spec.indexDir!, this.spec.owner, this.spec.beneath?.index);
    try {
      if (index) {
        const state: IndexState = {
          uidValidity: this.uidValidity, uidNext: this.uidNext, recentUid: this.recentUid, keywords: this.keywords, stamp: this.stamp, records: this.records,
          ...(this.legacyQuoting ? {} : { quoting: 'mboxrd' as const }),
          highestModseq: this.highestModseq, vanished: this.vanished, vanishedFloor: this.vanishedFloor,
        };
        await replaceIndexFile(dir, INDEX_FILE, encodeIndex(state), this.spec.owner);
      }
      if (cache) {
        const uids = new Uint32Array(this.records.length);
        for (let i = 0; i < uids.length; i++) uids[i] = this.records[i].uid;
        await replaceIndexFile(dir, CACHE_FILE, this.cache.encode(this.uidValidity, uids), this.spec.owner);
      }
    } catch (e) {
      if (index) this.indexDirty = true;
      if (cache) this.cacheDirty = true;
      throw e;
    } finally {
      dir.close();
    }
  }

  // ------------------------------------------------------------ watching

  /** inotify on the directory (a rewrite or a first delivery changes the name's inode), and a slow poll. */
  private watch(): void {
    const name = path.basename(this.mbox);
    try {
      this.watcher = fs.watch(path.dirname(this.mbox), (_event, file) => {
        if (file === null || file === name) this.kick();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // No inotify here: the poll alone notices changes.
    }
    this.poll = setInterval(() => this.kick(), POLL_MS);
    this.poll.unref();
  }

  private kick(): void {
    if (this.kickTimer || this.refs === 0) return;
    this.kickTimer = setTimeout(() => {
      this.kickTimer = undefined;
      this.sync().catch((e) => this.emit('warning', e));
    }, 20);
  }

  // ------------------------------------------------------------ locking and syncing

  /** Run fn under this process's queue for the folder and the mbox dotlock. */
  locked<T>(fn: (lock: Dotlock) => Promise<T>): Promise<T> {
    const run = this.mutex.then(async () => {
      this.checkPaths(); // before the dotlock, which is made by path beside the mbox
      const lock = await acquireMailboxLock(this.mbox);
      const refresh = setInterval(() => lock.refresh(), 60_000);
      try {
        return await fn(lock);
      } finally {
        clearInterval(refresh);
        lock.release();
      }
    });
    this.mutex = run.catch(() => undefined);
    return run;
  }

  /** Pick up changes by others; true when the messages changed. Cheap when nothing did. */
  async sync(): Promise<boolean> {
    if (sameStamp(await statStamp(this.mbox), this.stamp)) return false;
    return this.locked(() => this.withFile((fh) => this.syncLocked(fh)));
  }

  private async withFile<T>(fn: (fh: fs.promises.FileHandle | undefined) => Promise<T>): Promise<T> {
    let fh: fs.promises.FileHandle | undefined;
    try {
      fh = await this.withMboxPath((at) => fs.promises.open(at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new MailError('mailbox-unsafe', 'mailbox is a symbolic link', { file: this.mbox });
      if (code !== 'ENOENT') throw e;
    }
    try {
      return await fn(fh);
    } finally {
      await fh?.close();
    }
  }

  private async syncLocked(fh: fs.promises.FileHandle | undefined): Promise<boolean> {
    const st = fh ? await fh.stat({ bigint: true }) : undefined;
    if (st && !st.isFile()) throw new MailError('mailbox-unsafe', 'mailbox is not a regular file', { file: this.mbox });
    const stamp = st ? toStamp(st) : EMPTY_STAMP;
    if (sameStamp(stamp, this.stamp)) return false;
    if (fh && (await this.onlyAppended(fh, stamp))) {
      await scanFolder(fh, this.mbox, this.stamp.size, stamp.size, (m) => this.addNew(m));
    } else if (fh) {
      if (recoverRewrite(this.mbox, this.rewriteOptions())) return this.syncLocked(fh);
      const merger = this.merger();
      await scanFolder(fh, this.mbox, 0, stamp.size, merger.add);
      merger.finish();
      this.legacyQuoting = false;
    } else {
      this.merger().finish();
      this.legacyQuoting = false;
    }
    this.stamp = stamp;
    this.version++;
    this.scheduleSave();
    this.emit('change');
    return true;
  }

  /** Same file, longer, the last message we know still in place, a blank line at the old end. */
  private async onlyAppended(fh: fs.promises.FileHandle, stamp: MboxStamp): Promise<boolean> {
    const old = this.stamp;
    if (old.size === 0 || stamp.dev !== old.dev || stamp.ino !== old.ino || stamp.size <= old.size) return false;
    const tail = Buffer.alloc(7);
    await fh.read(tail, 0, 7, old.size - 2);
    if (tail.toString('latin1') !== '\n\nFrom ') return false;
    const last = this.records[this.records.length - 1];
    if (!last) return false;
    const header = await readAt(fh, last.offset + last.fromLen, last.headerLength);
    return header.length === last.headerLength && fingerprint(header, last.size - last.headerSize) === last.fp;
  }

  /** `fp`: the message's fingerprint when the caller has made it already. */
  private summarize(s: ScannedMessage, uid: number, fp = fingerprint(s.header, s.size - s.headerSize)): MessageRecord {
    const hf = flagsFromHeader(s.header);
    for (const [field, fn] of Object.entries(this.spec.summaries ?? {})) this.putCache(field, uid, fn(s.header));
    return {
      uid, offset: s.offset, length: s.length, fromLen: s.fromLen, headerLength: s.headerLength, size: s.size,
      headerSize: s.headerSize, internalDate: s.internalDate, fp,
      flags: hf, headerFlags: hf, keywords: 0, modseq: ++this.highestModseq,
    };
  }

  private addNew(s: ScannedMessage): void {
    const r = this.summarize(s, this.uidNext++);
    const last = this.records[this.records.length - 1];
    this.records.push(r);
    if (this.byUidMap) this.byUidMap.set(r.uid, r);
    else if (last && last.uid >= r.uid) this.setRecords(this.records);
  }

  /** A whole new scan, message by message, matched against the old records; see the file comment. */
  private merger(): { add: (s: ScannedMessage) => void; finish: () => void } {
    const old = this.records;
    const out: MessageRecord[] = [];
    let j = 0;
    let fresh = false;
    const legacy = this.legacyQuoting;
    const add = (s: ScannedMessage) => {
      const fp = fingerprint(s.header, s.size - s.headerSize);
      // An index of before mboxrd counted the body as served then (see ScannedMessage.deepQuoted).
      const then = legacy && s.deepQuoted > 0 ? fingerprint(s.header, s.size - s.headerSize + s.deepQuoted) : fp;
      let k = fresh ? -1 : j;
      while (k >= 0 && k < old.length && old[k].fp !== then) k++;
      if (k < 0 || k >= old.length) {
        fresh = true;
        out.push(this.summarize(s, this.uidNext++, fp));
        return;
      }
      const o = old[k];
      j = k + 1;
      const hf = flagsFromHeader(s.header);
      const flags = hf !== o.headerFlags ? hf : o.flags;
      out.push({
        ...o, offset: s.offset, length: s.length, fromLen: s.fromLen, headerLength: s.headerLength, size: s.size,
        headerSize: s.headerSize, internalDate: s.internalDate, flags, headerFlags: hf, fp,
        modseq: flags !== o.flags ? ++this.highestModseq : o.modseq,
      });
    };
    const finish = () => {
      this.setRecords(out);
      this.noteVanished(old.filter((r) => !this.hasUid(r.uid)).map((r) => r.uid));
      // The cache keeps the blobs of UIDs gone until it is next written (UIDs are never reused).
    };
    return { add, finish };
  }

  // ------------------------------------------------------------ reading

  /** Run fn with reads of the mbox, under the lock, after a sync. */
  read<T>(fn: (reader: FolderReader) => Promise<T>): Promise<T> {
    return this.locked(() =>
      this.withFile(async (fh) => {
        await this.syncLocked(fh);
        return fn(makeReader(fh, this.mbox));
      }),
    );
  }

  byUidGet(uid: number): MessageRecord | undefined {
    if (this.byUidMap) return this.byUidMap.get(uid);
    const rs = this.records;
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = rs[mid].uid;
      if (v === uid) return rs[mid];
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  private hasUid(uid: number): boolean {
    return this.byUidGet(uid) !== undefined;
  }

  getCache(field: string, uid: number): Buffer | undefined {
    return this.cache.get(field, uid);
  }

  putCache(field: string, uid: number, bytes: Buffer): void {
    this.cache.set(field, uid, bytes);
    this.cacheDirty = true;
    this.scheduleSave(false);
  }

  // ------------------------------------------------------------ flags

  /** UIDs above the recent mark, which this caller now owns as \Recent (claim = false only looks). */
  takeRecent(claim: boolean): Set<number> {
    const out = new Set<number>();
    for (let i = this.records.length - 1; i >= 0 && this.records[i].uid > this.recentUid; i--) out.add(this.records[i].uid);
    if (claim && out.size > 0) {
      this.recentUid = this.uidNext - 1;
      this.scheduleSave();
    }
    return out;
  }

  /** The bit of a keyword, made if new; undefined when 32 are in use. */
  keywordBit(name: string, make: boolean): number | undefined {
    let i = this.keywords.findIndex((k) => k.toLowerCase() === name.toLowerCase());
    if (i < 0 && make && this.keywords.length < 32) {
      i = this.keywords.push(name) - 1;
      this.scheduleSave();
    }
    return i < 0 ? undefined : 2 ** i;
  }

  keywordNames(mask: number): string[] {
    return this.keywords.filter((_, i) => (mask & (2 ** i)) !== 0);
  }

  /** Set, add or remove flags and keyword bits; the records that changed. Emits 'flags'. */
  setFlags(uids: number[], mode: 'set' | 'add' | 'remove', flags: number, keywords: number): MessageRecord[] {
    const changed: MessageRecord[] = [];
    for (const uid of uids) {
      const r = this.byUidGet(uid);
      if (!r) continue;
      const [f, k] =
        mode === 'set' ? [flags, keywords] : mode === 'add' ? [r.flags | flags, (r.keywords | keywords) >>> 0] : [r.flags & ~flags, (r.keywords & ~keywords) >>> 0];
      if (f === r.flags && k === r.keywords) continue;
      r.flags = f;
      r.keywords = k;
      changed.push(r);
    }
    if (changed.length) {
      const modseq = ++this.highestModseq;
      for (const r of changed) r.modseq = modseq;
      this.version++;
      this.scheduleSave();
      this.emit('flags', changed.map((r) => r.uid));
    }
    return changed;
  }

  private moving = new Set<number>();

  /**
   * Claim messages for a MOVE: the UIDs no other session of this process is
   * moving, now marked as ours until unclaim(), so that two MOVEs of one
   * message cannot both copy it.
   */
  claim(uids: number[]): number[] {
    const mine = uids.filter((u) => !this.moving.has(u) && this.hasUid(u));
    for (const u of mine) this.moving.add(u);
    return mine;
  }

  unclaim(uids: number[]): void {
    for (const u of uids) this.moving.delete(u);
  }

  // ------------------------------------------------------------ changing the mbox

  /** Append messages (IMAP APPEND, COPY); their UIDs, in order. */
  append(messages: NewMessage[]): Promise<number[]> {
    if (messages.length === 0) return Promise.resolve([]);
    return this.locked(async () => {
      await this.withFile(async (fh) => {
        await this.syncLocked(fh);
        const root = this.spec.owner && process.geteuid?.() === 0;
        const box = openMailbox(this.mbox, {
          ...(root ? { ownerUid: this.spec.owner!.uid, chownTo: this.spec.owner } : {}),
          refuseExecutable: false,
          unsafe: 'mailbox-unsafe',
          beneath: this.spec.beneath?.mbox,
        });
        try {
          const pieces = [await separatorBefore(fh, box.fd, box.size, this.mbox), ...messages.flatMap(formatForAppend)];
          await appendAllOrNothing(box.fd, pieces, box.size);
        } finally {
          fs.closeSync(box.fd);
        }
      });
      const before = this.records.length;
      await this.withFile((fh) => this.syncLocked(fh));
      const added = this.records.slice(before);
      added.forEach((r, i) => {
        const kw = messages[i]?.keywords ?? [];
        r.keywords = kw.reduce((m, name) => (m | (this.keywordBit(name, true) ?? 0)) >>> 0, 0);
      });
      return added.map((r) => r.uid);
    });
  }

  /**
   * Remove messages by UID and write pending flags into the headers of the
   * rest, in one rewrite that keeps mail appended meanwhile. The UIDs removed.
   */
  expunge(uids: Iterable<number>): Promise<number[]> {
    const gone = new Set(uids);
    return this.locked((lock) =>
      this.withFile(async (fh) => {
        await this.syncLocked(fh);
        if (!fh) return [];
        const removed = this.records.filter((r) => gone.has(r.uid)).map((r) => r.uid);
        const dirty = this.records.filter((r) => !gone.has(r.uid) && r.flags !== r.headerFlags);
        if (removed.length === 0 && dirty.length === 0) return [];
        const keep = await this.keepList(fh, gone);
        await rewriteMbox(this.mbox, await this.mboxIndex(fh), keep, { lock, ...this.rewriteOptions() });
        this.stamp = EMPTY_STAMP; // whatever it was, scan it all again
        await this.syncLocked(fh);
        return removed.filter((uid) => !this.hasUid(uid));
      }),
    );
  }

  private async keepList(fh: fs.promises.FileHandle, gone: Set<number>): Promise<RewriteKeep[]> {
    const keep: RewriteKeep[] = [];
    for (const r of this.records) {
      if (gone.has(r.uid)) continue;
      const entry = toEntry(r);
      if (r.flags === r.headerFlags) keep.push({ entry });
      else keep.push({ entry, headers: withStatusHeaders(await readAt(fh, r.offset + r.fromLen, r.headerLength), r.flags) });
    }
    return keep;
  }

  /** rewriteMbox's view of the file: our records as scan.ts entries, From_ lines read now. */
  private async mboxIndex(fh: fs.promises.FileHandle): Promise<MboxIndex> {
    const messages: MboxEntry[] = this.records.map(toEntry);
    for (const e of [messages[0], messages[messages.length - 1]]) {
      if (!e) continue;
      const line = await readAt(fh, e.offset, e.dataOffset - e.offset);
      e.fromLine = line.subarray(0, Math.min(line.length, 1000)).toString('utf8').replace(/\r?\n$/, '');
    }
    return { path: this.mbox, size: this.stamp.size, mtimeMs: 0, messages };
  }

  private rewriteOptions(): { backupDir?: string; beneath?: string; onIgnoredBackup: (why: string) => void } {
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

  private backupWarned = false;

  /** One fewer user; the last one writes pending flags into the mbox and the index to disk. */
  async release(): Promise<void> {
    if (--this.refs > 0) return;
    try {
      if (this.records.some((r) => r.flags !== r.headerFlags)) await this.expunge([]);
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
    if (this.poll) clearInterval(this.poll);
    if (this.kickTimer) clearTimeout(this.kickTimer);
    if (open.get(this.mbox) === this) open.delete(this.mbox);
  }
}

// ------------------------------------------------------------ helpers

function toStamp(st: fs.BigIntStats): MboxStamp {
  return { dev: String(st.dev), ino: String(st.ino), size: Number(st.size), mtimeNs: String(st.mtimeNs) };
}

function sameStamp(a: MboxStamp, b: MboxStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino && a.dev === b.dev;
}

async function statStamp(file: string): Promise<MboxStamp> {
  try {
    return toStamp(await fs.promises.stat(file, { bigint: true }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_STAMP;
    throw e;
  }
}

function toEntry(r: MessageRecord): MboxEntry {
  return { offset: r.offset, length: r.length, dataOffset: r.offset + r.fromLen, headerLength: r.headerLength, fromLine: '', quoted: 0 };
}

/** Up to `len` bytes at `pos`, read into `buf` (which must hold them) or a new buffer. */
async function readAt(fh: fs.promises.FileHandle, pos: number, len: number, buf: Buffer = Buffer.allocUnsafe(len)): Promise<Buffer> {
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

function makeReader(fh: fs.promises.FileHandle | undefined, file: string): FolderReader {
  const need = (): fs.promises.FileHandle => {
    if (!fh) throw new MailError('mailbox-io', 'mailbox vanished', { file });
    return fh;
  };
  return {
    header: (r) => readAt(need(), r.offset + r.fromLen, r.headerLength),
    async *chunks(r, from, to, into) {
      const base = r.offset + r.fromLen;
      const end = Math.min(to, r.length - r.fromLen);
      for (let pos = from; pos < end; ) {
        const piece = await readAt(need(), base + pos, Math.min(into?.length ?? CHUNK, end - pos), into);
        if (piece.length === 0) throw new MailError('mailbox-io', 'mailbox shrank while being read', { file });
        yield piece;
        pos += piece.length;
      }
    },
  };
}

/**
 * The blank line a new message needs before its From_ line, given how the file
 * ends now: read through `fh`, the same file opened for reading (the append
 * descriptor is write-only).
 */
async function separatorBefore(fh: fs.promises.FileHandle | undefined, fd: number, size: number, file: string): Promise<Buffer> {
  if (size === 0) return Buffer.alloc(0);
  const mine = fs.fstatSync(fd);
  const st = fh ? await fh.stat() : undefined;
  if (!st || st.dev !== mine.dev || st.ino !== mine.ino) {
    throw new MailError('mailbox-io', 'mailbox was replaced while being appended to; nothing was written', { file });
  }
  const tail = await readAt(fh!, size - Math.min(2, size), Math.min(2, size));
  if (tail.length === 2 && tail[0] === 0x0a && tail[1] === 0x0a) return Buffer.alloc(0);
  return Buffer.from(tail[tail.length - 1] === 0x0a ? '\n' : '\n\n');
}

/** The stored form (format.ts): From_ line, flags in Status:/X-Status:/X-Keywords:, mboxrd quoting, newline, blank line. */
function formatForAppend(m: NewMessage): Buffer[] {
  return storedForm(m.data, { sender: '', date: m.date, flags: { system: m.flags, keywords: m.keywords } });
}
