// Reading the member lists of ~/.forward and :include: files, with sendmail's
// safety rules, as the identity that may read them. A list file holds one
// member per line or several separated by commas, with `#` comment lines: the
// right-hand side syntax of aliases(5). readListFile() is the one place that
// opens such a file and applies the rules; a ListReader decides which process
// calls it: inProcessLists here, or (when the queue runner is root) a process
// running as the user, which calls readListFile() too.
//
// The rules (sendmail's): a file named by a user (their .forward, and what it
// or the user's own include files :include:) counts only when it is a regular
// file owned by that user or root and not writable by group or others, and a
// .forward only with one link. An :include: named in the system alias file
// may have any owner; when group or others can write it, it may name
// addresses but not programs or files (sendmail's "unsafe" include).
//
// Known limit: when this process is root and reads for a user, the user's
// permission is worked out from the mode bits of the file and of the
// directories above it with the user's primary group only; a file the user
// could read only through a supplementary group counts as unreadable.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { User } from '../config/users.ts';
import { parseMembers } from './parse.ts';

export type ListKind = 'forward' | 'include';

/** What reading a list file gave; plain data, so it may cross a process boundary. */
export type ListFile =
  | { kind: 'members'; members: string[]; ownerUid: number; unsafe: boolean; problems: string[] }
  | { kind: 'absent' }
  /** Refused by a rule; `why` names the file and the rule, never its content. */
  | { kind: 'ignored'; why: string }
  | { kind: 'failed'; why: string; temporary: boolean };

/** Reads ~/.forward and :include: files with the right identity. */
export interface ListReader {
  /** `user`'s forward file (forward_path expanded), read as `user`. */
  forward(user: User, file: string): Promise<ListFile>;
  /** An :include: file, read as `as` (the owner of the file that named it), or as this process for the system alias file. */
  include(file: string, as: User | undefined): Promise<ListFile>;
}

/** Reads in this process, whoever it runs as (when not root, for SMTP RCPT checks, and for -bv). */
export const inProcessLists: ListReader = {
  forward: async (user, file) => readListFile(file, 'forward', user),
  include: async (file, as) => readListFile(file, 'include', as),
};

const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW;
const READ = 4;
const SEARCH = 1;

/**
 * One list file for `expectedOwner` (the user who named it; undefined for an
 * :include: of the system alias file, which may have any owner). Nothing of
 * the file's text is read before every rule has passed.
 */
export function readListFile(file: string, kind: ListKind, expectedOwner: User | undefined): ListFile {
  assert.ok(kind === 'include' || expectedOwner, `a forward file is read for its user (${file})`);
  const emulate = mustCheckFor(expectedOwner);
  if (emulate) {
    const dir = unsearchableDir(emulate, file);
    if (dir) return { kind: 'ignored', why: `${file}: permission denied to ${emulate.name} (directory ${dir})` };
  }
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    return openFailure(file, kind, e as NodeJS.ErrnoException);
  }
  try {
    const st = fs.fstatSync(fd);
    const refusal = refusalOf(file, kind, expectedOwner, st, emulate);
    if (refusal) return { kind: 'ignored', why: refusal };
    const text = fs.readFileSync(fd, 'utf8');
    return { ...parseList(text, file), ownerUid: st.uid, unsafe: (st.mode & 0o022) !== 0 };
  } catch (e) {
    return { kind: 'failed', why: `${file}: ${(e as Error).message}`, temporary: true };
  } finally {
    fs.closeSync(fd);
  }
}

/** Why the opened file may not be used (file and rule, for the log), or undefined. */
function refusalOf(file: string, kind: ListKind, owner: User | undefined, st: fs.Stats, emulate: User | undefined): string | undefined {
  // First, as the kernel would have: nothing else about a file its reader may not read.
  if (emulate && !permits(emulate, st, READ)) return `${file}: permission denied to ${emulate.name}`;
  if (!st.isFile()) return `${file}: not a regular file`;
  if (!owner) return undefined;
  if (st.uid !== owner.uid && st.uid !== 0) {
    const whose = kind === 'forward' ? `its user ${owner.name}` : `${owner.name} (whose file named it)`;
    return `${file}: owned by uid ${st.uid}, not by ${whose} or root`;
  }
  if ((st.mode & 0o022) !== 0) return `${file}: group or world writable`;
  if (kind === 'forward' && st.nlink !== 1) return `${file}: has ${st.nlink} links`;
  return undefined;
}

function openFailure(file: string, kind: ListKind, e: NodeJS.ErrnoException): ListFile {
  // A missing .forward is the usual case; a missing :include: file waits for its admin.
  // Unreadable files are refused by rule; anything else (an NFS home away, EIO) may pass.
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') {
    return kind === 'forward' ? { kind: 'absent' } : { kind: 'failed', why: `cannot open :include: file ${file}: no such file`, temporary: true };
  }
  if (e.code === 'EACCES' || e.code === 'EPERM') return { kind: 'ignored', why: `${file}: permission denied` };
  if (e.code === 'ELOOP') return { kind: 'ignored', why: `${file}: a symbolic link` };
  return { kind: 'failed', why: `${file}: ${e.message}`, temporary: true };
}

/** The user whose permissions this process must check itself: it is root, reading for someone else. */
function mustCheckFor(owner: User | undefined): User | undefined {
  return owner && owner.uid !== 0 && process.geteuid?.() === 0 ? owner : undefined;
}

/** The mode bits that apply to `user` (owner, primary group, others) grant `want`. */
function permits(user: User, st: { uid: number; gid: number; mode: number }, want: number): boolean {
  const shift = st.uid === user.uid ? 6 : st.gid === user.gid ? 3 : 0;
  return ((st.mode >> shift) & want) === want;
}

/** The first directory on the way to `file` that `user` may not search, if any. */
function unsearchableDir(user: User, file: string): string | undefined {
  let dir: string;
  try {
    dir = fs.realpathSync(path.dirname(path.resolve(file)));
  } catch {
    dir = path.dirname(path.resolve(file)); // the open will say what is missing
  }
  const dirs: string[] = [];
  for (let d = dir; ; d = path.dirname(d)) {
    dirs.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of dirs) {
    let st: fs.Stats;
    try {
      st = fs.statSync(d);
    } catch {
      return undefined;
    }
    if (!permits(user, st, SEARCH)) return d;
  }
  return undefined;
}

/** Members of a list file; bad members are left out and described as file:line problems. */
export function parseList(text: string, file: string): { kind: 'members'; members: string[]; problems: string[] } {
  const members: string[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const parsed = parseMembers(line);
    members.push(...parsed.members);
    for (const e of parsed.errors) problems.push(`${file}:${i + 1}: ${e.message}`);
  });
  return { kind: 'members', members, problems };
}
