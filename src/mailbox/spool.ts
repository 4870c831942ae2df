// The mail spool directory and the names in it: mboxPath() is the only place
// a user's mailbox path is built. ensureSpoolDir() creates the directory when
// missing, as root with Debian's /var/mail layout: mode 2775 root:mail, so MUAs
// that lock through a setgid-mail helper (mutt_dotlock, s-nail-privsep,
// dotlockfile) can create USER.lock. Without a 'mail' group we fall back to
// 1777 (sticky, world-writable: the older Red Hat layout) so users' MUAs can
// still lock. An unprivileged mailtk (its own data tree) uses 0700.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';

const SPOOL_MODE_MAIL_GROUP = 0o2775;
const SPOOL_MODE_NO_GROUP = 0o1777;
const SPOOL_MODE_PRIVATE = 0o700;

let mailGid: number | null | undefined; // undefined: not looked up yet; null: no such group

export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/**
 * The path of USER's spool mbox; a virtual user's ("user@domain") is
 * virtual/DOMAIN/USER under the spool. Names that could leave the directory are refused.
 */
export function mboxPath(config: Config, user: string): string {
  const at = user.lastIndexOf('@');
  const parts = at < 0 ? [user] : ['virtual', user.slice(at + 1), user.slice(0, at)];
  if (parts.some((p) => p === '' || p.includes('/') || p.startsWith('.') || p.includes('\0') || p.includes('@'))) {
    throw new MailError('user-unknown', `"${user}" cannot name a mailbox (empty, contains "/", or starts with ".")`);
  }
  return path.join(config.mailSpoolDir, ...parts);
}

/**
 * The gid of group 'mail', looked up once per process (getent, so NSS counts).
 * Only an answer is remembered (found, or getent's exit 2, "no such group"):
 * a getent that could not run (EMFILE, EAGAIN in a starved daemon) is asked
 * again next time, or one bad moment would cost every later delivery the group.
 */
export function mailGroupGid(): number | undefined {
  if (mailGid === undefined) {
    const r = spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' });
    const gid = r.status === 0 ? r.stdout.split(':')[2] : undefined;
    if (gid !== undefined && /^\d+$/.test(gid)) mailGid = Number(gid);
    else if (r.status === 2) mailGid = null;
    else return undefined;
  }
  return mailGid ?? undefined;
}

/** Create the spool directory if it is missing; an existing one is left as it is. */
export function ensureSpoolDir(config: Config): void {
  const dir = config.mailSpoolDir;
  if (fs.existsSync(dir)) return;
  try {
    fs.mkdirSync(path.dirname(dir), { recursive: true });
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return; // another process won the race
    throw new MailError('mailbox-io', `cannot create mail spool directory: ${(e as Error).message}`, {
      file: dir,
      cause: e,
    });
  }
  // mkdir's mode passes through the umask; set the exact mode after.
  if (!isRoot()) return fs.chmodSync(dir, SPOOL_MODE_PRIVATE);
  const gid = mailGroupGid();
  fs.chownSync(dir, 0, gid ?? 0);
  fs.chmodSync(dir, gid === undefined ? SPOOL_MODE_NO_GROUP : SPOOL_MODE_MAIL_GROUP);
}
