// How close this process is to its open-file limit (RLIMIT_NOFILE, which
// Node raises to the hard limit at start-up). At the limit accept(2) fails
// (libuv then accepts and closes connections without a word), a connection
// the root master passes is lost on its way (the kernel drops a descriptor it
// cannot install: Node's SentHandleNotReceivedWarning in the master), and
// queue files, the user database and certificates cannot be opened. So the
// listeners stop admitting new sessions while fewer than a reserve of
// descriptors is left: newcomers get the protocol's refusal (421, * BYE,
// -ERR), the sessions already open keep what they need to finish, and
// admissions resume by themselves once descriptors are free again (nginx's
// worker_connections and Postfix's process limits keep the same headroom).

import fs from 'node:fs';

/** How long a count of open descriptors is trusted while far from the limit. */
const RECOUNT_MS = 1000;
/** How long a count that found the reserve reached is trusted (a flood is refused without a recount each). */
const TIGHT_RECOUNT_MS = 50;

export class FdBudget {
  readonly limit: number | undefined;
  /** Descriptors kept free for the sessions already open. */
  readonly reserve: number;
  private open = 0;
  private countedAt = -Infinity;
  private tightNow = false;

  constructor(limit: number | undefined, private readonly count = countOpen) {
    this.limit = limit;
    this.reserve = limit === undefined ? 0 : Math.max(16, Math.min(128, Math.floor(limit / 8)));
  }

  /** The descriptors in use when last counted (plus the sessions admitted since). */
  get inUse(): number {
    return this.open;
  }

  /**
   * Whether one more session would eat into the reserve. Counting reads
   * /proc/self/fd, so it is done once a second while far from the limit
   * (each admission in between adds one), and at each admission near it.
   */
  tight(): boolean {
    if (this.limit === undefined) return false;
    const now = Date.now();
    const stale = now - this.countedAt > (this.tightNow ? TIGHT_RECOUNT_MS : RECOUNT_MS);
    if (stale || (!this.tightNow && this.open + 1 > this.limit - this.reserve)) {
      const n = this.count();
      if (n === undefined) return false;
      this.open = n;
      this.countedAt = now;
      this.tightNow = n + 1 > this.limit - this.reserve;
    }
    if (this.tightNow) return true;
    this.open++;
    return false;
  }
}

/** One budget a process: descriptors are the process's, whichever listener uses them. */
export const processFds = new FdBudget(openFileLimit());

/** The soft RLIMIT_NOFILE, from /proc/self/limits (undefined where there is none, or unlimited). */
export function openFileLimit(): number | undefined {
  try {
    const line = /^Max open files\s+(\S+)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    const n = Number(line?.[1]);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function countOpen(): number | undefined {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch (e) {
    // Not even the directory could be opened: out of descriptors now.
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'EMFILE' || code === 'ENFILE' ? Infinity : undefined;
  }
}
