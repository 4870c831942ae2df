// Noticing that a folder's mbox changed while sessions have it open: inotify
// on its directory (a rewrite or a first delivery changes the name's inode)
// and a slow poll where inotify is missing or misses, both coalesced into
// one call of `onChange` a moment later.

import fs from 'node:fs';
import path from 'node:path';

const POLL_MS = 5000;
const SETTLE_MS = 20;

export class FolderWatch {
  private watcher: fs.FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private timer: NodeJS.Timeout | undefined;

  /** `active`: whether anyone still wants to hear of changes. */
  constructor(mbox: string, private readonly active: () => boolean, private readonly onChange: () => void) {
    const name = path.basename(mbox);
    try {
      this.watcher = fs.watch(path.dirname(mbox), (_event, file) => {
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
    if (this.timer || !this.active()) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.onChange();
    }, SETTLE_MS);
  }

  close(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.timer) clearTimeout(this.timer);
  }
}
