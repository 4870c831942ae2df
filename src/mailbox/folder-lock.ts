// The order of a folder's work in this process and against other programs:
// one queue per folder (syncs, reads, changes and index saves run one at a
// time, so no half-made scan is ever seen or saved), the mbox dotlock around
// whatever touches the mbox, and the mbox opened read-only without following
// a symlink, through its trusted directory when the folder has one
// (safe-open.ts's openDirBeneath).

import fs from 'node:fs';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { acquireMailboxLock } from './dotlock-helper.ts';
import type { Dotlock } from './dotlock.ts';
import { lstatBeneath, openDirBeneath } from './safe-open.ts';

const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

export interface LockPaths {
  mbox: string;
  indexDir?: string;
  /** Trusted directories above the mbox and the index directory (FolderSpec.beneath). */
  beneath?: { mbox?: string; index?: string };
}

export class FolderLock {
  private mutex: Promise<unknown> = Promise.resolve();

  constructor(private readonly paths: LockPaths) {}

  /** Run fn in this folder's turn, without the dotlock (index saves). */
  queued<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.mutex.then(fn);
    this.mutex = run.catch(() => undefined);
    return run;
  }

  /** Run fn in this folder's turn and under the mbox dotlock (refreshed while fn runs). */
  locked<T>(fn: (lock: Dotlock) => Promise<T>): Promise<T> {
    return this.queued(async () => {
      this.checkPaths(); // before the dotlock, which is made by path beside the mbox
      const lock = await acquireMailboxLock(this.paths.mbox);
      const refresh = setInterval(() => lock.refresh(), 60_000);
      try {
        return await fn(lock);
      } finally {
        clearInterval(refresh);
        lock.release();
      }
    });
  }

  /** Run fn with the mbox open for reading (undefined when there is none). */
  async withFile<T>(fn: (fh: fs.promises.FileHandle | undefined) => Promise<T>): Promise<T> {
    let fh: fs.promises.FileHandle | undefined;
    try {
      fh = await this.withMboxPath((at) => fs.promises.open(at, O_RDONLY | O_NOFOLLOW | O_NONBLOCK));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new MailError('mailbox-unsafe', 'mailbox is a symbolic link', { file: this.paths.mbox });
      if (code !== 'ENOENT') throw e;
    }
    try {
      return await fn(fh);
    } finally {
      await fh?.close();
    }
  }

  /** Refuse now when a directory on the way to the mbox or its index is a symlink (UnsafePath). */
  private checkPaths(): void {
    const { mbox, index } = this.paths.beneath ?? {};
    if (mbox) lstatBeneath(this.paths.mbox, mbox);
    if (index && this.paths.indexDir) lstatBeneath(this.paths.indexDir, index);
  }

  /** The mbox's path for open(2): through its held directory when there is a trusted one. */
  private withMboxPath<T>(fn: (at: string) => Promise<T>): Promise<T> {
    const file = this.paths.mbox;
    const anchor = this.paths.beneath?.mbox;
    if (!anchor) return fn(file);
    const dir = openDirBeneath(path.dirname(file), anchor);
    if (!dir) return Promise.reject(Object.assign(new Error(`${path.dirname(file)}: no such directory`), { code: 'ENOENT' }));
    return fn(dir.at(path.basename(file))).finally(() => dir.close());
  }
}
