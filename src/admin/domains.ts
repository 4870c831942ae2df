// `mailtk domain add|del|list` and `mailtk alias add|del|list`: the virtual
// domains and their alias table (sendmail's virtusertable), changed through
// src/virtual/edit.ts (newaliases's lock, atomic replace); the alias table
// is compiled again after each change (src/aliases/virtual-table.ts). A
// running daemon re-reads the files when their stat changes: no restart. A domain's mailboxes are kept when it is deleted (as Postfix
// leaves them), and a domain with users left is not deleted; its lines in
// the alias table and the quotas go with it.

import { compileVirtualAliases } from '../aliases/index.ts';
import { type Config, isLocalDomain, localDomains } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { deleteLine, editTable, findLine, makeMailboxDirs } from '../virtual/edit.ts';
import { domainDir, isVirtualDomain, readTable, splitVirtual, virtualDomains, virtualUserNames } from '../virtual/tables.ts';

export interface DomainRow {
  domain: string;
  users: number;
  aliases: number;
  mailboxes: string;
}

/** A domain name as the tables hold it: lower case, letters, digits, dots and hyphens. */
export function checkDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(d)) {
    throw new MailError('usage', `"${domain}" is not a domain name (letters, digits, hyphens and dots, e.g. example.org)`);
  }
  return d;
}

export async function addDomain(config: Config, domain: string): Promise<'added' | 'exists'> {
  const d = checkDomain(domain);
  if (isLocalDomain(localDomains(config), d)) {
    throw new MailError('usage', `${d} is one of this host's own domains (hostname or ${config.localHostNamesFile}), whose users are Unix accounts; remove it there first`);
  }
  const done = await editTable(config.raw.virtual_domains_file, (lines) => {
    if (findLine(lines, d) >= 0) return 'exists' as const;
    lines.push(d);
    return 'added' as const;
  });
  makeMailboxDirs(config, d);
  return done;
}

export async function deleteDomain(config: Config, domain: string): Promise<'deleted' | 'absent'> {
  const d = checkDomain(domain);
  const users = virtualUserNames(config).filter((u) => u.endsWith(`@${d}`));
  if (users.length) throw new MailError('usage', `${d} still has ${users.length} user${users.length === 1 ? '' : 's'} (${users.slice(0, 3).join(', ')}${users.length > 3 ? ', ...' : ''}); delete them first (mailtk user del)`);
  const done = await deleteLine(config.raw.virtual_domains_file, d);
  // Its entries in the alias table and the quotas go with it (newaliases would call them errors).
  if (done === 'deleted') {
    for (const file of [config.raw.virtual_alias_file, config.raw.quota_file]) await dropDomainLines(file, d);
    await dropAdminDomain(config, d);
    await recompileAliases(config);
  }
  return done;
}

/** The domain leaves every administrator's line (a line left with no domain goes). */
async function dropAdminDomain(config: Config, domain: string): Promise<void> {
  await editTable(config.raw.domain_admins_file, (lines) => {
    const kept: string[] = [];
    for (const l of lines) {
      const f = l.trim().split(/\s+/);
      if (/^\s*#/.test(l) || !f.slice(1).map((x) => x.toLowerCase()).includes(domain)) kept.push(l);
      else if (f.length > 2) kept.push([f[0], ...f.slice(1).filter((x) => x.toLowerCase() !== domain)].join('\t'));
    }
    lines.splice(0, lines.length, ...kept);
  });
}

/** The alias table's compiled form, made again after a change (its errors, from a hand edit, refuse the change's success). */
export async function recompileAliases(config: Config): Promise<void> {
  const v = await compileVirtualAliases(config);
  if (v.errors.length) {
    throw new MailError('config', `${v.file} was changed but not compiled, because of lines written by hand:\n${v.errors.join('\n')}\nfix them and run newaliases (until then the text itself is read)`);
  }
}

async function dropDomainLines(file: string, domain: string): Promise<void> {
  await editTable(file, (lines) => {
    const kept = lines.filter((l) => /^\s*#/.test(l) || !(l.trim().split(/\s+/)[0] ?? '').toLowerCase().endsWith(`@${domain}`));
    lines.splice(0, lines.length, ...kept);
  });
}

export function listDomains(config: Config): DomainRow[] {
  const users = virtualUserNames(config);
  const aliases = readTable(config.raw.virtual_alias_file).map((l) => l.fields[0].toLowerCase());
  return [...virtualDomains(config)].sort().map((domain) => ({
    domain,
    users: users.filter((u) => u.endsWith(`@${domain}`)).length,
    aliases: aliases.filter((a) => a.endsWith(`@${domain}`)).length,
    mailboxes: domainDir(config, domain),
  }));
}

// ---- the alias table (virtusertable) ----------------------------------------

export interface AliasRow {
  address: string;
  target: string;
}

/** "user@domain" or "@domain" (the catch-all) of a virtual domain, lower case. */
export function checkAliasAddress(config: Config, address: string): string {
  const catchAll = address.startsWith('@');
  const v = splitVirtual(catchAll ? `x${address}` : address);
  if (!v) throw new MailError('usage', `"${address}" is not user@domain or @domain`);
  if (!isVirtualDomain(config, v.domain)) throw new MailError('usage', `${v.domain} is not a virtual domain (mailtk domain add ${v.domain})`);
  return catchAll ? `@${v.domain}` : v.key;
}

/** The target as written in the table: addresses joined by ", ", or one "error:5.1.1 text". */
export function checkTarget(targets: string[]): string {
  const text = targets.join(' ').trim();
  if (text === '') throw new MailError('usage', 'name a target: a user, user@domain, a remote address, or "error:5.1.1 text"');
  if (/^error:/i.test(text)) {
    if (!/^error:(\d{3}\s+)?[45]\.\d{1,3}\.\d{1,3}(\s|$)/i.test(text)) throw new MailError('usage', `expected "error:5.1.1 text" (or a 4.x.x status to defer), found "${text}"`);
    return text;
  }
  const list = text.split(/[\s,]+/).filter(Boolean);
  for (const t of list) {
    if (/^[|/:]/.test(t) || t.includes('"')) throw new MailError('usage', `"${t}": the alias table takes addresses only (programs and files belong in the aliases file)`);
  }
  return list.join(', ');
}

export async function addAlias(config: Config, address: string, targets: string[]): Promise<'added' | 'changed'> {
  const key = checkAliasAddress(config, address);
  const target = checkTarget(targets);
  const done = await editTable(config.raw.virtual_alias_file, (lines) => {
    const at = findLine(lines, key);
    if (at >= 0) lines[at] = `${key}\t${target}`;
    else lines.push(`${key}\t${target}`);
    return at >= 0 ? ('changed' as const) : ('added' as const);
  });
  await recompileAliases(config);
  return done;
}

export async function deleteAlias(config: Config, address: string): Promise<'deleted' | 'absent'> {
  const key = address.toLowerCase();
  const done = await deleteLine(config.raw.virtual_alias_file, key);
  if (done === 'deleted') await recompileAliases(config);
  return done;
}

export function listAliases(config: Config, domain?: string): AliasRow[] {
  const d = domain?.toLowerCase();
  return readTable(config.raw.virtual_alias_file)
    .map((l) => ({ address: l.fields[0].toLowerCase(), target: l.rest }))
    .filter((r) => !d || r.address.endsWith(`@${d}`));
}
