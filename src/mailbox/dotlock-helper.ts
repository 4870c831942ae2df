// Locking a mailbox in a spool directory we may not write. Debian's /var/mail
// is 2775 root:mail and Node cannot be setgid, so an ordinary user's `mail`
// (or a POP3/IMAP process running as the user) cannot create USER.lock there.
// mutt and s-nail use a setgid helper for this; Debian ships dotlockfile(1)
// (liblockfile-bin, setgid mail), which makes the same USER.lock with link(2).
// acquireMailboxLock() tries acquireDotlock first and falls back to the helper
// only on EACCES/EPERM, so root, tests and the quick-start layout spawn nothing.
// The helper writes our pid (-p): liblockfile sees a live lock, mailtk its age.

import { spawn, spawnSync } from 'node:child_process';
import { MailError } from '../message/status.ts';
import { acquireDotlock, DOTLOCK_TIMEOUT_MS, type Dotlock, type DotlockOptions } from './dotlock.ts';

/** Where the helper lives on Debian; MAILTK_DOTLOCKFILE overrides it (tests, other systems). */
const HELPER = process.env.MAILTK_DOTLOCKFILE || 'dotlockfile';
/** lockfile_create(3) return values that dotlockfile passes on as its exit status. */
const L_MAXTRYS = 4;

function permissionDenied(e: unknown): boolean {
  const cause = (e as { cause?: NodeJS.ErrnoException })?.cause;
  return e instanceof MailError && (cause?.code === 'EACCES' || cause?.code === 'EPERM');
}

/** The mbox dotlock, made by us when we may, else by dotlockfile(1). */
export async function acquireMailboxLock(mboxPath: string, opts: DotlockOptions = {}): Promise<Dotlock> {
  try {
    return await acquireDotlock(mboxPath, opts);
  } catch (e) {
    if (!permissionDenied(e)) throw e;
    return lockWithHelper(mboxPath, opts.timeoutMs ?? DOTLOCK_TIMEOUT_MS, e);
  }
}

/** Run `dotlockfile -l -p -i 1 -r N PATH.lock`: N one-second retries cover the timeout. */
async function lockWithHelper(mboxPath: string, timeoutMs: number, first: unknown): Promise<Dotlock> {
  const lockPath = `${mboxPath}.lock`;
  const retries = String(Math.max(0, Math.ceil(timeoutMs / 1000)));
  const r = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const child = spawn(HELPER, ['-l', '-p', '-i', '1', '-r', retries, lockPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e) => resolve({ code: null, text: `cannot run ${HELPER}: ${e.message}` }));
    child.on('close', (code) => resolve({ code, text: err.trim() || `exit status ${code}` }));
  });
  if (r.code === 0) return helperLock(lockPath);
  if (r.code === null) {
    // No helper installed: the original permission error is the one to report.
    const why = `${(first as Error).message} (and ${r.text}; install liblockfile-bin)`;
    throw new MailError('mailbox-io', why, { cause: first });
  }
  const failure = r.code === L_MAXTRYS ? 'mailbox-locked' : 'mailbox-io';
  throw new MailError(failure, `${HELPER} could not lock the mailbox: ${r.text}`, { file: lockPath });
}

function helperLock(lockPath: string): Dotlock {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      spawnSync(HELPER, ['-u', lockPath], { stdio: 'ignore' });
    },
    refresh() {
      if (!released) spawnSync(HELPER, ['-t', lockPath], { stdio: 'ignore' });
    },
  };
}
