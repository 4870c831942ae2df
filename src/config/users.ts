// Local users: the system's (getent passwd, so NSS sources count) or, when
// user_db names a file, a passwd(5)-format file of its own (tests use that).
// Lookups are cached for the life of the process; names are matched exactly,
// as passwd does, after the caller has folded case where it wants to.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { MailError } from '../message/status.ts';
import { virtualUser } from '../virtual/tables.ts';
import type { Config } from './index.ts';

export interface User {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

const cache = new Map<string, User | null>();
let fileUsers: { file: string; byName: Map<string, User>; byUid: Map<number, User> } | undefined;

export function parsePasswdLine(line: string): User | undefined {
  const f = line.split(':');
  if (f.length < 7 || !/^\d+$/.test(f[2]) || !/^\d+$/.test(f[3])) return undefined;
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), gecos: f[4], home: f[5], shell: f[6] };
}

function loadFile(file: string) {
  if (fileUsers?.file === file) return fileUsers;
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new MailError('config', `user_db: cannot read: ${(e as Error).message}`, { file });
  }
  const byName = new Map<string, User>();
  const byUid = new Map<number, User>();
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '' || line.startsWith('#')) return;
    const u = parsePasswdLine(line);
    if (!u) throw new MailError('config', `user_db: not a passwd(5) line: "${line}"`, { file, line: i + 1 });
    byName.set(u.name, u);
    if (!byUid.has(u.uid)) byUid.set(u.uid, u);
  });
  fileUsers = { file, byName, byUid };
  return fileUsers;
}

function getent(key: string): User | undefined {
  const r = spawnSync('getent', ['passwd', key], { encoding: 'utf8' });
  if (r.status !== 0 || !r.stdout) return undefined;
  return parsePasswdLine(r.stdout.split('\n')[0]);
}

export function lookupUser(config: Config, name: string): User | undefined {
  // "user@domain": a virtual domain's user (src/virtual), never a Unix account.
  if (name.includes('@')) return virtualUser(config, name);
  if (!name || name.includes('/') || name.includes(':') || name.startsWith('-')) return undefined;
  if (config.userDb !== 'system') return loadFile(config.userDb).byName.get(name);
  const hit = cache.get(name);
  if (hit !== undefined) return hit ?? undefined;
  const u = /^\d+$/.test(name) ? undefined : getent(name);
  cache.set(name, u ?? null);
  return u;
}

export function lookupUid(config: Config, uid: number): User | undefined {
  if (config.userDb !== 'system') return loadFile(config.userDb).byUid.get(uid);
  const key = `#${uid}`;
  const hit = cache.get(key);
  if (hit !== undefined) return hit ?? undefined;
  const u = getent(String(uid));
  cache.set(key, u ?? null);
  return u;
}

/** The system account that runs programs and writes files for root-owned aliases. */
export function systemUser(name: string): User | undefined {
  return fromEtcPasswd((u) => u.name === name) ?? getent(name);
}

/** The first account of /etc/passwd that matches, read directly (no getent process on a hot path). */
function fromEtcPasswd(match: (u: User) => boolean): User | undefined {
  try {
    for (const line of fs.readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const u = parsePasswdLine(line);
      if (u && match(u)) return u;
    }
  } catch {
    // not readable: the caller falls back to getent (NSS sources other than files)
  }
  return undefined;
}

/**
 * The invoking user, for the From: header and the envelope sender. Read from
 * user_db or /etc/passwd directly (no getent process on sendmail's hot path),
 * falling back to getent for NSS-only accounts.
 */
export function invokingUser(config: Config): User {
  const uid = process.getuid?.() ?? 0;
  if (config.userDb !== 'system') {
    const u = loadFile(config.userDb).byUid.get(uid);
    if (u) return u;
  } else {
    const u = fromEtcPasswd((x) => x.uid === uid) ?? lookupUid(config, uid);
    if (u) return u;
  }
  const name = process.env.LOGNAME || process.env.USER || `uid${uid}`;
  return { name, uid, gid: process.getgid?.() ?? 0, gecos: '', home: process.env.HOME ?? '/', shell: '/bin/sh' };
}
