// `mailtk user add|del|passwd|list USER@DOMAIN`: the users of the virtual
// domains (virtual_users_file, changed through src/virtual/edit.ts) and their
// passwords (passwd_file, under the name user@domain, as mailpasswd writes
// it). Adding makes the user's home for IMAP folders and indexes, owned by
// the account that delivers (mail_owner as root). Deleting removes the user
// and the password at once (logins and deliveries stop) and keeps the mailbox,
// as Postfix leaves a virtual mailbox behind. A new user is sent the
// welcome message when there is one (welcome.ts).

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { systemUser } from '../config/users.ts';
import { shareSecrets } from '../daemon/privs.ts';
import { mailboxUsage } from '../mailbox/index.ts';
import { MailError } from '../message/status.ts';
import { removePassword, setPassword } from '../server/passwd.ts';
import { deleteLine, editTable, findLine, makeMailboxDirs } from '../virtual/edit.ts';
import { deleteAdmin } from './admins.ts';
import { readWelcome, sendWelcome } from './welcome.ts';
import { domainDir, isVirtualDomain, quotaTable, splitVirtual, virtualUser, virtualUserNames } from '../virtual/tables.ts';

export interface UserRow {
  user: string;
  domain: string;
  mailbox: string;
  bytes: number;
  messages: number;
  /** 0 = no limit. */
  quotaBytes: number;
  quotaMessages: number;
}

/** user@domain of a virtual domain, lower case. */
export function checkUser(config: Config, address: string): { key: string; domain: string } {
  const v = splitVirtual(address);
  if (!v || !/^[a-z0-9!#$%&'*+=?^_`{|}~.-]+$/.test(v.local) || v.local.endsWith('.') || v.local.includes('..')) {
    throw new MailError('usage', `"${address}" is not user@domain (the user part: letters, digits and . _ - + and the like, not starting with ".")`);
  }
  if (!isVirtualDomain(config, v.domain)) throw new MailError('usage', `${v.domain} is not a virtual domain (mailtk domain add ${v.domain})`);
  return { key: v.key, domain: v.domain };
}

export async function addUser(config: Config, address: string, password: string): Promise<'added' | 'exists'> {
  const { key, domain } = checkUser(config, address);
  if (password === '') throw new MailError('usage', 'an empty password; nothing changed');
  const welcome = readWelcome(config);
  const done = await editTable(config.raw.virtual_users_file, (lines) => {
    if (findLine(lines, key) >= 0) return 'exists' as const;
    lines.push(key);
    return 'added' as const;
  });
  if (done === 'exists') return done;
  await savePassword(config, key, password);
  makeMailboxDirs(config, domain, virtualUser(config, key)?.home);
  if (welcome !== undefined) await sendWelcome(config, welcome, key);
  return done;
}

export async function deleteUser(config: Config, address: string): Promise<'deleted' | 'absent'> {
  const key = address.toLowerCase();
  const done = await deleteLine(config.raw.virtual_users_file, key);
  if (done === 'deleted') {
    removePassword(config.passwdFile, key);
    await deleteAdmin(config, key);
  }
  return done;
}

export async function changePassword(config: Config, address: string, password: string): Promise<void> {
  const key = address.toLowerCase();
  if (!virtualUser(config, key)) throw new MailError('user-unknown', `${address}: no such virtual user (mailtk user list)`);
  if (password === '') throw new MailError('usage', 'an empty password; nothing changed');
  await savePassword(config, key, password);
}

/** As root, the file is root:mail_owner 0640 (as the daemon makes it at start), so that a running daemon's listeners read the change. */
async function savePassword(config: Config, key: string, password: string): Promise<void> {
  await setPassword(config.passwdFile, key, password);
  const owner = process.geteuid?.() === 0 ? systemUser(config.mailOwner) : undefined;
  if (owner) shareSecrets(config, owner);
}

/**
 * The users with their usage and quota, in name order, a row at a time. At
 * 100,000 users the cost is in the mailboxes and in the garbage collector:
 * mail_spool_dir/virtual and each domain's directory in it are read once,
 * only the mailboxes found are opened (a user who has had no mail has none),
 * quota_file is read once, and a listing that prints each row as it comes
 * keeps none alive (an array of 100,000 rows, copied by every scavenge, was
 * half a listing's time).
 */
export function* userRows(config: Config, domain?: string): Generator<UserRow> {
  const d = domain?.toLowerCase();
  const quota = quotaTable(config);
  const names = d ? virtualUserNames(config).filter((u) => u.endsWith(`@${d}`)) : virtualUserNames(config).slice();
  names.sort();
  const withDirs = dirEntries(path.dirname(domainDir(config, 'x')));
  let dom = '';
  let dir = '';
  let boxes = new Set<string>();
  for (const user of names) {
    const at = user.lastIndexOf('@');
    const local = user.slice(0, at);
    if (user.length - at - 1 !== dom.length || !user.endsWith(dom)) {
      // Sorted, so a domain's users come together (but for names holding a second "@").
      dom = user.slice(at + 1);
      dir = domainDir(config, dom);
      boxes = withDirs.has(dom) ? dirEntries(dir) : new Set();
    }
    const used = boxes.has(local) ? mailboxUsage(config, user) : undefined;
    const q = quota(user);
    yield { user, domain: dom, mailbox: `${dir}/${local}`, bytes: used?.bytes ?? 0, messages: used?.messages ?? 0, quotaBytes: q?.bytes ?? 0, quotaMessages: q?.messages ?? 0 };
  }
}

/** The names in a directory (none when it does not exist or cannot be read). */
function dirEntries(dir: string): Set<string> {
  try {
    return new Set(fs.readdirSync(dir));
  } catch {
    return new Set();
  }
}
