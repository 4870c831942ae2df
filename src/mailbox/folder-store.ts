// A folder's index on disk (folder-file.ts's mailtk.index and mailtk.cache):
// read once at open, the cache only when a protocol first asks for a
// summary (POP3 never does), and written a moment after a change, or at
// once by save(), each file only when it changed. Saves run in the folder's
// turn (FolderLock.queued) without the dotlock, so that no half-made scan is
// ever written; so never call save() from inside locked work, where it would
// wait for itself.

import {
  CACHE_FILE, decodeIndex, encodeIndex, INDEX_FILE, type IndexState, openIndexDir, readIndexFile, replaceIndexFile,
} from './folder-file.ts';
import type { FolderCache } from './folder-cache.ts';
import type { FolderLock } from './folder-lock.ts';
import { UnsafePath } from './safe-open.ts';

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

  /** Read mailtk.cache, once, for the UIDs that still exist. Entries made since the open win over the file's. */
  ensureCache(): Promise<void> {
    this.cacheLoaded ??= (async () => {
      if (!this.place.indexDir) return;
      const bytes = await readIndexFile(this.place.indexDir, CACHE_FILE, this.place.beneath?.index).catch(() => undefined);
      if (bytes) this.cache.load(bytes, this.snapshot.uidValidity, (uid) => this.snapshot.has(uid));
    })();
    return this.cacheLoaded;
  }

  /** The index on disk lacks what is in memory; written with the next save. */
  markDirty(): void {
    this.indexDirty = true;
  }

  /** Write the index (`index`: it changed; else only the cache did) a moment from now. */
  schedule(index = true): void {
    if (index) this.indexDirty = true;
    else this.cacheDirty = true;
    if (!this.place.indexDir || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.save().catch(this.onError);
    }, SAVE_DELAY_MS);
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
      if (index) await replaceIndexFile(dir, INDEX_FILE, encodeIndex(this.snapshot.state()), owner);
      if (cache) await replaceIndexFile(dir, CACHE_FILE, this.cache.encode(this.snapshot.uidValidity, this.snapshot.uids()), owner);
    } catch (e) {
      if (index) this.indexDirty = true;
      if (cache) this.cacheDirty = true;
      throw e;
    } finally {
      dir.close();
    }
  }
}
