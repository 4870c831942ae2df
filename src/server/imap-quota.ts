// IMAP QUOTA (RFC 9208) for virtual users' quotas (src/virtual): one quota
// root, "", over INBOX (the spool mailbox, the only one a quota counts),
// with STORAGE in units of 1024 octets and MESSAGE. GETQUOTAROOT names it for
// INBOX and no root for other folders; GETQUOTA "" reports it; SETQUOTA is
// the administrator's (mailtk quota set), so it is refused. Usage is read
// from the mailbox as it is, so a deletion shows at once. Users without a
// quota (Unix accounts, virtual users with none) have no quota root.

import { mailboxUsage } from '../mailbox/index.ts';
import { quotaOf } from '../virtual/tables.ts';
import { bad, type Cmd, type ImapSession, no, ok, type Result } from './imap-session.ts';
import { astr, astring } from './imap-wire.ts';

export const QUOTA_CAPABILITIES = ['QUOTA', 'QUOTA=RES-STORAGE', 'QUOTA=RES-MESSAGE'];

/** The QUOTA response's resource list for the session's user, or undefined when there is no quota. */
function resources(s: ImapSession): string | undefined {
  const user = s.user;
  const q = user?.name.includes('@') ? quotaOf(s.ctx.config, user.name) : undefined;
  if (!user || !q || (q.bytes === 0 && q.messages === 0)) return undefined;
  const used = mailboxUsage(s.ctx.config, user.name);
  const parts: string[] = [];
  if (q.bytes > 0) parts.push(`STORAGE ${Math.ceil(used.bytes / 1024)} ${Math.floor(q.bytes / 1024)}`);
  if (q.messages > 0) parts.push(`MESSAGE ${used.messages} ${q.messages}`);
  return `(${parts.join(' ')})`;
}

export async function getQuotaRootCommand(s: ImapSession, c: Cmd): Promise<Result> {
  if (c.args.length !== 1) return bad('GETQUOTAROOT takes one mailbox name');
  const name = astring(c.args[0], 'mailbox name');
  const r = name.toUpperCase() === 'INBOX' ? resources(s) : undefined;
  await s.untagged(`QUOTAROOT ${astr(name)}${r ? ' ""' : ''}`);
  if (r) await s.untagged(`QUOTA "" ${r}`);
  return ok('GETQUOTAROOT completed');
}

export async function getQuotaCommand(s: ImapSession, c: Cmd): Promise<Result> {
  if (c.args.length !== 1) return bad('GETQUOTA takes one quota root');
  const r = astring(c.args[0], 'quota root') === '' ? resources(s) : undefined;
  if (!r) return no('[NONEXISTENT] No such quota root');
  await s.untagged(`QUOTA "" ${r}`);
  return ok('GETQUOTA completed');
}

export async function setQuotaCommand(): Promise<Result> {
  return no('[NOPERM] Quotas are set by the administrator (mailtk quota set)');
}
