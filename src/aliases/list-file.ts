// Reading the member lists of ~/.forward and :include: files, with sendmail's
// safety rules. A list file holds one member per line or several separated
// by commas, with `#` comment lines: the right-hand side syntax of aliases(5).
// A .forward counts only when it is a regular file owned by its user or by
// root and not writable by group or others; otherwise it is ignored (and
// logged). An :include: file that group or others can write may still name
// addresses, but not programs or files (sendmail's "unsafe" include).

import fs from 'node:fs';
import { parseMembers } from './parse.ts';

export type ListFile =
  | { kind: 'members'; members: string[]; ownerUid: number; unsafe: boolean; problems: string[] }
  | { kind: 'absent' }
  | { kind: 'ignored'; why: string }
  | { kind: 'failed'; why: string; temporary: boolean };

/** A user's .forward: absent, ignored (unsafe, logged by the caller), or its members. */
export function readForwardFile(file: string, userUid: number): ListFile {
  const read = readList(file);
  if (read.kind !== 'members') return read;
  if (read.ownerUid !== userUid && read.ownerUid !== 0) {
    return { kind: 'ignored', why: `${file}: owned by uid ${read.ownerUid}, not by its user or root` };
  }
  if (read.unsafe) return { kind: 'ignored', why: `${file}: group or world writable forward file, ignored` };
  return read;
}

/** An :include: file: its members, or why it could not be read. */
export function readIncludeFile(file: string): ListFile {
  const read = readList(file);
  if (read.kind === 'absent') return { kind: 'failed', why: `cannot open :include: file ${file}: no such file`, temporary: true };
  return read;
}

function readList(file: string): ListFile {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return openFailure(file, e as NodeJS.ErrnoException);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return { kind: 'ignored', why: `${file}: not a regular file` };
    const text = fs.readFileSync(fd, 'utf8');
    return { ...parseList(text, file), ownerUid: st.uid, unsafe: (st.mode & 0o022) !== 0 };
  } catch (e) {
    return { kind: 'failed', why: `${file}: ${(e as Error).message}`, temporary: true };
  } finally {
    fs.closeSync(fd);
  }
}

function openFailure(file: string, e: NodeJS.ErrnoException): ListFile {
  // Missing and unreadable files are skipped silently, as sendmail does;
  // anything else (an NFS home away, EIO) may pass, so it defers.
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return { kind: 'absent' };
  if (e.code === 'EACCES' || e.code === 'ELOOP') return { kind: 'ignored', why: `${file}: ${e.message}` };
  return { kind: 'failed', why: `${file}: ${e.message}`, temporary: true };
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
