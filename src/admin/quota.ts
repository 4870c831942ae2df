// `mailtk quota set|show USER@DOMAIN|@DOMAIN SIZE [MESSAGES]`: quota_file's
// lines (a user's own limit, or a domain's default), changed through
// src/virtual/edit.ts; show adds what the mailbox uses now. The limits are
// applied by the mailbox writer at each delivery (src/virtual/quota.ts).

import type { Config } from '../config/index.ts';
import { mailboxUsage } from '../mailbox/index.ts';
import { MailError } from '../message/status.ts';
import { editTable, findLine } from '../virtual/edit.ts';
import { parseQuota, quotaOf, virtualUser } from '../virtual/tables.ts';
import { checkAliasAddress } from './domains.ts';

export interface QuotaRow {
  user: string;
  /** The line the limits come from: the user's, "@domain", or none. */
  from: string;
  quotaBytes: number;
  quotaMessages: number;
  bytes: number;
  messages: number;
  /** Of the tighter limit, 0 when there is none. */
  percent: number;
}

export async function setQuota(config: Config, target: string, size: string, messages?: string): Promise<'added' | 'changed'> {
  const key = checkAliasAddress(config, target);
  const q = parseQuota(messages === undefined ? [size] : [size, messages]);
  const line = `${key}\t${size}${q.messages ? `\t${q.messages}` : ''}`;
  return editTable(config.raw.quota_file, (lines) => {
    const at = findLine(lines, key);
    if (at >= 0) lines[at] = line;
    else lines.push(line);
    return at >= 0 ? ('changed' as const) : ('added' as const);
  });
}

export function showQuota(config: Config, address: string): QuotaRow {
  const user = virtualUser(config, address);
  if (!user) throw new MailError('user-unknown', `${address}: no such virtual user (mailtk user list)`);
  const q = quotaOf(config, user.name);
  const used = mailboxUsage(config, user.name);
  const pct = (n: number, limit: number | undefined) => (limit ? Math.floor((n * 100) / limit) : 0);
  return {
    user: user.name,
    from: q?.from ?? 'none',
    quotaBytes: q?.bytes ?? 0,
    quotaMessages: q?.messages ?? 0,
    ...used,
    percent: Math.max(pct(used.bytes, q?.bytes), pct(used.messages, q?.messages)),
  };
}
