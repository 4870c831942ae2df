// Alias expansion: one envelope recipient to the final Destinations that
// src/deliver acts on (types.ts). Reads the alias table, and :include: files
// and ~/.forward files through the caller's ListReader (list-file.ts), which
// reads each as the identity named here; never delivers. Guarantees: a program
// or file never runs as root (root-owned sources run as default_privs, as
// Postfix does); what a user's .forward leads to (its :include: files, theirs,
// root's) is read as that user and its programs and files run as that user,
// never as another include file's owner; an alias reached twice on one path is
// a loop (5.4.6), except a list naming itself, which means "this user's own
// mailbox" (sendmail's self-reference); nesting stops at MAX_DEPTH (sendmail's
// MaxAliasRecursion); destinations are unique by key; owner-LIST, when
// defined, receives the errors of LIST's members. A group- or world-writable
// :include: of the system alias file yields addresses only: no programs, files
// or further :include: files.

import path from 'node:path';
import { type Config, isLocalDomain } from '../config/index.ts';
import { type User, lookupUid, lookupUser, systemUser } from '../config/users.ts';
import { log } from '../log/index.ts';
import { splitAddress } from '../message/address.ts';
import { type DeliveryStatus, FAILURES } from '../message/status.ts';
import type { ListFile, ListReader } from './list-file.ts';
import { classifyMember } from './member.ts';
import type { AliasTable } from './table.ts';
import type { Destination } from './types.ts';
import { type VirtualTarget, isVirtualDomain, virtualUser } from '../virtual/tables.ts';
import { virtualAlias } from './virtual-table.ts';

export interface ExpandContext {
  config: Config;
  aliases: AliasTable;
  localDomains: Set<string>;
  /** Reads ~/.forward and :include: files as the right user. */
  lists: ListReader;
}

/** sendmail's MaxAliasRecursion. */
export const MAX_DEPTH = 10;

/** Who programs and files run as at some point of the expansion, or why none may. */
type RunAs = User | DeliveryStatus;

/** Who reads the :include: files named at some point: this process for the system's lists, a user, or why none may be read. */
type Reader = 'system' | User | DeliveryStatus;

interface Frame {
  depth: number;
  /** What this expansion is inside of: "name" for aliases and .forward users, "include:/path". */
  path: readonly string[];
  /** The local name being expanded (an alias or a .forward's user): naming it means its mailbox. */
  self: string | undefined;
  runAs: () => RunAs;
  reader: Reader;
  /** Members come from a group- or world-writable :include: file. */
  unsafe: boolean;
  errorsTo: string | undefined;
}

export function expandRecipient(ctx: ExpandContext, address: string): Promise<Destination[]> {
  return new Expansion(ctx, address).run();
}

class Expansion {
  private readonly out = new Map<string, Destination>();
  private defaultUser: RunAs | undefined;
  /** The recipient without angle brackets or surrounding white space. */
  private readonly recipient: string;

  constructor(
    private readonly ctx: ExpandContext,
    private readonly original: string,
  ) {
    this.recipient = original.trim().replace(/^<(.*)>$/, '$1');
  }

  async run(): Promise<Destination[]> {
    const top: Frame = { depth: 0, path: [], self: undefined, runAs: () => this.aliasFileUser(), reader: 'system', unsafe: false, errorsTo: undefined };
    const address = this.recipient;
    const local = splitAddress(address).local;
    if (address === '') this.fail(address, top, status('bad-address', 'empty recipient address'));
    else if (local.startsWith('|')) this.fail(address, top, status('not-allowed', 'Cannot mail directly to programs'));
    else if (local.startsWith('/')) this.fail(address, top, status('not-allowed', 'Cannot mail directly to files'));
    else await this.address(address, top);
    return [...this.out.values()];
  }

  private add(d: Destination): void {
    if (!this.out.has(d.key)) this.out.set(d.key, d);
  }

  private fail(address: string, frame: Frame, s: DeliveryStatus): void {
    this.add({ kind: 'error', key: `error:${address}`, original: this.original, address, status: s, ...errorsTo(frame) });
  }

  /** An address: remote, or a local name to alias, forward or deliver. */
  private async address(address: string, frame: Frame): Promise<void> {
    const { local, domain } = splitAddress(address);
    if (domain && isVirtualDomain(this.ctx.config, domain)) return this.virtual(unquote(local).toLowerCase(), domain.toLowerCase(), frame);
    if (domain && !isLocalDomain(this.ctx.localDomains, domain)) {
      const remote = `${local}@${domain}`;
      this.add({ kind: 'remote', key: `remote:${remote}`, original: this.original, address: remote, ...errorsTo(frame) });
      return;
    }
    await this.localName(unquote(local).toLowerCase(), frame, false);
  }

  /** A local name: alias first (unless `\name`), then the user's .forward, then the mailbox. */
  private async localName(name: string, frame: Frame, noAlias: boolean): Promise<void> {
    if (!noAlias && name === frame.self) return this.mailbox(name, frame);
    if (!noAlias && frame.path.includes(name)) {
      return this.fail(this.named(name, frame), frame, status('alias-loop', `Alias loop: ${[...frame.path, name].join(' -> ')}`));
    }
    if (frame.depth > MAX_DEPTH) return this.fail(this.named(name, frame), frame, tooDeep(frame));
    const members = noAlias ? undefined : this.ctx.aliases.lookup(name);
    if (members) return this.alias(name, members, frame);
    const user = lookupUser(this.ctx.config, name);
    // RFC 5321 4.5.1: every domain accepts mail for postmaster. With no alias and no
    // account of that name, it is "postmaster: root", the alias every MTA ships.
    if (!user && name === 'postmaster' && !noAlias) return this.alias(name, ['root'], frame);
    if (!user) return this.fail(this.named(name, frame), frame, status('user-unknown'));
    if (!noAlias && (await this.forward(user, frame))) return;
    this.deliverLocal(user, frame);
  }

  /** `bob: bob, ...` and a .forward naming its own user: that user's mailbox, nothing more. */
  private mailbox(name: string, frame: Frame): void {
    const user = lookupUser(this.ctx.config, name);
    if (user) this.deliverLocal(user, frame);
    else this.fail(this.named(name, frame), frame, status('user-unknown'));
  }

  /** How a failing local name is reported: the recipient as given, or name@host inside an expansion. */
  private named(name: string, frame: Frame): string {
    return frame.depth === 0 ? this.recipient : `${name}@${this.ctx.config.hostname}`;
  }

  private deliverLocal(user: User, frame: Frame): void {
    const address = `${user.name}@${this.ctx.config.hostname}`;
    this.add({ kind: 'local', key: `local:${user.name}`, original: this.original, user, address, ...errorsTo(frame) });
  }

  /**
   * An address of a virtual domain (src/virtual): its virtusertable entry,
   * else its virtual user's mailbox, else the domain's catch-all (@domain),
   * else unknown. Postmaster, when none of these names it, is the local one.
   */
  private async virtual(local: string, domain: string, frame: Frame): Promise<void> {
    const address = `${local}@${domain}`;
    const config = this.ctx.config;
    const user = virtualUser(config, address);
    if (address === frame.self) return user ? this.deliverVirtual(user, frame) : this.fail(address, frame, status('user-unknown'));
    if (frame.path.includes(address)) return this.fail(address, frame, status('alias-loop', `Alias loop: ${[...frame.path, address].join(' -> ')}`));
    if (frame.depth > MAX_DEPTH) return this.fail(address, frame, tooDeep(frame));
    const own = virtualAlias(config, address);
    if (own) return this.virtualEntry(address, own, frame);
    if (user) return this.deliverVirtual(user, frame);
    const all = virtualAlias(config, `@${domain}`);
    if (all) return this.virtualEntry(address, all, frame);
    if (local === 'postmaster') return this.localName(local, frame, false);
    this.fail(address, frame, status('user-unknown'));
  }

  /** A virtusertable entry: its error, or its targets (addresses only: no programs, files or :include: files). */
  private async virtualEntry(address: string, entry: VirtualTarget, frame: Frame): Promise<void> {
    if (entry.kind === 'error') return this.fail(address, frame, { status: entry.status, text: entry.text });
    const inner: Frame = { depth: frame.depth + 1, path: [...frame.path, address], self: address, runAs: () => this.aliasFileUser(), reader: 'system', unsafe: true, errorsTo: frame.errorsTo };
    for (const m of entry.members) await this.member(m, inner);
  }

  private deliverVirtual(user: User, frame: Frame): void {
    this.add({ kind: 'local', key: `local:${user.name}`, original: this.original, user, address: user.name, ...errorsTo(frame) });
  }

  private async alias(name: string, members: string[], frame: Frame): Promise<void> {
    const owner = this.ctx.aliases.lookup(`owner-${name}`) ? `owner-${name}@${this.ctx.config.hostname}` : frame.errorsTo;
    const inner: Frame = {
      depth: frame.depth + 1,
      path: [...frame.path, name],
      self: name,
      runAs: () => this.aliasFileUser(),
      reader: 'system',
      unsafe: false,
      errorsTo: owner,
    };
    for (const m of members) await this.member(m, inner);
  }

  /** True when the user's .forward took over delivery. */
  private async forward(user: User, frame: Frame): Promise<boolean> {
    for (const file of forwardFiles(this.ctx.config.forwardPath, user)) {
      const list = await this.ctx.lists.forward(user, file);
      if (list.kind === 'absent') continue;
      if (list.kind === 'ignored') {
        log(this.ctx.config, '', `forward ${list.why}; ignored`);
        continue;
      }
      if (list.kind === 'failed') {
        this.fail(user.name, frame, { status: FAILURES['config'].status, text: `cannot read ${list.why}` });
        return true;
      }
      this.logProblems(list);
      if (list.members.length === 0) return false; // an empty .forward delivers here (sendmail V8)
      const runAs = () => this.notRoot(user);
      const inner: Frame = { depth: frame.depth + 1, path: [...frame.path, user.name], self: user.name, runAs, reader: user, unsafe: false, errorsTo: frame.errorsTo };
      for (const m of list.members) await this.member(m, inner);
      return true;
    }
    return false;
  }

  private async member(member: string, frame: Frame): Promise<void> {
    const m = classifyMember(member);
    switch (m.kind) {
      case 'program':
        return this.program(m.command, frame);
      case 'file':
        return this.file(m.path, frame);
      case 'include':
        return this.include(m.path, frame);
      case 'user':
        return this.backslashed(m.name, frame);
      case 'address':
        return this.address(m.address, frame);
    }
  }

  /** `\user`: that local user's mailbox, with no aliasing and no .forward. */
  private async backslashed(name: string, frame: Frame): Promise<void> {
    const { local, domain } = splitAddress(name);
    if (domain && !isLocalDomain(this.ctx.localDomains, domain)) return this.address(name, frame);
    await this.localName(unquote(local).toLowerCase(), frame, true);
  }

  private program(command: string, frame: Frame): void {
    if (frame.unsafe) return this.fail(`|${command}`, frame, status('not-allowed', 'Address is unsafe for mailing to programs'));
    const runAs = frame.runAs();
    if (!('uid' in runAs)) return this.fail(`|${command}`, frame, runAs);
    this.add({ kind: 'program', key: `prog:${runAs.name}:${command}`, original: this.original, command, runAs, ...errorsTo(frame) });
  }

  private file(file: string, frame: Frame): void {
    if (frame.unsafe) return this.fail(file, frame, status('not-allowed', 'Address is unsafe for mailing to files'));
    const runAs = frame.runAs();
    if (!('uid' in runAs)) return this.fail(file, frame, runAs);
    this.add({ kind: 'file', key: `file:${path.normalize(file)}`, original: this.original, path: path.normalize(file), runAs, ...errorsTo(frame) });
  }

  private async include(file: string, frame: Frame): Promise<void> {
    const here = `include:${file}`;
    const named = `:include:${file}`;
    if (frame.path.includes(here)) return this.fail(named, frame, status('alias-loop', `Alias loop: ${[...frame.path, here].join(' -> ')}`));
    if (frame.depth > MAX_DEPTH) return this.fail(named, frame, tooDeep(frame));
    if (frame.unsafe) return this.fail(named, frame, status('not-allowed', 'Address is unsafe for :include: files'));
    if (frame.reader !== 'system' && !('uid' in frame.reader)) return this.fail(named, frame, frame.reader);
    const as = frame.reader === 'system' ? undefined : frame.reader;
    const list = await this.ctx.lists.include(file, as);
    if (list.kind !== 'members') {
      if (list.kind === 'ignored') log(this.ctx.config, '', `include ${list.why}; ignored`);
      const why = list.kind === 'failed' ? list.why : list.kind === 'ignored' ? `cannot use :include: file ${list.why}` : file;
      return this.fail(named, frame, { status: FAILURES['config'].status, text: why });
    }
    this.logProblems(list);
    const inner: Frame = { depth: frame.depth + 1, path: [...frame.path, here], self: undefined, ...this.includeRights(file, list, as), errorsTo: frame.errorsTo };
    for (const m of list.members) await this.member(m, inner);
  }

  /**
   * Who runs an include file's programs and reads the files it includes: the
   * user it was read for, whoever owns it (their .forward led here); for the
   * system's lists, its owner (root's: default_privs and this process).
   */
  private includeRights(file: string, list: ListFile & { kind: 'members' }, as: User | undefined): Pick<Frame, 'runAs' | 'reader' | 'unsafe'> {
    if (as) return { runAs: () => this.notRoot(as), reader: as, unsafe: list.unsafe };
    const owner = list.ownerUid;
    if (owner === 0) return { runAs: () => this.defaultPrivs(), reader: 'system', unsafe: list.unsafe };
    const user = lookupUid(this.ctx.config, owner);
    const reader = user ?? status('config', `${file}: owned by uid ${owner}, which is no user, so the :include: files it names cannot be read`);
    return { runAs: () => this.userOf(owner), reader, unsafe: list.unsafe };
  }

  private logProblems(list: ListFile): void {
    if (list.kind === 'members') for (const p of list.problems) log(this.ctx.config, '', `${p} (member ignored)`);
  }

  /** The alias file's owner, or default_privs when that is root or unknown. */
  private aliasFileUser(): RunAs {
    return this.userOf(this.ctx.aliases.ownerUid ?? 0);
  }

  private notRoot(user: User): RunAs {
    return user.uid === 0 ? this.defaultPrivs() : user;
  }

  private userOf(uid: number): RunAs {
    if (uid === 0) return this.defaultPrivs();
    const user = lookupUid(this.ctx.config, uid);
    return user && user.uid !== 0 ? user : this.defaultPrivs();
  }

  /** default_privs (sendmail's DefaultUser, Postfix's default_privs): never root. */
  private defaultPrivs(): RunAs {
    if (this.defaultUser) return this.defaultUser;
    const name = this.ctx.config.defaultPrivs;
    const user = systemUser(name) ?? lookupUser(this.ctx.config, name);
    this.defaultUser =
      user && user.uid !== 0
        ? user
        : { status: FAILURES['config'].status, text: `default_privs account "${name}" ${user ? 'is root' : 'does not exist'}; see mailtk.conf(5)` };
    return this.defaultUser;
  }
}

function status(failure: keyof typeof FAILURES, text?: string): DeliveryStatus {
  return { status: FAILURES[failure].status, text: text ?? FAILURES[failure].text };
}

/** sendmail's words for it. */
function tooDeep(frame: Frame): DeliveryStatus {
  return status('alias-loop', `aliasing/forwarding loop broken (${frame.depth} aliases deep; ${MAX_DEPTH} max)`);
}

function errorsTo(frame: Frame): { errorsTo?: string } {
  return frame.errorsTo ? { errorsTo: frame.errorsTo } : {};
}

function unquote(local: string): string {
  return local.length >= 2 && local.startsWith('"') && local.endsWith('"') ? local.slice(1, -1).replace(/\\(.)/g, '$1') : local;
}

/** forward_path: colon-separated candidates, $HOME and $USER replaced; the first that exists wins. */
export function forwardFiles(forwardPath: string, user: User): string[] {
  if (!user.home) return [];
  return forwardPath
    .split(':')
    .map((p) => p.trim().replace(/\$\{?HOME\}?/g, user.home).replace(/\$\{?USER\}?/g, user.name))
    .filter((p) => p !== '' && path.isAbsolute(p));
}
