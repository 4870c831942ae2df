// Opening a mailbox for append without being tricked, after Postfix's
// safe_open() and mail.local: an existing file must be a regular file with one
// link, not a symlink, owned by whom the policy says; it is opened with
// O_APPEND|O_NOFOLLOW|O_NONBLOCK (a FIFO swapped in cannot hang us) and the
// open file's dev/ino must match what lstat saw. A missing file is created
// with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600. Synchronous on purpose: the checks
// and the open sit as close together as possible, and /file delivery runs
// them under a switched euid, where nothing may await.
//
// Paths beneath a trusted directory (a person's ~/mail, the index tree): every
// component below the anchor is opened with O_DIRECTORY|O_NOFOLLOW, one at a
// time, each through the descriptor of the one before (/proc/self/fd/N/NAME,
// Node's stand-in for openat(2)), so a symlink anywhere on the way is refused
// and swapping a checked directory for a symlink afterwards changes nothing.
// Known limit: without /proc the same walk goes by path after the same checks,
// which leaves a window between check and use; the dotlock beside an mbox is
// still made by path.

import fs from 'node:fs';
import path from 'node:path';
import { MailError } from '../message/status.ts';

const { O_RDONLY, O_WRONLY, O_APPEND, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;
const PROC_FD = '/proc/self/fd';
const MAILBOX_MODE = 0o600;
const ANY_EXEC = 0o111;

export interface OpenPolicy {
  /** An existing mailbox must be owned by this uid (set when we run as root). */
  ownerUid?: number;
  /** Give a new mailbox this owner (root only); otherwise it belongs to whoever creates it. */
  chownTo?: { uid: number; gid: number };
  /** Refuse regular files with an execute bit, as Postfix does for /file targets. */
  refuseExecutable: boolean;
  /** What an unsafe file is reported as. */
  unsafe: 'mailbox-unsafe' | 'file-denied';
  /** Every directory below this one on the way to the file is opened without following a symlink. */
  beneath?: string;
}

export interface OpenMailbox {
  fd: number;
  /** Size when opened; a failed append is cut back to it. */
  size: number;
  created: boolean;
}

/** Open or create `file` for append. Throws MailError for unsafe files, system errors as they come. */
export function openMailbox(file: string, policy: OpenPolicy): OpenMailbox {
  if (!policy.beneath) return openMailboxAt(file, file, policy);
  const dir = openDirBeneath(path.dirname(file), policy.beneath);
  if (!dir) throw Object.assign(new Error(`${path.dirname(file)}: no such directory`), { code: 'ENOENT' });
  try {
    return openMailboxAt(dir.at(path.basename(file)), file, policy);
  } finally {
    dir.close();
  }
}

/** openMailbox with the system calls made on `at` (the file itself, or its name through a held directory). */
function openMailboxAt(at: string, file: string, policy: OpenPolicy): OpenMailbox {
  // Two rounds: someone may create or remove the file between our lstat and open.
  for (let round = 0; round < 2; round++) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(at);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const made = createExclusive(at, file, policy);
      if (made) return made;
      continue;
    }
    checkExisting(file, st, policy);
    return openExisting(at, file, st, policy);
  }
  throw new MailError(policy.unsafe, 'mailbox appeared and vanished while being opened', { file });
}

function unsafe(policy: OpenPolicy, file: string, why: string): MailError {
  return new MailError(policy.unsafe, `refusing to deliver: ${why}`, { file });
}

/** The checks on a file's lstat (before open) or fstat (after). */
function checkExisting(file: string, st: fs.Stats, policy: OpenPolicy): void {
  if (st.isSymbolicLink()) throw unsafe(policy, file, 'mailbox is a symbolic link');
  if (!st.isFile()) throw unsafe(policy, file, 'mailbox is not a regular file');
  if (st.nlink !== 1) throw unsafe(policy, file, `mailbox has ${st.nlink} hard links`);
  if (policy.ownerUid !== undefined && st.uid !== policy.ownerUid) {
    throw unsafe(policy, file, `mailbox is owned by uid ${st.uid}, not ${policy.ownerUid}`);
  }
  if (policy.refuseExecutable && (st.mode & ANY_EXEC) !== 0) throw unsafe(policy, file, 'file is executable');
}

function openExisting(at: string, file: string, before: fs.Stats, policy: OpenPolicy): OpenMailbox {
  let fd: number;
  try {
    fd = fs.openSync(at, O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    // ELOOP: it became a symlink after our lstat.
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw unsafe(policy, file, 'mailbox is a symbolic link');
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (st.dev !== before.dev || st.ino !== before.ino) {
      throw unsafe(policy, file, 'mailbox was replaced while being opened');
    }
    checkExisting(file, st, policy);
    return { fd, size: st.size, created: false };
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Create a new mailbox; undefined when someone else created it first. */
function createExclusive(at: string, file: string, policy: OpenPolicy): OpenMailbox | undefined {
  let fd: number;
  try {
    fd = fs.openSync(at, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_NOFOLLOW, MAILBOX_MODE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    throw e;
  }
  try {
    if (policy.chownTo) fs.fchownSync(fd, policy.chownTo.uid, policy.chownTo.gid);
    fs.fchmodSync(fd, MAILBOX_MODE); // the umask may have taken bits away; never add any beyond 0600
    return { fd, size: 0, created: true };
  } catch (e) {
    // An empty mailbox owned by the wrong user must not stay behind; we hold the lock.
    fs.closeSync(fd);
    fs.rmSync(at, { force: true });
    throw e;
  }
}

// ------------------------------------------------------------ paths beneath a trusted directory

/** A component of a path that is not followed: a symbolic link, or not a directory where one must be. */
export class UnsafePath extends MailError {
  constructor(
    readonly at: string,
    readonly why: 'symlink' | 'not-directory',
  ) {
    super('mailbox-unsafe', `${at} ${why === 'symlink' ? 'is a symbolic link; refusing to follow it' : 'is not a directory'}`);
    this.name = 'UnsafePath';
  }
}

/** Whether /proc/self/fd/N/NAME reaches NAME inside descriptor N here (Linux with /proc). */
let procFd: boolean | undefined;

function probeProcFd(fd: number): boolean {
  if (procFd === undefined) {
    try {
      const a = fs.fstatSync(fd);
      const b = fs.statSync(`${PROC_FD}/${fd}`);
      procFd = a.dev === b.dev && a.ino === b.ino;
    } catch {
      procFd = false;
    }
  }
  return procFd;
}

function inside(fd: number, dir: string, name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/')) throw new Error(`not a plain name: ${JSON.stringify(name)}`);
  return procFd ? `${PROC_FD}/${fd}/${name}` : path.join(dir, name);
}

/** A directory held open; names in it resolve through the descriptor, not the directory's path. */
export class HeldDir {
  constructor(
    readonly dir: string,
    private fd: number,
    readonly stat: fs.Stats,
  ) {}

  /** The path that reaches `name` (one component) inside this directory. */
  at(name: string): string {
    return inside(this.fd, this.dir, name);
  }

  /** The directory `name` inside this one, opened as openDirBeneath does; undefined when missing and not made. */
  sub(name: string, make?: MakeDirs): HeldDir | undefined {
    const fd = openChild(this.fd, this.dir, name, make);
    return fd === undefined ? undefined : new HeldDir(path.join(this.dir, name), fd, fs.fstatSync(fd));
  }

  /** The path that reaches this directory itself (for readdir). */
  get self(): string {
    return procFd ? `${PROC_FD}/${this.fd}` : this.dir;
  }

  close(): void {
    if (this.fd >= 0) fs.closeSync(this.fd);
    this.fd = -1;
  }
}

export interface MakeDirs {
  /** chown new directories to this owner (when we are root). */
  owner?: { uid: number; gid: number };
}

/**
 * Open `dir`, which lies at or below `anchor`: the anchor is trusted (opened
 * as it is), every component below it is opened with O_NOFOLLOW|O_DIRECTORY
 * through the one before. Undefined when a component is missing, unless
 * `make` is given: then missing directories are made (0700). Throws
 * UnsafePath for a symlink or a non-directory on the way.
 */
export function openDirBeneath(dir: string, anchor: string, make?: MakeDirs): HeldDir | undefined {
  const rel = path.relative(anchor, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new Error(`${dir} is not inside ${anchor}`);
  let fd: number;
  try {
    fd = fs.openSync(anchor, O_RDONLY | O_DIRECTORY);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && !make) return undefined;
    throw e;
  }
  probeProcFd(fd);
  let at = anchor;
  try {
    for (const name of rel ? rel.split(path.sep) : []) {
      const child = openChild(fd, at, name, make);
      if (child === undefined) return undefined;
      fs.closeSync(fd);
      fd = child;
      at = path.join(at, name);
    }
    const held = new HeldDir(path.resolve(dir), fd, fs.fstatSync(fd));
    fd = -1;
    return held;
  } finally {
    if (fd >= 0) fs.closeSync(fd);
  }
}

function openChild(parent: number, parentPath: string, name: string, make: MakeDirs | undefined): number | undefined {
  const at = path.join(parentPath, name);
  const via = inside(parent, parentPath, name);
  for (let round = 0; ; round++) {
    try {
      return fs.openSync(via, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Linux answers ENOTDIR for O_DIRECTORY|O_NOFOLLOW on a symlink, ELOOP elsewhere.
      if (code === 'ELOOP') throw new UnsafePath(at, 'symlink');
      if (code === 'ENOTDIR') throw new UnsafePath(at, isSymlink(via) ? 'symlink' : 'not-directory');
      if (code !== 'ENOENT') throw e;
      if (!make) return undefined;
      if (round > 2) throw e;
    }
    try {
      fs.mkdirSync(via, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') continue;
      throw e;
    }
    const fd = fs.openSync(via, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (make.owner && process.geteuid?.() === 0) fs.fchownSync(fd, make.owner.uid, make.owner.gid);
    return fd;
  }
}

function isSymlink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * lstat `file` with every directory between `anchor` and it checked as
 * openDirBeneath does; undefined when it or a directory on the way is
 * missing. A symlink at `file` itself is refused too (UnsafePath).
 */
export function lstatBeneath(file: string, anchor: string): fs.Stats | undefined {
  const dir = openDirBeneath(path.dirname(file), anchor);
  if (!dir) return undefined;
  try {
    const st = fs.lstatSync(dir.at(path.basename(file)));
    if (st.isSymbolicLink()) throw new UnsafePath(file, 'symlink');
    return st;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  } finally {
    dir.close();
  }
}

/** The deepest existing directory at or above `dir`'s parent: the anchor when the caller names none. */
export function existingParent(dir: string): string {
  let d = path.dirname(path.resolve(dir));
  for (;;) {
    try {
      fs.lstatSync(d);
      return d;
    } catch {
      // missing: one level up
    }
    const up = path.dirname(d);
    if (up === d) return d;
    d = up;
  }
}

/** The uid that must own files and directories we keep for `owner`: theirs when we are root, else ours. */
export function expectedOwner(owner: { uid: number } | undefined): number {
  const euid = process.geteuid?.() ?? 0;
  return euid === 0 && owner ? owner.uid : euid;
}

/**
 * Why `st` (a directory we are about to create files in) is not one only its
 * owner can write, or undefined when it is. `owners` are the acceptable uids.
 */
export function notPrivateDir(st: fs.Stats, owners: number[]): string | undefined {
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a directory';
  if (!owners.includes(st.uid)) return `it is owned by uid ${st.uid}, not ${owners.join(' or ')}`;
  if ((st.mode & 0o022) !== 0) return `it is writable by group or others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  return undefined;
}
