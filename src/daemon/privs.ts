// The identities of a mailtk started as root (sendmail(8), SECURITY): root
// itself only reads the configuration, binds ports and starts processes;
// everything that handles network bytes or the queue runs as mail_owner, and
// everything that touches a user's files runs as that user. This module finds
// (or creates, as Postfix's post-install creates "postfix") the mail_owner
// account, gives it the queue directory, lets it read the secrets its
// listeners need, and makes the identity changes themselves. Started by an
// ordinary user, mailtk changes no identity: everything runs as that user.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { lookupUser, systemUser, type User } from '../config/users.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import { ensureQueueDirs } from '../queue/index.ts';

export function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** mail_owner's account, created as a system account with no login shell when missing. */
export function mailOwnerAccount(config: Config): User {
  const name = config.mailOwner;
  let user = systemUser(name) ?? lookupUser(config, name);
  if (!user) {
    const r = spawnSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', '--comment', 'mailtk queue owner', name], { encoding: 'utf8' });
    if (r.status !== 0 && r.status !== 9) {
      throw new MailError('config', `mail_owner account "${name}" does not exist and useradd failed: ${(r.stderr || r.error?.message || '').trim()}; create it (useradd --system ${name}) or set mail_owner`);
    }
    user = systemUser(name);
    if (user) log(config, '', `created the system account ${name} (uid ${user.uid}) for mail_owner`);
  }
  if (!user) throw new MailError('config', `mail_owner account "${name}" cannot be found; see mailtk.conf(5)`);
  if (user.uid === 0) throw new MailError('config', `mail_owner "${name}" is root: it must be an unprivileged account; see mailtk.conf(5)`);
  return user;
}

/**
 * The queue directory and everything mailtk keeps in it belong to mail_owner.
 * What users dropped (the maildrop, and what pickup claimed or quarantined
 * from it) is never walked: root changes nothing a user made. Nor a file with
 * a second link, which could be anyone's.
 */
export function giveQueueTo(config: Config, owner: User): void {
  ensureQueueDirs(config);
  mustReach(config.queueDir, 'queue_dir', `mail_owner ${owner.name}`, (st) => searchable(st, owner.uid, owner.gid));
  // Given already (every start but the first): nothing to walk.
  if (fs.statSync(config.queueDir).uid === owner.uid && fs.statSync(config.maildropDir).uid === owner.uid) return;
  const users = new Set([config.maildropDir, path.join(config.queueDir, 'corrupt'), path.join(config.queueDir, 'pickup')]);
  const walk = (dir: string): void => {
    chownIfNeeded(dir, owner);
    if (users.has(dir)) return;
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) chownIfNeeded(p, owner);
    }
  };
  try {
    walk(config.queueDir);
  } catch (e) {
    throw new MailError('queue-write', `cannot give the queue to mail_owner ${owner.name}: ${(e as Error).message}`, { file: config.queueDir, cause: e });
  }
}

function searchable(st: fs.Stats, uid: number, gid: number): boolean {
  return (st.mode & 0o001) !== 0 || (st.uid === uid && (st.mode & 0o100) !== 0) || (st.gid === gid && (st.mode & 0o010) !== 0);
}

/** The spool is root's (2775 root:mail): made by root, since the agents that deliver into it cannot. */
export function prepareSpool(config: Config, ensureSpoolDir: (config: Config) => void): void {
  ensureSpoolDir(config);
  mustReach(config.mailSpoolDir, 'mail_spool_dir', 'the users', (st) => (st.mode & 0o001) !== 0);
}

/** Every directory above `dir` must let `who` through, or nothing below works: say which one. */
function mustReach(dir: string, key: string, who: string, ok: (st: fs.Stats) => boolean): void {
  for (let d = path.dirname(path.resolve(dir)); ; d = path.dirname(d)) {
    const st = fs.statSync(d);
    if (!ok(st)) {
      throw new MailError('config', `${key} ${dir}: ${who} cannot pass through ${d} (mode ${(st.mode & 0o7777).toString(8)}, owner uid ${st.uid}); chmod o+x it or choose another ${key}`);
    }
    if (d === path.dirname(d)) return;
  }
}

function chownIfNeeded(p: string, owner: User): void {
  const st = fs.lstatSync(p);
  if (st.isFile() && st.nlink !== 1) return;
  if (st.uid !== owner.uid || st.gid !== owner.gid) fs.lchownSync(p, owner.uid, owner.gid);
}

/**
 * The files mail_owner's listeners read but that are root's: the password
 * file, the APOP secrets and the TLS key become root:mail_owner 0640, as
 * Dovecot's auth files are readable by its auth process and no one else.
 */
export function shareSecrets(config: Config, owner: User): void {
  for (const file of [config.passwdFile, config.apopSecretsFile, config.tlsKeyFile]) {
    let fd: number;
    try {
      // Changed through the descriptor of the file checked, never through a link.
      fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    } catch {
      continue;
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== 0 || st.nlink !== 1) continue;
      if (st.gid !== owner.gid) fs.fchownSync(fd, 0, owner.gid);
      if ((st.mode & 0o777) !== 0o640) fs.fchmodSync(fd, 0o640);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** spawn() options that start a child as `user` (libuv drops supplementary groups). */
export function spawnIdentity(user: User): { uid: number; gid: number } {
  return { uid: user.uid, gid: user.gid };
}

/**
 * Act as mail_owner (effective ids only) for the queue work of a root
 * `sendmail` submission, so that the files it writes are mail_owner's;
 * returns the function that gives root back (needed to start deliveries).
 */
export function actAsMailOwner(owner: User): () => void {
  process.setegid!(owner.gid);
  process.seteuid!(owner.uid);
  return () => {
    process.seteuid!(0);
    process.setegid!(0);
  };
}
