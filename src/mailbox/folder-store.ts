// A folder's index on disk (folder-file.ts's mailtk.index and mailtk.cache):
// the index read once at open; the cache opened (made if missing) when a
// protocol first asks for a summary or a sync is about to make some, and
// kept open to read summaries from (folder-cache.ts). Written a moment after
// a change, or at once by save(), each file only when it changed; summaries
// held in memory are also appended as soon as they pass a few MB, even in
// the middle of a scan. Saves run in the folder's turn (FolderLock.queued)
// without the dotlock, so that no half-made scan is ever written; so never
// call save() from inside locked work, where it would wait for itself.

import {
  CACHE_FILE, decodeIndex, INDEX_FILE, type IndexState, indexPieces, isIndexFile, openIndexDir, openIndexFile, readIndexFile, replaceIndexFile,
} from './folder-file.ts';
import { CacheFile, type FolderCache } from './folder-cache.ts';
import type { FolderLock } from './folder-lock.ts';
import { type HeldDir, UnsafePath } from './safe-open.ts';

const SAVE_DELAY_MS = 300;

export interface StorePlace {
  /** Where mailtk.index lives; undefined keeps the index in memory only. */
  indexDir?: string;
  owner?: { uid: number; gid: number };
  beneath?: { index?: string };
}

/** The folder as a save writes it: the index state, and the UIDs whose cache entries are kept. */
export interface Snapshot {
  readonly uidValidity: number;
  state(): IndexState;
  uids(): Uint32Array;
  has(uid: number): boolean;
}

export class IndexStore {
  /** What the files on disk lack: the index (records, UIDs, flags...), the cache. */
  private indexDirty = false;
  private cacheDirty = false;
  private timer: NodeJS.Timeout | undefined;
  private cacheLoaded: Promise<void> | undefined;

  constructor(
    private readonly place: StorePlace,
    private readonly lock: FolderLock,
    private readonly cache: FolderCache,
    private readonly snapshot: Snapshot,
    private readonly onError: (e: unknown) => void,
  ) {}

  /** mailtk.index, or undefined when missing or not ours (a symlink on the way is refused: UnsafePath). */
  async read(): Promise<IndexState | undefined> {
    if (!this.place.indexDir) return undefined;
    const bytes = await readIndexFile(this.place.indexDir, INDEX_FILE, this.place.beneath?.index).catch((e) => {
      if (e instanceof UnsafePath) throw e; // a symlink on the way: refuse the folder, do not start afresh
      return undefined;
    });
    return bytes ? decodeIndex(bytes) : undefined;
  }

  /**
   * Open mailtk.cache, once (made, empty, when missing or not ours, so that
   * summaries can be spilled into it as a first scan makes them), and read
   * where its blobs are, for the UIDs that still exist. Entries made since
   * the open win over the file's.
   */
  ensureCache(): Promise<void> {
    this.cacheLoaded ??= this.attachCache(false).catch((e) => {
      if (e instanceof UnsafePath) throw e;
      // Not writable, or not there to be made: the summaries stay in memory.
    });
    return this.cacheLoaded;
  }

  /** Open mailtk.cache for the cache to read from; `fresh`: it was just written from what the cache holds, which is dropped. */
  private async attachCache(fresh: boolean): Promise<void> {
    const { indexDir, owner, beneath } = this.place;
    if (!indexDir) return;
    for (let made = false; ; made = true) {
      const opened = await openIndexFile(indexDir, CACHE_FILE, beneath?.index, true);
      // Appended to only when it is ours alone: a hard link to another file (made by whoever
      // owns the directory) is replaced by the next rewrite, never written through.
      const st = opened && (await opened.fh.stat());
      const ours = !!st && st.nlink === 1 && st.uid === (owner?.uid ?? process.geteuid?.() ?? st.uid);
      const file = opened && new CacheFile(opened.fh, 0, opened.writable && ours);
      if (file && this.cache.attach(file, this.snapshot.uidValidity, (uid) => this.snapshot.has(uid), fresh)) return;
      await file?.close();
      if (made || fresh) return;
      const dir = openIndexDir(indexDir, owner, beneath?.index);
      try {
        await replaceIndexFile(dir, CACHE_FILE, this.cache.encode(this.snapshot.uidValidity, []), owner);
      } finally {
        dir.close();
      }
    }
  }

  /**
   * Append what the cache holds to mailtk.cache now, without waiting for the
   * folder's turn (a scan of a large mbox is one turn): false when it cannot
   * be appended to (not open yet, replaced, mostly dead); a save then rewrites it.
   */
  spillNow(): boolean {
    return this.appendHeld(() => true);
  }

  /** Append the held summaries of UIDs `live` accepts to the open mailtk.cache, if it is still the one at its name (FolderCache.spill says when else it will not). */
  private appendHeld(live: (uid: number) => boolean): boolean {
    const file = this.cache.openFile;
    const { indexDir, beneath } = this.place;
    return !!file && isIndexFile(indexDir!, CACHE_FILE, beneath?.index, file.handle) && this.cache.spill(live);
  }

  /** Close mailtk.cache (the folder is let go). */
  close(): Promise<void> {
    this.cacheLoaded = undefined;
    return this.cache.close();
  }

  /** The index on disk lacks what is in memory; written with the next save. */
  markDirty(): void {
    this.indexDirty = true;
  }

  /** Write the index (`index`: it changed; else only the cache did) a moment from now, or at the next turn when `soon`. */
  schedule(index = true, soon = false): void {
    if (index) this.indexDirty = true;
    else this.cacheDirty = true;
    if (!this.place.indexDir) return;
    if (this.timer && soon) clearTimeout(this.timer);
    else if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.save().catch(this.onError);
    }, soon ? 0 : SAVE_DELAY_MS);
  }

  /** Write the index and the cache, those that changed, now. */
  save(): Promise<void> {
    if (!this.place.indexDir) return Promise.resolve();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.lock.queued(() => this.saveNow());
  }

  private async saveNow(): Promise<void> {
    if (!this.indexDirty && !this.cacheDirty) return;
    const [index, cache] = [this.indexDirty, this.cacheDirty];
    if (cache) await this.ensureCache(); // what is on disk must not be lost by writing only what is in memory
    this.indexDirty = false;
    this.cacheDirty = false;
    const { indexDir, owner, beneath } = this.place;
    const dir = openIndexDir(indexDir!, owner, beneath?.index);
    try {
      if (index) await replaceIndexFile(dir, INDEX_FILE, indexPieces(this.snapshot.state()), owner);
      if (cache) await this.saveCache(dir, owner);
    } catch (e) {
      if (index) this.indexDirty = true;
      if (cache) this.cacheDirty = true;
      throw e;
    } finally {
      dir.close();
    }
  }

  /**
   * What the cache holds in memory into mailtk.cache: appended when the open
   * file is still the one at its name (and mostly live), else the file is
   * rewritten from the cache and opened again, what it was written from let go.
   */
  private async saveCache(dir: HeldDir, owner: StorePlace['owner']): Promise<void> {
    const appended = this.appendHeld((uid) => this.snapshot.has(uid));
    // Saves come a moment after the last change: spills made during a scan are over, and their spare blocks with them.
    this.cache.trim();
    if (appended) return;
    const sets = this.cache.sets;
    await replaceIndexFile(dir, CACHE_FILE, this.cache.encode(this.snapshot.uidValidity, this.snapshot.uids()), owner);
    if (this.cache.sets === sets) await this.attachCache(true);
  }
}
