// Virtual domains, their users, their alias table (sendmail's virtusertable),
// quotas and domain administrators: the plain-text files under /etc/mail that
// `mailtk domain|user|alias|quota|admin` edit (virtual_domains_file,
// virtual_users_file, virtual_alias_file, quota_file, domain_admins_file).
// Read here and nowhere else (the alias table's compiled form is
// src/aliases/virtual-table.ts's); each file is read again when its inode,
// size or mtime changes (one stat a lookup), so a running daemon sees an edit
// at once, with no restart and no signal. Lookups go through a Set or Map
// made once per version of a file, so they cost the same at 100,000 lines.
// A virtual user is a User named "user@domain" with mail_owner's ids (or,
// for an unprivileged mailtk, the process's own): no Unix account, a mailbox
// under mail_spool_dir/virtual/DOMAIN (see mailbox/spool.ts), a home for
// IMAP folders and indexes beside it, under .home (a dot name no mailbox
// can have). Sits at the config layer: config/users.ts asks it for names
// holding "@".
// Known limit: every virtual user's POP3/IMAP session runs in one agent as
// mail_owner, the account that also owns the queue (Dovecot gives its
// virtual mailboxes an account of their own, vmail); a separate account for
// virtual mailboxes would keep a session bug away from the queue.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { parseBytes } from '../config/index.ts';
import { type User, systemUser } from '../config/users.ts';
import { MailError } from '../message/status.ts';

export interface Line {
  /** The line's fields, split on white space (comments removed). */
  fields: string[];
  /** The rest of the line after the first field, as written. */
  rest: string;
  line: number;
}

interface Cached {
  stamp: string;
  lines: Line[];
}

const cache = new Map<string, Cached>();

/** Indexes made from one version of a table (a new version is a new array, so they go with it). */
const keySets = new WeakMap<Line[], Set<string>>();
const keyMaps = new WeakMap<Line[], Map<string, Line>>();

/** The table's first fields, lower case, as a Set. */
function keySet(lines: Line[]): Set<string> {
  let s = keySets.get(lines);
  if (!s) keySets.set(lines, (s = new Set(lines.map((l) => l.fields[0].toLowerCase()))));
  return s;
}

/** The table's lines by first field, lower case (the last line of a key wins, as in a compiled table). */
export function keyMap(lines: Line[]): Map<string, Line> {
  let m = keyMaps.get(lines);
  if (!m) keyMaps.set(lines, (m = new Map(lines.map((l) => [l.fields[0].toLowerCase(), l]))));
  return m;
}

function stampOf(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'none';
    throw new MailError('config', `cannot read: ${(e as Error).message}`, { file });
  }
}

/** The file's text ('' when it does not exist: stamp "none"). */
function readText(file: string, stamp: string): string {
  if (stamp === 'none') return '';
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new MailError('config', `cannot read: ${(e as Error).message}`, { file });
  }
}

/** The file's entries (empty when it does not exist), from the cache while the file is unchanged. */
export function readTable(file: string): Line[] {
  const stamp = stampOf(file);
  const hit = cache.get(file);
  if (hit?.stamp === stamp) return hit.lines;
  const text = readText(file, stamp);
  const lines = parseTable(text);
  cache.set(file, { stamp, lines });
  return lines;
}

export function parseTable(text: string): Line[] {
  const out: Line[] = [];
  const raws = text.split('\n');
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i];
    // Most lines of the big tables are one plain field (a domain, a user): no regex for them.
    if (raw !== '' && !PLAIN_BREAK.test(raw)) {
      out.push({ fields: [raw], rest: '', line: i + 1 });
      continue;
    }
    const body = raw.replace(/^\s*#.*$/, '').replace(/\r$/, '').trim();
    if (body === '') continue;
    const fields = body.split(/\s+/);
    out.push({ fields, rest: body.slice(fields[0].length).trim(), line: i + 1 });
  }
  return out;
}

/** What makes a line more than one plain field: white space or a comment. */
const PLAIN_BREAK = /[\s#]/;

/** The virtual domains, lower case. */
export function virtualDomains(config: Config): ReadonlySet<string> {
  return keySet(readTable(config.raw.virtual_domains_file));
}

export function isVirtualDomain(config: Config, domain: string): boolean {
  return domain !== '' && virtualDomains(config).has(domain.toLowerCase());
}

/** "user@domain" lower-cased and split, or undefined when it could not name a mailbox. */
export function splitVirtual(address: string): { local: string; domain: string; key: string } | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const local = address.slice(0, at).toLowerCase();
  const domain = address.slice(at + 1).toLowerCase();
  const safe = (s: string) => !s.startsWith('.') && !/[/\0\s:@]/.test(s);
  if (!safe(local) || !safe(domain) || domain.includes('..')) return undefined;
  return { local, domain, key: `${local}@${domain}` };
}

/** The users of the virtual domains, as "user@domain". */
export function virtualUserNames(config: Config): readonly string[] {
  return readNames(config.raw.virtual_users_file).names;
}

interface Names {
  stamp: string;
  names: string[];
  set?: Set<string>;
}

const nameCache = new Map<string, Names>();

/**
 * A table's first fields, lower case, without a Line a line: the users
 * table is the big one (100,000 lines make 200,000 objects as Lines, whose
 * garbage collection was most of a listing's time).
 */
function readNames(file: string): Names {
  const stamp = stampOf(file);
  const hit = nameCache.get(file);
  if (hit?.stamp === stamp) return hit;
  const text = readText(file, stamp);
  const names: string[] = [];
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    if (!PLAIN_BREAK.test(raw)) names.push(raw.toLowerCase());
    else {
      const first = raw.replace(/^\s*#.*$/, '').trim().split(/\s+/)[0];
      if (first) names.push(first.toLowerCase());
    }
  }
  const entry = { stamp, names };
  nameCache.set(file, entry);
  return entry;
}

/** The ids virtual mailboxes belong to: mail_owner's when it is ours to use, else this process's own. */
export function virtualOwner(config: Config): { uid: number; gid: number } {
  const me = process.geteuid?.() ?? 0;
  const owner = systemUser(config.mailOwner);
  if (owner && (me === 0 || me === owner.uid)) return { uid: owner.uid, gid: owner.gid };
  return { uid: me, gid: process.getegid?.() ?? 0 };
}

/** The directory of a virtual domain's mailboxes. */
export function domainDir(config: Config, domain: string): string {
  return path.join(config.mailSpoolDir, 'virtual', domain.toLowerCase());
}

/** A virtual user, or undefined when "user@domain" is none (an unknown domain, an unknown user). */
export function virtualUser(config: Config, address: string): User | undefined {
  const v = splitVirtual(address);
  if (!v || !isVirtualDomain(config, v.domain)) return undefined;
  const users = readNames(config.raw.virtual_users_file);
  if (!(users.set ??= new Set(users.names)).has(v.key)) return undefined;
  const { uid, gid } = virtualOwner(config);
  return { name: v.key, uid, gid, gecos: '', home: path.join(domainDir(config, v.domain), '.home', v.local), shell: '/bin/false' };
}

/** A virtusertable entry's targets: a list of members, or an error:CODE text refusal. */
export type VirtualTarget = { kind: 'members'; members: string[] } | { kind: 'error'; status: string; text: string };

export function parseTarget(rest: string, file: string, line: number): VirtualTarget {
  const err = /^error:(?:(\d{3})\s+)?([245]\.\d{1,3}\.\d{1,3})\s*(.*)$/i.exec(rest);
  if (err) return { kind: 'error', status: err[2], text: err[3] || (err[2].startsWith('5') ? 'User unknown' : 'Try again later') };
  if (/^error:/i.test(rest)) throw new MailError('config', `expected "error:5.1.1 text", found "${rest}"`, { file, line });
  const members = rest.split(',').map((m) => m.trim()).filter((m) => m !== '');
  if (members.length === 0) throw new MailError('config', 'an entry with no target', { file, line });
  return { kind: 'members', members };
}

export interface Quota {
  /** 0 = no limit. */
  bytes: number;
  messages: number;
  /** The line that set it: "user@domain" or "@domain". */
  from: string;
}

/** The user's own quota, else the domain's default; undefined when neither is set. */
export function quotaOf(config: Config, address: string): Quota | undefined {
  return quotaTable(config)(address);
}

/** quotaOf over one reading of quota_file, for a listing of many users (one stat, and one parse a line, not one a user). */
export function quotaTable(config: Config): (address: string) => Quota | undefined {
  const file = config.raw.quota_file;
  const byKey = keyMap(readTable(file));
  if (byKey.size === 0) return () => undefined;
  // One object a line, shared by the users it applies to (frozen: nobody may change another's).
  const parsed = new Map<Line, Quota>();
  const quota = (line: Line) => {
    let q = parsed.get(line);
    if (!q) parsed.set(line, (q = Object.freeze({ ...parseQuota(line.fields.slice(1), file, line.line), from: line.fields[0].toLowerCase() })));
    return q;
  };
  return (address) => {
    const key = address.toLowerCase();
    const at = key.lastIndexOf('@');
    if (at <= 0) return undefined;
    const line = byKey.get(key) ?? byKey.get(key.slice(at));
    return line ? quota(line) : undefined;
  };
}

export function parseQuota(fields: string[], file?: string, line?: number): { bytes: number; messages: number } {
  const bytes = parseBytes(fields[0] ?? '');
  const messages = fields[1] === undefined ? 0 : /^\d+$/.test(fields[1]) ? Number(fields[1]) : undefined;
  if (bytes === undefined || messages === undefined || fields.length > 2) {
    throw new MailError('config', `expected "user@domain SIZE [MESSAGES]" (SIZE as 10M, 512k or bytes; 0 = no limit), found "${fields.join(' ')}"`, { file, line });
  }
  return { bytes, messages };
}

/**
 * The check of virtual_alias_file that newaliases makes before compiling it
 * (src/aliases/virtual-table.ts): every line an address of a virtual domain
 * (user@domain, @domain) and a target that parses; errors as file:line.
 * `lines` are the ones being compiled, else the file as it is now.
 */
export function checkVirtualAliases(config: Config, lines?: Line[]): { file: string; count: number; errors: string[] } {
  const file = config.raw.virtual_alias_file;
  const errors: string[] = [];
  if (!lines) {
    try {
      lines = readTable(file);
    } catch (e) {
      return { file, count: 0, errors: [(e as Error).message] };
    }
  }
  const domains = virtualDomains(config);
  for (const l of lines) {
    const key = l.fields[0].toLowerCase();
    const v = splitVirtual(key.startsWith('@') ? `x${key}` : key);
    if (!v) errors.push(`${file}:${l.line}: "${l.fields[0]}" is not user@domain or @domain`);
    else if (!domains.has(v.domain)) errors.push(`${file}:${l.line}: ${v.domain} is not in ${config.raw.virtual_domains_file}`);
    try {
      parseTarget(l.rest, file, l.line);
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  return { file, count: lines.length, errors };
}

/** The virtual domains a domain administrator (a login of passwd_file, "user@domain") may change. */
export function adminDomains(config: Config, login: string): string[] {
  const line = keyMap(readTable(config.raw.domain_admins_file)).get(login.toLowerCase());
  return line ? line.fields.slice(1).map((d) => d.toLowerCase()) : [];
}
