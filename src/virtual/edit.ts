// Changing the virtual tables (src/virtual/tables.ts) for `mailtk domain|
// user|alias|quota`: one edit at a time under the lock newaliases takes
// (proper-lockfile, FILE.lock beside the file), read, changed, written to a
// temporary file, fsync'd and renamed over the old one, mode 0644, so a
// reader (the daemon's workers, which re-read on a changed stat) sees the
// old file or the new one, never half. Comments and other lines are kept as
// they are. Also makes the directories a virtual domain's mailboxes live in,
// owned by the account that delivers to them.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { replaceFile } from '../mailbox/index.ts';
import { MailError } from '../message/status.ts';
import { domainDir, virtualOwner } from './tables.ts';

const LOCK_WAIT = { retries: 25, minTimeout: 100, maxTimeout: 1000 }; // about 20 s, as newaliases waits

/** Apply `change` to the file's lines (without the final newline) under its lock; returns what change returns. */
export async function editTable<T>(file: string, change: (lines: string[]) => T): Promise<T> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, '', { flag: 'a', mode: 0o644 }); // proper-lockfile locks an existing file
  const { default: lockfile } = await import('proper-lockfile');
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(file, { realpath: false, retries: LOCK_WAIT });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ELOCKED') throw new MailError('config', `${file} is being changed by another mailtk (lock ${file}.lock); try again, or remove ${file}.lock if none is running`);
    throw err;
  }
  try {
    const text = fs.readFileSync(file, 'utf8');
    const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
    const result = change(lines);
    replaceFile(file, lines.length ? lines.join('\n') + '\n' : '', 0o644, true);
    return result;
  } finally {
    await release().catch(() => undefined);
  }
}

/** The index of the line whose first field is `key` (case folded), or -1. */
/** Remove the line whose first field is `key` (case aside), under the table's lock. */
export function deleteLine(file: string, key: string): Promise<'deleted' | 'absent'> {
  return editTable(file, (lines) => {
    const at = findLine(lines, key);
    if (at < 0) return 'absent' as const;
    lines.splice(at, 1);
    return 'deleted' as const;
  });
}

export function findLine(lines: string[], key: string): number {
  const k = key.toLowerCase();
  return lines.findIndex((l) => !/^\s*#/.test(l) && (l.trim().split(/\s+/)[0] ?? '').toLowerCase() === k);
}

/**
 * mail_spool_dir/virtual (0755, so the owner can reach its domains) and the
 * domain's directory (0700, the virtual owner's: nobody else reads its
 * mailboxes); with `home`, that user's home under .home, for IMAP folders and indexes.
 */
export function makeMailboxDirs(config: Config, domain: string, home?: string): void {
  const { uid, gid } = virtualOwner(config);
  const root = process.geteuid?.() === 0;
  const top = path.dirname(domainDir(config, domain));
  fs.mkdirSync(top, { recursive: true, mode: 0o755 });
  const dirs = [domainDir(config, domain)];
  if (home) dirs.push(path.dirname(home), home);
  for (const d of dirs) {
    fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    if (root) fs.chownSync(d, uid, gid);
  }
}
