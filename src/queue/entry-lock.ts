// Entry locks: which process is working on a queue entry (a runner
// delivering it, "active"; a picker that claimed a maildrop file under an
// ID). The queue's one lock primitive, with one rule for stale:
//
//   A process makes one token file, rt<pid>.<ms>, holding "<pid> <start>"
//   (its process id and its start time in clock ticks since boot, from
//   /proc/<pid>/stat, so that a recycled pid is not mistaken for it),
//   written as rt<pid>.<ms>.new and renamed, so that no one sees it empty, and
//   locks an entry by hard-linking its token to qf<ID>.lock. link(2) is
//   atomic and allocates no inode.
//
//   A lock is stale when the process it names is gone (or is another
//   process under a recycled pid), or when it names nobody (unreadable, or a
//   directory: an older mailtk's lock). A stale lock is taken over at once;
//   a live holder keeps its locks however long it works, as a flock(2) would.
//
// mailq shows an entry as active while its lock is live (isLocked).

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { processAlive } from '../config/process.ts';
import { queuePath } from './files.ts';
import type { QueueId } from './id.ts';
import { PREFIX } from './state.ts';

const TOKEN = /^rt\d+\.\d+$/;
/** A token still being written, under its own process id. */
const NEW_TOKEN = /^rt(\d+)\.\d+\.new$/;

export interface EntryLock {
  /** False once another process took the lock over. */
  held(): boolean;
  release(): void;
}

/** A process's start time in clock ticks since boot; undefined without /proc. */
function startTime(pid: number | 'self'): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True while the process a lock or token names is alive (the rule above). */
export function holderAlive(lockFile: string): boolean {
  let text: string;
  try {
    text = fs.readFileSync(lockFile, 'latin1');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    if (code === 'EISDIR') return false;
    throw e;
  }
  const m = /^(\d+) (\d+|-)\n$/.exec(text);
  if (!m) return false;
  const pid = Number(m[1]);
  if (!processAlive(pid)) return false;
  const now = startTime(pid);
  return m[2] === '-' || now === undefined || now === m[2];
}

class RunToken {
  readonly path: string;
  readonly ino: number;

  constructor(private config: Config) {
    sweepDeadTokens(config);
    this.path = path.join(config.queueDir, `rt${process.pid}.${Date.now()}`);
    // Written under another name, then renamed: a token seen empty names nobody, and another
    // runner's sweep (four sendmail -odi starting at once) removed it before it was written.
    const temp = `${this.path}.new`;
    // Readable by the queue's other users (a root sendmail's token, judged by mail_owner's runner).
    fs.writeFileSync(temp, `${process.pid} ${startTime('self') ?? '-'}\n`, { flag: 'wx', mode: 0o644 });
    fs.chmodSync(temp, 0o644);
    fs.renameSync(temp, this.path);
    this.ino = fs.statSync(this.path).ino;
  }

  lock(id: QueueId): EntryLock | undefined {
    const file = queuePath(this.config, PREFIX.control, id) + '.lock';
    for (let tries = 0; tries < 3; tries++) {
      try {
        fs.linkSync(this.path, file);
        // Released once; and only if it is still ours (someone may have removed it by hand).
        let mine = true;
        const release = () => {
          if (!mine) return;
          mine = false;
          if (!this.holds(file)) return;
          try {
            fs.unlinkSync(file);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
          }
        };
        return { held: () => mine && this.holds(file), release };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (holderAlive(file)) return undefined;
      let st: fs.Stats;
      try {
        st = fs.lstatSync(file);
      } catch {
        continue; // released meanwhile
      }
      // Stale. Removed only if it is still the lock judged (another taker may have replaced it).
      if (st.isDirectory()) fs.rmSync(file, { recursive: true, force: true });
      else if (!holderAlive(file)) fs.rmSync(file, { force: true });
    }
    return undefined;
  }

  private holds(file: string): boolean {
    try {
      return fs.lstatSync(file).ino === this.ino;
    } catch {
      return false;
    }
  }

  close(): void {
    fs.rmSync(this.path, { force: true });
  }
}

/**
 * Tokens of processes that are gone, and their locks left on entries they
 * finished before dying: stale already; the files go.
 */
function sweepDeadTokens(config: Config): void {
  let names: string[];
  try {
    names = fs.readdirSync(config.queueDir).filter((n) => TOKEN.test(n) || (n.startsWith(PREFIX.control) && n.endsWith('.lock')));
  } catch {
    return;
  }
  for (const n of names) {
    const file = path.join(config.queueDir, n);
    if (!holderAlive(file)) fs.rmSync(file, { force: true });
  }
  // A token left half made by a process that died before renaming it.
  for (const n of fs.readdirSync(config.queueDir)) {
    const pid = NEW_TOKEN.exec(n)?.[1];
    if (pid && !processAlive(Number(pid))) fs.rmSync(path.join(config.queueDir, n), { force: true });
  }
}

const tokens = new Map<string, RunToken>();

/** Lock one entry for this process; undefined when another live process holds it. */
export function lockEntry(config: Config, id: QueueId): EntryLock | undefined {
  let t = tokens.get(config.queueDir);
  if (!t) {
    t = new RunToken(config);
    tokens.set(config.queueDir, t);
    if (tokens.size === 1) process.once('exit', closeTokens);
  }
  return t.lock(id);
}

/** Remove this process's tokens (at exit; their locks were released entry by entry). */
export function closeTokens(): void {
  for (const t of tokens.values()) t.close();
  tokens.clear();
}
