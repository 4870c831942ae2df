// `mailtk list create|del|set|show|add|remove|members LIST@DOMAIN`: the
// administrator's side of the mailing lists (mailtk-list(5)). As root, the
// list's directory is made owned by mail_owner and every change to the
// list's files is made with mail_owner's effective ids (the least identity
// that suffices; the queue runner, which changes them too, is mail_owner);
// the mail path (src/lists/handle.ts) does the rest.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { systemUser } from '../config/users.ts';
import { actAsMailOwner } from '../daemon/privs.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import {
  type ListSettings,
  type Policy,
  addMembers,
  heldTokens,
  listExists,
  listPath,
  makeListDir,
  memberAddress,
  newSecret,
  readBounces,
  readMembers,
  readSettings,
  removeMember,
  roleAddress,
  withListLock,
  writeMembers,
  writeSettings,
} from '../lists/index.ts';

export interface CreateOptions {
  owners: string[];
  policy?: Policy;
  nonmember?: 'hold' | 'refuse';
  description?: string;
  archive?: boolean;
  verp?: boolean;
}

/** Run `fn` as mail_owner (effective ids) when root: the list's files are mail_owner's. */
async function asListOwner<T>(config: Config, fn: () => T | Promise<T>): Promise<T> {
  if ((process.geteuid?.() ?? 0) !== 0) return fn();
  const owner = systemUser(config.mailOwner);
  if (!owner) throw new MailError('config', `mail_owner account "${config.mailOwner}" does not exist`);
  const giveBack = actAsMailOwner(owner);
  try {
    return await fn();
  } finally {
    giveBack();
  }
}

function listName(given: string): string {
  return given.trim().toLowerCase();
}

function mustExist(config: Config, name: string): void {
  if (!listExists(config, name)) throw new MailError('user-unknown', `no such list: ${name} (in ${config.listDir})`);
}

export async function createList(config: Config, given: string, o: CreateOptions): Promise<ListSettings> {
  const name = listName(given);
  if (listExists(config, name)) throw new MailError('usage', `list ${name} exists already`);
  const owners = o.owners.map((a) => memberAddress(a) ?? '');
  if (owners.length === 0 || owners.includes('')) throw new MailError('usage', 'a list needs at least one owner address (user@domain)');
  const root = (process.geteuid?.() ?? 0) === 0;
  const owner = root ? systemUser(config.mailOwner) : undefined;
  if (root && !owner) throw new MailError('config', `mail_owner account "${config.mailOwner}" does not exist`);
  makeListDir(config, name, owner);
  const s: ListSettings = {
    name, policy: o.policy ?? 'members', nonmember: o.nonmember ?? 'hold', owners, description: o.description ?? '', archive: o.archive ?? false, verp: o.verp ?? false, secret: newSecret(),
  };
  await asListOwner(config, () => {
    writeSettings(config, s);
    writeMembers(config, name, []);
  });
  log(config, '', `list ${name} created by ${who()}: policy=${s.policy}, owners=${owners.join(',')}${s.verp ? ', verp' : ''}`);
  return s;
}

/** Change a list's settings; only those given. */
export async function setList(config: Config, given: string, o: Partial<CreateOptions>): Promise<ListSettings> {
  const name = listName(given);
  mustExist(config, name);
  const owners = o.owners?.map((a) => memberAddress(a) ?? '');
  if (owners && (owners.length === 0 || owners.includes(''))) throw new MailError('usage', 'a list needs at least one owner address (user@domain)');
  const changed = Object.entries({ ...o, owners }).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : v}`);
  if (changed.length === 0) throw new MailError('usage', 'name a setting to change (--policy, --nonmember, --owner, --description, --archive, --verp)');
  const s = await asListOwner(config, () =>
    withListLock(config, name, () => {
      const s = readSettings(config, name);
      const next: ListSettings = {
        ...s,
        policy: o.policy ?? s.policy,
        nonmember: o.nonmember ?? s.nonmember,
        owners: owners ?? s.owners,
        description: o.description ?? s.description,
        archive: o.archive ?? s.archive,
        verp: o.verp ?? s.verp,
      };
      writeSettings(config, next);
      return next;
    }),
  );
  log(config, '', `list ${name} changed by ${who()}: ${changed.join(' ')}`);
  return s;
}

export function deleteList(config: Config, given: string): void {
  const name = listName(given);
  mustExist(config, name);
  fs.rmSync(listPath(config, name), { recursive: true, force: true });
  log(config, '', `list ${name} deleted by ${who()}`);
}

export function showList(config: Config, given: string): string {
  const name = listName(given);
  mustExist(config, name);
  const s = readSettings(config, name);
  const members = readMembers(config, name);
  const bounces = readBounces(config, name);
  return [
    `list:        ${name}`,
    `description: ${s.description}`,
    `policy:      ${s.policy} (non-members: ${s.nonmember})`,
    `owners:      ${s.owners.join(', ')}`,
    `archive:     ${s.archive ? listPath(config, name, 'archive') : 'no'}`,
    `verp:        ${s.verp ? `yes (from ${roleAddress(name, 'bounces', 'MEMBER=DOMAIN')})` : 'no'}`,
    `members:     ${members.filter((m) => !m.disabled).length} enabled, ${members.filter((m) => m.disabled).length} disabled`,
    `bouncing:    ${bounces.size}`,
    `held posts:  ${heldTokens(config, name).length}`,
    `addresses:   ${name} (post), ${roleAddress(name, 'request')}, ${roleAddress(name, 'owner')}, ${roleAddress(name, 'bounces')}`,
    '',
  ].join('\n');
}

export function listMembers(config: Config, given: string): string {
  const name = listName(given);
  mustExist(config, name);
  return readMembers(config, name)
    .map((m) => (m.disabled ? `${m.address} (disabled)\n` : `${m.address}\n`))
    .join('');
}

/** Add or remove members; returns how many changed. */
export async function changeMembers(config: Config, given: string, change: 'add' | 'remove', addresses: string[]): Promise<number> {
  const name = listName(given);
  mustExist(config, name);
  let n = 0;
  await asListOwner(config, async () => {
    if (change === 'add') n = await addMembers(config, name, addresses);
    else for (const a of addresses) if (await removeMember(config, name, a)) n++;
  });
  log(config, '', `list ${name}: ${change} ${addresses.length} address(es), ${n} changed, by ${who()}`);
  return n;
}

function who(): string {
  return process.env.SUDO_USER || process.env.USER || `uid ${process.geteuid?.()}`;
}
