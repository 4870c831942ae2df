// A mailing list's state on disk: one directory per list, list_dir/LIST@DOMAIN,
// owned by mail_owner (the queue runner's identity), as mlmmj keeps it:
//   settings   `key = value` lines: policy, nonmember, owners, description, archive, verp, secret
//   members    one address a line, "ADDRESS disabled" for one disabled by bounces
//   bounces    "ADDRESS COUNT LAST" lines (LAST: the last bounce, ms since the epoch)
//   pending/T  a subscription change waiting for its confirmation (token T)
//   held/T     a post waiting for the owner (token T): "SENDER\n" then the message;
//              its mtime is when it was held
//   archive    the optional mbox of every post, readable by `mail -f`
// Every change is read-modify-write under the list's lock (an O_EXCL file,
// broken when older than LOCK_STALE_MS) and lands by rename (mailbox/io.ts's
// replaceFile), so a reader sees the old file or the new one. Files are made
// by whoever writes them: the runner and `mailtk list` both act as mail_owner.
// Owns nothing outside the list's directory.

import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type Config, parseDuration } from '../config/index.ts';
import { replaceFile } from '../mailbox/index.ts';
import { MailError } from '../message/status.ts';

export type Policy = 'members' | 'anyone' | 'moderated';
export type NonMember = 'hold' | 'refuse';

export interface ListSettings {
  /** LIST@DOMAIN, lower case. */
  name: string;
  policy: Policy;
  nonmember: NonMember;
  owners: string[];
  description: string;
  archive: boolean;
  /** Each member's copy from LIST-bounces+MEMBER=DOMAIN (VERP), one queue entry each. */
  verp: boolean;
  /** Keys the one-click unsubscribe tokens (HMAC of the member's address). */
  secret: string;
}

export interface Member {
  address: string;
  disabled: boolean;
}

export type PendingAction = 'subscribe' | 'unsubscribe';

export interface Pending {
  action: PendingAction;
  address: string;
  created: number;
}

export interface Bounces {
  count: number;
  /** The last bounce counted, ms since the epoch. */
  last: number;
}

/** How long a confirmation token stays good (list_pending_expire). */
export function pendingTtl(config: Config): number {
  return parseDuration(config.raw.list_pending_expire) ?? 3 * 86_400_000;
}

/** How long a held post waits for the owners (list_held_expire). */
export function heldTtl(config: Config): number {
  return parseDuration(config.raw.list_held_expire) ?? 14 * 86_400_000;
}

/** How long a bounce count lasts without a new bounce (list_bounce_stale_after). */
export function bounceStaleAfter(config: Config): number {
  return parseDuration(config.raw.list_bounce_stale_after) ?? 7 * 86_400_000;
}

const FILE_MODE = 0o640;
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;
const NAME = /^[a-z0-9][a-z0-9._-]*@[a-z0-9][a-z0-9.-]*$/;
const TOKEN = /^[0-9a-f]{32}$/;

export function isListName(name: string): boolean {
  return NAME.test(name);
}

export function listPath(config: Config, name: string, ...rest: string[]): string {
  if (!isListName(name)) throw new MailError('usage', `"${name}" is not a list name (LIST@DOMAIN, lower case)`);
  return path.join(config.listDir, name, ...rest);
}

export function listExists(config: Config, name: string): boolean {
  return isListName(name) && fs.existsSync(listPath(config, name, 'settings'));
}

export function allLists(config: Config): string[] {
  try {
    return fs.readdirSync(config.listDir).filter((n) => isListName(n) && fs.existsSync(path.join(config.listDir, n, 'settings'))).sort();
  } catch {
    return [];
  }
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

export function readSettings(config: Config, name: string): ListSettings {
  const text = readText(listPath(config, name, 'settings'));
  if (!text) throw new MailError('user-unknown', `no such list: ${name}`);
  const kv = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([a-z_]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) kv.set(m[1], m[2]);
  }
  const policy = kv.get('policy');
  return {
    name,
    policy: policy === 'anyone' || policy === 'moderated' ? policy : 'members',
    nonmember: kv.get('nonmember') === 'refuse' ? 'refuse' : 'hold',
    owners: (kv.get('owners') ?? '').split(/[\s,]+/).filter(Boolean).map((a) => a.toLowerCase()),
    description: kv.get('description') ?? '',
    archive: /^(yes|true|on|1)$/i.test(kv.get('archive') ?? ''),
    verp: /^(yes|true|on|1)$/i.test(kv.get('verp') ?? ''),
    secret: kv.get('secret') ?? '',
  };
}

export function writeSettings(config: Config, s: ListSettings): void {
  const text = [
    `# mailing list ${s.name}: see mailtk-list(5)`,
    `policy = ${s.policy}`,
    `nonmember = ${s.nonmember}`,
    `owners = ${s.owners.join(', ')}`,
    `description = ${s.description}`,
    `archive = ${s.archive ? 'yes' : 'no'}`,
    `verp = ${s.verp ? 'yes' : 'no'}`,
    `secret = ${s.secret}`,
    '',
  ].join('\n');
  replaceFile(listPath(config, s.name, 'settings'), text, FILE_MODE);
}

export function newSecret(): string {
  return randomBytes(16).toString('hex');
}

export function newToken(): string {
  return randomBytes(16).toString('hex');
}

export function isToken(t: string): boolean {
  return TOKEN.test(t);
}

/** The member's one-click unsubscribe token: HMAC of the address under the list's secret. */
export function unsubscribeToken(s: ListSettings, address: string): string {
  return createHmac('sha256', s.secret).update(address.toLowerCase()).digest('hex').slice(0, 32);
}

export function readMembers(config: Config, name: string): Member[] {
  const out: Member[] = [];
  for (const line of readText(listPath(config, name, 'members')).split('\n')) {
    const [address, flag] = line.trim().split(/\s+/);
    if (address) out.push({ address, disabled: flag === 'disabled' });
  }
  return out;
}

export function writeMembers(config: Config, name: string, members: Member[]): void {
  replaceFile(listPath(config, name, 'members'), members.map((m) => (m.disabled ? `${m.address} disabled\n` : `${m.address}\n`)).join(''), FILE_MODE);
}

/** The bounce counts; a line without its time (as first written) counts as bouncing now. */
export function readBounces(config: Config, name: string, now = Date.now()): Map<string, Bounces> {
  const out = new Map<string, Bounces>();
  for (const line of readText(listPath(config, name, 'bounces')).split('\n')) {
    const [address, n, last] = line.trim().split(/\s+/);
    if (address && Number(n) > 0) out.set(address, { count: Number(n), last: Number(last) || now });
  }
  return out;
}

export function writeBounces(config: Config, name: string, counts: Map<string, Bounces>): void {
  replaceFile(listPath(config, name, 'bounces'), [...counts].map(([a, b]) => `${a} ${b.count} ${b.last}\n`).join(''), FILE_MODE);
}

export function savePending(config: Config, name: string, p: Pending): string {
  const token = newToken();
  replaceFile(listPath(config, name, 'pending', token), `${p.action} ${p.address} ${p.created}\n`, FILE_MODE);
  return token;
}

/** The pending change of this token, removed; undefined when unknown or expired. */
export function takePending(config: Config, name: string, token: string, now: number): Pending | undefined {
  if (!isToken(token)) return undefined;
  const file = listPath(config, name, 'pending', token);
  const taken = `${file}.taken.${process.pid}`;
  try {
    fs.renameSync(file, taken); // one confirmation wins
  } catch {
    return undefined;
  }
  const text = readText(taken);
  fs.rmSync(taken, { force: true });
  const p = parsePending(text);
  return p && now - p.created <= pendingTtl(config) ? p : undefined;
}

function parsePending(text: string): Pending | undefined {
  const [action, address, created] = text.trim().split(' ');
  if ((action !== 'subscribe' && action !== 'unsubscribe') || !address || !(Number(created) >= 0)) return undefined;
  return { action, address, created: Number(created) };
}

/** The pending changes older than list_pending_expire (or unreadable), removed; their tokens. */
export function dropExpiredPending(config: Config, name: string, now: number): Array<{ token: string; pending?: Pending }> {
  const ttl = pendingTtl(config);
  const out: Array<{ token: string; pending?: Pending }> = [];
  for (const token of tokensIn(config, name, 'pending')) {
    const file = listPath(config, name, 'pending', token);
    const p = parsePending(readText(file));
    if (p && now - p.created <= ttl) continue;
    fs.rmSync(file, { force: true });
    out.push({ token, pending: p });
  }
  return out;
}

function tokensIn(config: Config, name: string, sub: 'pending' | 'held'): string[] {
  try {
    return fs.readdirSync(listPath(config, name, sub)).filter(isToken);
  } catch {
    return [];
  }
}

export function saveHeld(config: Config, name: string, sender: string, data: Buffer): string {
  const token = newToken();
  replaceFile(listPath(config, name, 'held', token), Buffer.concat([Buffer.from(`${sender}\n`), data]), FILE_MODE);
  return token;
}

export function heldTokens(config: Config, name: string): string[] {
  return tokensIn(config, name, 'held');
}

/** The tokens of held posts held longer than list_held_expire (by the file's mtime). */
export function expiredHeld(config: Config, name: string, now: number): string[] {
  const ttl = heldTtl(config);
  return heldTokens(config, name).filter((t) => {
    const st = fs.statSync(listPath(config, name, 'held', t), { throwIfNoEntry: false });
    return st !== undefined && now - st.mtimeMs > ttl;
  });
}

/**
 * The held post of this token, removed; undefined when unknown. Taken by a
 * rename first, so that of an approval and an expiry at once only one gets it.
 */
export function takeHeld(config: Config, name: string, token: string): { sender: string; data: Buffer } | undefined {
  if (!isToken(token)) return undefined;
  const file = listPath(config, name, 'held', token);
  const taken = `${file}.taken.${process.pid}`;
  let raw: Buffer;
  try {
    fs.renameSync(file, taken);
    raw = fs.readFileSync(taken);
  } catch {
    return undefined;
  }
  fs.rmSync(taken, { force: true });
  const nl = raw.indexOf(10);
  return { sender: raw.subarray(0, nl).toString('utf8'), data: raw.subarray(nl + 1) };
}

/** Make the list's directory (and its pending/ and held/), owned by the queue runner's account. */
export function makeListDir(config: Config, name: string, owner?: { uid: number; gid: number }): void {
  const dir = listPath(config, name);
  fs.mkdirSync(config.listDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(dir, { mode: 0o750 });
  for (const sub of ['pending', 'held']) fs.mkdirSync(path.join(dir, sub), { mode: 0o750 });
  if (owner) for (const p of [config.listDir, dir, path.join(dir, 'pending'), path.join(dir, 'held')]) fs.chownSync(p, owner.uid, owner.gid);
}

/** Run `fn` under the list's lock: one change at a time, across processes. */
export async function withListLock<T>(config: Config, name: string, fn: () => T | Promise<T>): Promise<T> {
  const lock = listPath(config, name, '.lock');
  const until = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > LOCK_STALE_MS) fs.rmSync(lock, { force: true });
      } catch {
        // gone already
      }
      if (Date.now() > until) throw new MailError('mailbox-locked', `list ${name} is locked (${lock}); try again later`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}
