// The mbox dotlock shared with mail.local, procmail, mutt, s-nail and Dovecot:
// a plain file PATH.lock made with O_CREAT|O_EXCL and holding our pid. While
// release() has not been called nobody else holding the same convention writes
// PATH. A lock whose ctime is over 5 minutes old is stale (mail.local's
// LOCKTO_RM), and so is one naming a process of this host that is gone
// (liblockfile's L_PID rule): either is broken; otherwise we wait with jittered exponential backoff
// and give up with MailError('mailbox-locked') after timeoutMs (default 20 s,
// Postfix's deliver_lock_attempts x deliver_lock_delay). Not NFS-safe: O_EXCL
// on old NFS is not atomic, and we create without liblockfile's link() trick.

import crypto from 'node:crypto';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { processAlive } from '../config/process.ts';
import { MailError } from '../message/status.ts';
import { asSelf, type Runner } from './creds.ts';
import { failureFor } from './io.ts';

export const DOTLOCK_STALE_MS = 5 * 60_000;
export const DOTLOCK_TIMEOUT_MS = 20_000;
const FIRST_DELAY_MS = 5;
const MAX_DELAY_MS = 500;
const LOCK_MODE = 0o644; // readable, so tools like `dotlockfile -p` can read the pid
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

export interface Dotlock {
  /** Remove the lock, if it is still ours. Safe to call twice. */
  release(): void;
  /** Touch the lock so that others do not judge it stale; for holders that keep it for minutes (POP3). */
  refresh(): void;
}

export interface DotlockOptions {
  timeoutMs?: number;
  /** Age (by ctime) past which someone else's lock is broken; tests shorten it. */
  staleMs?: number;
}

/** Internal knobs for /file delivery: lock as another user, and go on unlocked where we may not lock. */
export interface DotlockVia {
  run: Runner;
  /** Postfix's MBOX_DOT_LOCK_MAY_FAIL: no permission to create the lock is not an error. */
  mayFail: boolean;
}

const MAY_FAIL_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);
const NO_LOCK: Dotlock = { release() {}, refresh() {} };

export function acquireDotlock(mboxPath: string, opts: DotlockOptions = {}): Promise<Dotlock> {
  return acquireDotlockVia(mboxPath, opts, { run: asSelf, mayFail: false });
}

export async function acquireDotlockVia(mboxPath: string, opts: DotlockOptions, via: DotlockVia): Promise<Dotlock> {
  const lockPath = `${mboxPath}.lock`;
  const timeoutMs = opts.timeoutMs ?? DOTLOCK_TIMEOUT_MS;
  const staleMs = opts.staleMs ?? DOTLOCK_STALE_MS;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 0; ; attempt++) {
    const step = tryOnce(lockPath, staleMs, via);
    if (step === 'retry') continue;
    if (step !== 'wait') return step;
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new MailError('mailbox-locked', `mailbox is locked by another program (gave up after ${timeoutMs} ms)`, {
        file: lockPath,
      });
    }
    await sleep(Math.min(left, backoffMs(attempt)));
  }
}

/** One try: the lock, or 'retry' at once (a stale lock was broken), or 'wait'. */
function tryOnce(lockPath: string, staleMs: number, via: DotlockVia): Dotlock | 'retry' | 'wait' {
  let made: Identity | 'busy';
  try {
    made = via.run(() => tryCreate(lockPath));
  } catch (e) {
    if (via.mayFail && MAY_FAIL_CODES.has(codeOf(e))) return NO_LOCK;
    const why = `cannot create lock file: ${(e as Error).message}`;
    throw new MailError(failureFor(e), why, { file: lockPath, cause: e });
  }
  if (made !== 'busy') return held(lockPath, made, via.run);
  try {
    return via.run(() => breakIfStale(lockPath, staleMs)) ? 'retry' : 'wait';
  } catch (e) {
    // Not allowed to remove it: wait for its owner like everyone else.
    if (MAY_FAIL_CODES.has(codeOf(e))) return 'wait';
    const why = `cannot break stale lock file: ${(e as Error).message}`;
    throw new MailError('mailbox-io', why, { file: lockPath, cause: e });
  }
}

function codeOf(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? '';
}

/** "Equal jitter": half the exponential step, plus a random part of the other half. */
function backoffMs(attempt: number): number {
  const step = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
}

/** Create the lock file, or say 'busy' when one exists. */
function tryCreate(lockPath: string): Identity | 'busy' {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, LOCK_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return 'busy';
    throw e;
  }
  try {
    fs.writeSync(fd, `${process.pid}\n`);
  } catch {
    // The pid is a courtesy; on a full disk the empty lock still locks.
  }
  try {
    return identityOf(fs.fstatSync(fd, { bigint: true }));
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Break a stale lock; true when the caller should try to create again at once.
 * Two waiters may judge the same lock stale; if one has already replaced it with
 * a fresh lock, a plain unlink by the other would delete that fresh lock. So we
 * rename the lock aside first and look at what we actually moved: the same
 * inode, still old by mtime (rename bumps ctime, not mtime), is deleted;
 * anything else was someone's live lock and is linked back without overwriting.
 */
function breakIfStale(lockPath: string, staleMs: number): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(lockPath);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true; // released meanwhile
    throw e;
  }
  // A directory (proper-lockfile's style) is someone's lock we cannot judge: wait.
  if (!st.isFile() || (Date.now() - st.ctimeMs <= staleMs && !holderGone(lockPath))) return false;
  const aside = `${lockPath}.stale.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(lockPath, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  }
  const moved = fs.lstatSync(aside);
  const same = moved.dev === st.dev && moved.ino === st.ino && (Date.now() - moved.mtimeMs > staleMs || holderGone(aside));
  if (!same) {
    try {
      fs.linkSync(aside, lockPath);
    } catch {
      // Someone locked in the meantime; theirs stands and the moved one goes.
    }
  }
  fs.unlinkSync(aside);
  return same;
}

/**
 * The lock names a process of this host that no longer exists: liblockfile's
 * L_PID rule (lockfile_create(3): such a lock "is only valid if that process
 * still exists"), which Debian's dotlockfile (liblockfile) uses. A
 * holder killed with SIGKILL (a queue runner, a session) so no longer blocks
 * the mailbox's deliveries for 5 minutes. A lock with no pid in it keeps the
 * age rule alone. Read without following a link or waiting on a FIFO.
 */
function holderGone(lockPath: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(lockPath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch {
    return false;
  }
  try {
    if (!fs.fstatSync(fd).isFile()) return false;
    const b = Buffer.alloc(32);
    const m = /^\s*(\d{1,10})\s*$/.exec(b.toString('latin1', 0, fs.readSync(fd, b, 0, b.length, 0)));
    const pid = m ? Number(m[1]) : 0;
    return pid > 1 && pid !== process.pid && !processAlive(pid);
  } finally {
    fs.closeSync(fd);
  }
}

/** What tells our lock file from a later one: inode numbers are reused at once (ext4, tmpfs). */
interface Identity {
  dev: bigint;
  ino: bigint;
  mtimeNs: bigint;
}

function identityOf(st: fs.BigIntStats): Identity {
  return { dev: st.dev, ino: st.ino, mtimeNs: st.mtimeNs };
}

/** The handle of a lock we made; it removes or touches only the file it created. */
function held(lockPath: string, made: Identity, run: Runner): Dotlock {
  let released = false;
  let mine = made;
  const ours = (): boolean => {
    try {
      const st = fs.lstatSync(lockPath, { bigint: true });
      return st.dev === mine.dev && st.ino === mine.ino && st.mtimeNs === mine.mtimeNs;
    } catch {
      return false;
    }
  };
  return {
    release() {
      if (released) return;
      released = true;
      run(() => {
        if (ours()) fs.rmSync(lockPath, { force: true });
      });
    },
    refresh() {
      if (released) return;
      const now = new Date();
      run(() => {
        if (!ours()) return;
        fs.utimesSync(lockPath, now, now);
        mine = identityOf(fs.lstatSync(lockPath, { bigint: true }));
      });
    },
  };
}
