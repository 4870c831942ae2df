// `mailtk admin add|del|list USER@DOMAIN --domain DOMAIN`: domain
// administrators (domain_admins_file: "user@domain DOMAIN..." a line, edited
// through src/virtual/edit.ts). An administrator is a virtual user, who
// authenticates with that user's mail password (passwd_file) and may then
// change the users, aliases and quotas of the domains on their line, and no
// others; the check is requests.ts's, made by the daemon (admin-socket.ts).

import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { editTable, findLine } from '../virtual/edit.ts';
import { isVirtualDomain, readTable, virtualUser } from '../virtual/tables.ts';
import { checkDomain } from './domains.ts';

export interface AdminRow {
  admin: string;
  domains: string[];
}

export async function addAdmin(config: Config, login: string, domain: string): Promise<'added' | 'exists'> {
  const user = virtualUser(config, login);
  if (!user) throw new MailError('user-unknown', `${login}: no such virtual user; a domain administrator logs in as one (mailtk user add ${login})`);
  const d = checkDomain(domain);
  if (!isVirtualDomain(config, d)) throw new MailError('usage', `${d} is not a virtual domain (mailtk domain add ${d})`);
  return editTable(config.raw.domain_admins_file, (lines) => {
    const at = findLine(lines, user.name);
    const domains = at >= 0 ? lines[at].trim().split(/\s+/).slice(1).map((x) => x.toLowerCase()) : [];
    if (domains.includes(d)) return 'exists' as const;
    const line = `${user.name}\t${[...domains, d].join(' ')}`;
    if (at >= 0) lines[at] = line;
    else lines.push(line);
    return 'added' as const;
  });
}

/** Without `domain`, every right the administrator has. */
export async function deleteAdmin(config: Config, login: string, domain?: string): Promise<'deleted' | 'absent'> {
  const key = login.toLowerCase();
  const d = domain === undefined ? undefined : checkDomain(domain);
  return editTable(config.raw.domain_admins_file, (lines) => {
    const at = findLine(lines, key);
    if (at < 0) return 'absent' as const;
    const domains = lines[at].trim().split(/\s+/).slice(1).map((x) => x.toLowerCase());
    if (d !== undefined && !domains.includes(d)) return 'absent' as const;
    const left = d === undefined ? [] : domains.filter((x) => x !== d);
    if (left.length) lines[at] = `${key}\t${left.join(' ')}`;
    else lines.splice(at, 1);
    return 'deleted' as const;
  });
}

export function listAdmins(config: Config, domain?: string): AdminRow[] {
  const d = domain?.toLowerCase();
  return readTable(config.raw.domain_admins_file)
    .map((l) => ({ admin: l.fields[0].toLowerCase(), domains: l.fields.slice(1).map((x) => x.toLowerCase()) }))
    .filter((r) => !d || r.domains.includes(d))
    .sort((a, b) => (a.admin < b.admin ? -1 : a.admin > b.admin ? 1 : 0));
}
