// `mailtk sieve set|list|show|off USER@DOMAIN`: the administrator's side of a
// virtual user's Sieve scripts (mailtk-sieve(7)). A virtual user has no Unix
// account and may have no ManageSieve client, so the administrator may set
// the active script for them; it lands in the same store ManageSieve uses
// (home/sieve/NAME.sieve, home/.sieve the link), where the user can see and
// replace it. As root, every file operation is done with mail_owner's
// effective ids, the virtual mailboxes' owner. Only virtual users: a system
// user's ~/.sieve is theirs, and root writes nothing under a user's home.

import type { Config } from '../config/index.ts';
import { systemUser, type User } from '../config/users.ts';
import { actAsMailOwner } from '../daemon/privs.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import { ScriptStore, SieveError, StoreError, compileScript } from '../sieve/index.ts';
import { virtualUser } from '../virtual/tables.ts';

/** The name a script the administrator sets is stored under, unless given. */
export const ADMIN_SCRIPT = 'admin';

function userOf(config: Config, address: string): User {
  const a = address.trim().toLowerCase();
  if (!a.includes('@')) throw new MailError('usage', `${a}: name a virtual user as user@domain (a system user sets ~/.sieve, or uses ManageSieve)`);
  const user = virtualUser(config, a);
  if (!user) throw new MailError('user-unknown', `${a} is not a virtual user (mailtk user list)`);
  return user;
}

/** Run `fn` on the user's store with mail_owner's ids (as root). */
function withStore<T>(config: Config, address: string, fn: (store: ScriptStore, user: User) => T): T {
  const user = userOf(config, address);
  let giveBack = () => undefined as void;
  if ((process.geteuid?.() ?? 0) === 0) {
    const owner = systemUser(config.mailOwner);
    if (!owner) throw new MailError('config', `mail_owner account "${config.mailOwner}" does not exist`);
    giveBack = actAsMailOwner(owner);
  }
  try {
    return fn(new ScriptStore(config, user), user);
  } catch (e) {
    if (e instanceof StoreError) throw new MailError('usage', `${user.name}: ${e.message}`);
    throw e;
  } finally {
    giveBack();
  }
}

/** Check `text`, store it as `name` and make it the active script. */
export function setScript(config: Config, address: string, text: string, name = ADMIN_SCRIPT, source = 'stdin'): string {
  try {
    compileScript(text);
  } catch (e) {
    if (e instanceof SieveError) throw new MailError('usage', `${source}: ${e.message}; nothing changed`);
    throw e;
  }
  if (!ScriptStore.validName(name)) throw new MailError('usage', `"${name}" is not a script name (no "/", no leading ".")`);
  return withStore(config, address, (store, user) => {
    store.put(name, text);
    store.setActive(name);
    log(config, '', `sieve: script "${name}" set active for ${user.name} by ${who()}`);
    return user.name;
  });
}

/** The user's scripts, one a line, the active one marked. */
export function listScripts(config: Config, address: string): string {
  return withStore(config, address, (store) =>
    store
      .list()
      .map((s) => `${s.name}${s.active ? ' (active)' : ''}\n`)
      .join(''),
  );
}

/** The text of the named script, or of the active one. */
export function showScript(config: Config, address: string, name?: string): string {
  return withStore(config, address, (store, user) => {
    const which = name ?? store.activeName();
    if (!which) throw new MailError('usage', `${user.name} has no active script`);
    return store.get(which);
  });
}

/** No active script: mail is delivered unfiltered (the scripts are kept). */
export function scriptsOff(config: Config, address: string): void {
  withStore(config, address, (store, user) => {
    store.setActive('');
    log(config, '', `sieve: no active script for ${user.name}, by ${who()}`);
  });
}

function who(): string {
  return process.env.SUDO_USER || process.env.USER || `uid ${process.geteuid?.()}`;
}
