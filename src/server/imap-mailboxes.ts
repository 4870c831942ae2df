// IMAP's mailbox commands (RFC 3501 6.3): LSUB, CREATE, DELETE, RENAME (LIST is imap-list.ts),
// SUBSCRIBE, UNSUBSCRIBE, STATUS and APPEND. INBOX (any case) is the spool
// mbox; every other name is an mbox file under imap_folder_dir, "/" the
// hierarchy delimiter and directories the \Noselect levels between. Names are
// kept as an IMAP4rev1 client sends them (modified UTF-7, RFC 3501 5.1.3; an
// IMAP4rev2 session's UTF-8 names are turned into that, imap-names.ts), and a name
// that could leave the folder directory (.., a leading dot or slash, NUL) is
// refused. Subscriptions are the lines of .subscriptions in that directory.
// Nothing under the folder or index directory is reached through a symlink,
// whoever planted it and whatever uid we run as: every component below the
// user's home (or below the tree's parent when it lies elsewhere), ~/mail
// itself included, is opened with O_NOFOLLOW through the one before
// (openDirBeneath), and a symlink on the way answers NO [NOPERM].

import { anchorOf } from './mailbox-access.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { User } from '../config/users.ts';
import {
  FLAG, type FolderSpec, type HeldDir, lstatBeneath, type NewMessage, openDirBeneath, openFolder, removeIndexDir, renameIndexDir, UnsafePath,
} from '../mailbox/index.ts';
import { MailError, normalizeLineEnds } from '../message/index.ts';
import { enableCondstore } from './imap-condstore.ts';
import { copyMessages, parseFlagList } from './imap-selected.ts';
import { bad, type Cmd, type ImapSession, no, ok, type Result } from './imap-session.ts';
import { mailboxArg, mailboxOut, wireName } from './imap-names.ts';
import { astring, isAtom, parseDateTime, type Token } from './imap-wire.ts';

const MAX_DEPTH = 20;
const MAX_ENTRIES = 10_000;
const SUBSCRIPTIONS = '.subscriptions';
const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

export interface Resolved {
  name: string;
  inbox: boolean;
  spec: FolderSpec;
  /** The mbox file (INBOX: the spool file). */
  file: string;
}

/** The user's two trees and the trusted directory above each. */
interface Trees {
  folders: string;
  folderAnchor: string;
  index: string;
  indexAnchor: string;
}

function trees(s: ImapSession): Trees {
  const user = s.user as User;
  const folders = path.resolve(s.ctx.access.folderDir(user));
  const index = path.dirname(path.resolve(s.ctx.access.inbox(user).indexDir as string));
  return { folders, folderAnchor: anchorOf(user, folders), index, indexAnchor: anchorOf(user, index) };
}


/** A path as the user sees it: ~/mail/x inside the home directory. */
function shown(s: ImapSession, p: string): string {
  const rel = path.relative(path.resolve((s.user as User).home), p);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? `~/${rel}` : p;
}

/** The NO for an unsafe path (RFC 5530 codes); undefined for other errors. */
function refusal(s: ImapSession, e: unknown): string | undefined {
  if (e instanceof UnsafePath) {
    if (e.why === 'symlink') return `[NOPERM] ${shown(s, e.at)} is a symbolic link; refusing to follow it`;
    const folder = path.relative(trees(s).folders, e.at);
    if (folder && !folder.startsWith('..') && !path.isAbsolute(folder) && isPlainFile(e.at)) {
      return `[CANNOT] mailbox ${folder} is an mbox file and cannot hold other mailboxes (\\NoInferiors)`;
    }
    return `[CANNOT] ${shown(s, e.at)} is not a directory`;
  }
  if (e instanceof MailError && e.failure === 'mailbox-unsafe') {
    const home = path.resolve((s.user as User).home);
    return `[CANNOT] ${e.message.split(`${home}/`).join('~/').replace(/[\r\n]/g, ' ').slice(0, 300)}`;
  }
  return undefined;
}

/** For a message only: `p` is a regular file (not followed if a symlink). */
function isPlainFile(p: string): boolean {
  try {
    return fs.lstatSync(p).isFile();
  } catch {
    return false;
  }
}

/** Run a command's file work; an unsafe path becomes its NO. */
export async function guarded(s: ImapSession, fn: () => Promise<Result>): Promise<Result> {
  try {
    return await fn();
  } catch (e) {
    const r = refusal(s, e);
    if (r) return no(r);
    throw e;
  }
}

/** A mailbox name checked and mapped to its files; a string is the reason it cannot be. */
export function resolveMailbox(s: ImapSession, raw: string): Resolved | string {
  const user = s.user as User;
  const t = trees(s);
  if (raw.toUpperCase() === 'INBOX') {
    const spec: FolderSpec = { ...s.ctx.access.inbox(user), beneath: { index: t.indexAnchor } };
    return checkPaths(s, { name: 'INBOX', inbox: true, spec, file: spec.mbox });
  }
  const name = raw.replace(/\/+$/, '');
  const parts = name.split('/');
  if (name === '' || parts.some((p) => p === '' || p.startsWith('.') || p === '..') || /[\0\r\n]/.test(name)) {
    return `bad mailbox name "${raw.slice(0, 80)}"`;
  }
  if (parts[0].toUpperCase() === 'INBOX') return 'INBOX has no children here';
  if (parts.some((p) => p.endsWith('.lock'))) return 'mailbox names may not end in .lock';
  const spec: FolderSpec = { ...s.ctx.access.folder(user, name), beneath: { mbox: t.folderAnchor, index: t.indexAnchor } };
  return checkPaths(s, { name, inbox: false, spec, file: spec.mbox });
}

/** Refuse a mailbox whose file or index directory lies behind a symlink (at any level below the anchor). */
function checkPaths(s: ImapSession, r: Resolved): Resolved | string {
  try {
    if (r.spec.beneath?.mbox) lstatBeneath(r.file, r.spec.beneath.mbox);
    if (r.spec.indexDir && r.spec.beneath?.index) lstatBeneath(r.spec.indexDir, r.spec.beneath.index);
  } catch (e) {
    const why = refusal(s, e);
    if (why) return why;
    throw e;
  }
  return r;
}

function owner(s: ImapSession): { uid: number; gid: number } {
  const user = s.user as User;
  return { uid: user.uid, gid: user.gid };
}

/** The directory holding a folder file, opened below the anchor (made, owned by the user, when `make`). */
export function folderParent(s: ImapSession, r: Resolved, make: boolean): HeldDir | undefined {
  return openDirBeneath(path.dirname(r.file), trees(s).folderAnchor, make ? { owner: owner(s) } : undefined);
}

/** lstat of a name inside a held directory; undefined when missing. */
export function lstatIn(dir: HeldDir, name: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(dir.at(name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Create an empty folder file (O_EXCL|O_NOFOLLOW, 0600, the user's); false when the name exists. */
export function createFolderFile(s: ImapSession, dir: HeldDir, name: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(dir.at(name), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  try {
    if (process.geteuid?.() === 0) fs.fchownSync(fd, owner(s).uid, owner(s).gid);
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

// ------------------------------------------------------------ LIST and LSUB

export interface Listed {
  name: string;
  dir: boolean;
  children: boolean;
}

/** Every folder and directory under the folder directory, INBOX first; symlinks are not listed, nor followed. */
export function allMailboxes(s: ImapSession): Listed[] {
  const t = trees(s);
  const out: Listed[] = [{ name: 'INBOX', dir: false, children: false }];
  const walk = (dir: HeldDir, prefix: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir.self, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (out.length >= MAX_ENTRIES || e.name.startsWith('.') || e.name.endsWith('.lock')) continue;
      const name = prefix + e.name;
      if (e.isFile()) out.push({ name, dir: false, children: false });
      else if (e.isDirectory() && depth < MAX_DEPTH) {
        let sub: HeldDir | undefined;
        try {
          sub = dir.sub(e.name);
        } catch {
          continue; // replaced by a symlink meanwhile
        }
        if (!sub) continue;
        const item = { name, dir: true, children: false };
        out.push(item);
        const before = out.length;
        try {
          walk(sub, `${name}/`, depth + 1);
        } finally {
          sub.close();
        }
        item.children = out.length > before;
      }
    }
  };
  const root = openDirBeneath(t.folders, t.folderAnchor);
  if (root) {
    try {
      walk(root, '', 0);
    } finally {
      root.close();
    }
  }
  return out;
}

/**
 * RFC 3501 6.3.8's wildcards without a RegExp, in O(name x pattern) steps at
 * worst: "*" matches anything, "%" anything but the delimiter "/". The classic
 * greedy match that backs up only to the last "*" (a later star absorbs
 * whatever an earlier one could), with one more backup point for the last
 * "%" since: a "%" may take one more character unless that is "/" (then it is
 * spent and the "*" takes over), and once a literal "/" has matched, no "%"
 * before it can help, for the name's next "/" had to be that one.
 */
export function wildcardMatch(pattern: string, name: string): boolean {
  const p = pattern.replace(/[*%]{2,}/g, (run) => (run.includes('*') ? '*' : '%'));
  let literals = 0;
  for (const c of p) if (c !== '*' && c !== '%') literals++;
  if (literals > name.length) return false;
  let pi = 0;
  let ni = 0;
  let star = -1; // pattern index after the last "*"
  let starNi = 0; // where in the name that "*" ends now
  let pct = -1; // the same for the last "%" since, while it may still grow
  let pctNi = 0;
  while (ni < name.length) {
    const c = p[pi];
    if (c === '*') {
      star = ++pi;
      starNi = ni;
      pct = -1;
    } else if (c === '%') {
      pct = ++pi;
      pctNi = ni;
    } else if (pi < p.length && c === name[ni]) {
      if (c === '/') pct = -1;
      pi++;
      ni++;
    } else if (pct >= 0 && name[pctNi] !== '/') {
      pi = pct;
      ni = ++pctNi;
    } else if (star >= 0) {
      pi = star;
      ni = ++starNi;
      pct = -1;
    } else {
      return false;
    }
  }
  while (p[pi] === '*' || p[pi] === '%') pi++;
  return pi === p.length;
}

/** LIST's and LSUB's test: the reference name prefixed as RFC 3501 6.3.8 says; INBOX matches in any case. */
export function matcher(reference: string, pattern: string): (name: string) => boolean {
  const full = reference && !pattern.startsWith('/') ? `${reference}${pattern}` : pattern;
  const upper = full.toUpperCase();
  return (name) => (name === 'INBOX' ? wildcardMatch(upper, name) : wildcardMatch(full, name));
}

/**
 * The lines of .subscriptions; none when there is no file. It is read only as
 * a regular file with one link, owned by the user (by us, when we are not
 * root), opened with O_NOFOLLOW; anything else throws.
 */
export function readSubscriptions(s: ImapSession): string[] {
  const t = trees(s);
  const dir = openDirBeneath(t.folders, t.folderAnchor);
  if (!dir) return [];
  const file = path.join(t.folders, SUBSCRIPTIONS);
  let fd: number;
  try {
    fd = fs.openSync(dir.at(SUBSCRIPTIONS), O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'ELOOP') throw new UnsafePath(file, 'symlink');
    throw e;
  } finally {
    dir.close();
  }
  try {
    const st = fs.fstatSync(fd);
    const euid = process.geteuid?.() ?? 0;
    const want = euid === 0 ? (s.user as User).uid : euid;
    if (!st.isFile() || st.nlink !== 1 || st.uid !== want) {
      throw new MailError('mailbox-unsafe', `${file} is not a plain file of the user's (a regular file with one link, owned by uid ${want}); remove it`);
    }
    return fs.readFileSync(fd, 'utf8').split('\n').filter(Boolean);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replace .subscriptions: a temporary file made with O_EXCL|O_NOFOLLOW, renamed over it. */
function writeSubscriptions(s: ImapSession, names: Iterable<string>): void {
  const t = trees(s);
  const dir = openDirBeneath(t.folders, t.folderAnchor, { owner: owner(s) }) as HeldDir;
  try {
    const tmp = dir.at(`${SUBSCRIPTIONS}.${process.pid}.${Math.random().toString(36).slice(2, 8)}`);
    const fd = fs.openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      if (process.geteuid?.() === 0) fs.fchownSync(fd, owner(s).uid, owner(s).gid);
      fs.writeSync(fd, [...names].map((n) => `${n}\n`).join(''));
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.closeSync(fd);
    fs.renameSync(tmp, dir.at(SUBSCRIPTIONS));
  } finally {
    dir.close();
  }
}

export async function lsubCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const match = matcher(astring(c.args[0], 'reference'), astring(c.args[1], 'mailbox pattern'));
  return guarded(s, async () => {
    for (const name of readSubscriptions(s)) if (match(wireName(s, name))) await s.untagged(`LSUB () "/" ${mailboxOut(s, name)}`);
    return ok('LSUB completed');
  });
}

export async function subscribeCommand(s: ImapSession, c: Cmd, on: boolean): Promise<Result> {
  const r = resolveMailbox(s, mailboxArg(s, c.args[0]));
  if (typeof r === 'string') return no(r);
  return guarded(s, async () => {
    const names = new Set(readSubscriptions(s));
    if (on) names.add(r.name);
    else names.delete(r.name);
    writeSubscriptions(s, names);
    return ok(`${on ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} completed`);
  });
}

// ------------------------------------------------------------ CREATE, DELETE, RENAME

export async function createCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const raw = mailboxArg(s, c.args[0]);
  const r = resolveMailbox(s, raw);
  if (typeof r === 'string') return no(r);
  if (r.inbox) return no('[ALREADYEXISTS] INBOX always exists');
  return guarded(s, async () => {
    const dir = folderParent(s, r, true) as HeldDir;
    try {
      const name = path.basename(r.file);
      if (lstatIn(dir, name)) return no('[ALREADYEXISTS] mailbox already exists');
      if (raw.endsWith('/')) dir.sub(name, { owner: owner(s) })?.close();
      else if (!createFolderFile(s, dir, name)) return no('[ALREADYEXISTS] mailbox already exists');
    } finally {
      dir.close();
    }
    return ok('CREATE completed');
  });
}

export async function deleteCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const r = resolveMailbox(s, mailboxArg(s, c.args[0]));
  if (typeof r === 'string') return no(r);
  if (r.inbox) return no('INBOX cannot be deleted');
  return guarded(s, async () => {
    const dir = folderParent(s, r, false);
    const name = path.basename(r.file);
    const st = dir && lstatIn(dir, name);
    if (!dir || !st) {
      dir?.close();
      return no('[NONEXISTENT] no such mailbox');
    }
    try {
      if (st.isSymbolicLink()) throw new UnsafePath(r.file, 'symlink');
      if (st.isDirectory()) {
        const refused = removeFolderDir(dir, name);
        if (refused) return no(refused.replace('NAME', r.name));
      } else if (st.isFile()) fs.unlinkSync(dir.at(name));
      else return no('[CANNOT] not a mailbox');
    } finally {
      dir.close();
    }
    if (r.spec.indexDir) removeIndexDir(r.spec.indexDir, trees(s).indexAnchor);
    return ok('DELETE completed');
  });
}

/**
 * Remove a \Noselect level: refused while it holds names; hidden files (only
 * files, never followed) go with it. A string is the NO, with NAME for the name.
 */
function removeFolderDir(parent: HeldDir, name: string): string | undefined {
  const dir = parent.sub(name);
  if (!dir) return '[NONEXISTENT] no such mailbox';
  try {
    const entries = fs.readdirSync(dir.self, { withFileTypes: true });
    if (entries.some((e) => !e.name.startsWith('.'))) return 'Name "NAME" has inferior hierarchical names';
    const blocking = entries.find((e) => e.isDirectory());
    if (blocking) return `[CANNOT] NAME holds the directory ${blocking.name}; remove it first`;
    for (const e of entries) fs.unlinkSync(dir.at(e.name));
  } finally {
    dir.close();
  }
  fs.rmdirSync(parent.at(name));
  return undefined;
}

export async function renameCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const from = resolveMailbox(s, mailboxArg(s, c.args[0]));
  const to = resolveMailbox(s, mailboxArg(s, c.args[1], 'new mailbox name'));
  if (typeof from === 'string') return no(from);
  if (typeof to === 'string') return no(to);
  if (to.inbox) return no('[ALREADYEXISTS] INBOX always exists');
  return guarded(s, async () => {
    const toParent = folderParent(s, to, false);
    const taken = toParent && lstatIn(toParent, path.basename(to.file));
    toParent?.close();
    if (taken) return no('[ALREADYEXISTS] the new name exists');
    if (from.inbox) return renameInbox(s, from, to);
    const src = folderParent(s, from, false);
    const st = src && lstatIn(src, path.basename(from.file));
    if (!src || !st) {
      src?.close();
      return no('[NONEXISTENT] no such mailbox');
    }
    try {
      if (st.isSymbolicLink()) throw new UnsafePath(from.file, 'symlink');
      const dst = folderParent(s, to, true) as HeldDir;
      try {
        fs.renameSync(src.at(path.basename(from.file)), dst.at(path.basename(to.file)));
      } finally {
        dst.close();
      }
    } finally {
      src.close();
    }
    if (from.spec.indexDir && to.spec.indexDir) renameIndexDir(from.spec.indexDir, to.spec.indexDir, owner(s), trees(s).indexAnchor);
    return ok('RENAME completed');
  });
}

/**
 * RFC 3501 6.3.5: renaming INBOX moves all its messages to a new mailbox of
 * that name and leaves INBOX, empty, in place. INBOX is opened first (a
 * failure there leaves nothing behind); then the new mbox file is made
 * (O_EXCL, the user's own: never root's), the messages are copied into it
 * with their flags (read under INBOX's lock, appended under the new folder's),
 * and expunged from INBOX under its lock, by UID, so that mail delivered
 * meanwhile stays in INBOX. When the copy fails, the new folder is removed
 * again while it is still empty, so that the client may simply try again;
 * INBOX is untouched until everything is copied.
 */
async function renameInbox(s: ImapSession, from: Resolved, to: Resolved): Promise<Result> {
  const src = await openFolder(from.spec);
  try {
    await src.sync();
    const dir = folderParent(s, to, true) as HeldDir;
    try {
      if (!createFolderFile(s, dir, path.basename(to.file))) return no('[ALREADYEXISTS] the new name exists');
    } finally {
      dir.close();
    }
    const uids = src.records.map((r) => r.uid);
    try {
      await copyMessages(src, uids, to.spec);
    } catch (e) {
      removeIfEmpty(s, to);
      throw e;
    }
    await src.expunge(uids);
  } finally {
    await src.release();
  }
  return ok('RENAME completed');
}

/** Remove a folder file this command made (and its index) if nothing is in it. */
function removeIfEmpty(s: ImapSession, r: Resolved): void {
  try {
    const dir = folderParent(s, r, false);
    if (!dir) return;
    try {
      const st = lstatIn(dir, path.basename(r.file));
      if (!st?.isFile() || st.size !== 0) return;
      fs.unlinkSync(dir.at(path.basename(r.file)));
    } finally {
      dir.close();
    }
    if (r.spec.indexDir) removeIndexDir(r.spec.indexDir, trees(s).indexAnchor);
  } catch {
    // Best effort: the command's own failure is what the client is told.
  }
}

// ------------------------------------------------------------ STATUS and APPEND

export async function statusCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const r = resolveMailbox(s, mailboxArg(s, c.args[0]));
  if (typeof r === 'string') return no(r);
  const items = c.args[1];
  if (items?.kind !== 'list') return bad('STATUS needs a list of items');
  return guarded(s, () => statusOf(s, r, items.items));
}

async function statusOf(s: ImapSession, r: Resolved, items: Token[]): Promise<Result> {
  if (!r.inbox && !isFolderFile(r)) return no('[NONEXISTENT] no such mailbox');
  const names = statusItems(s, items);
  if (typeof names === 'string') return bad(names);
  if (names.includes('HIGHESTMODSEQ')) await enableCondstore(s); // a CONDSTORE enabling command (RFC 7162 3.1)
  await s.untagged(await statusLine(s, r, names));
  return ok('STATUS completed');
}

/** RFC 3501's items, HIGHESTMODSEQ (RFC 7162), SIZE (RFC 8438) and DELETED (RFC 9051 6.3.11). */
const STATUS_ITEMS = new Set(['MESSAGES', 'RECENT', 'UIDNEXT', 'UIDVALIDITY', 'UNSEEN', 'HIGHESTMODSEQ', 'SIZE', 'DELETED']);

/** STATUS's item names, upper case; a string is the BAD's text. IMAP4rev2 has no RECENT (RFC 9051 6.3.11's status-att). */
export function statusItems(s: ImapSession, items: Token[]): string[] | string {
  const out: string[] = [];
  for (const t of items) {
    const item = isAtom(t) ? t.value.toUpperCase() : '';
    if (item === 'RECENT' && s.rev2) return 'STATUS RECENT is not part of IMAP4rev2 (RFC 9051)';
    if (!STATUS_ITEMS.has(item)) return `unknown STATUS item ${item.slice(0, 30)}`;
    out.push(item);
  }
  return out;
}

/** "STATUS name (MESSAGES 3 ...)" for a mailbox that exists. */
export async function statusLine(s: ImapSession, r: Resolved, items: string[]): Promise<string> {
  const f = await openFolder(r.spec);
  try {
    await f.sync();
    const out: string[] = [];
    for (const item of items) {
      const value = {
        MESSAGES: () => f.records.length,
        RECENT: () => f.takeRecent(false).size,
        UIDNEXT: () => f.uidNext,
        UIDVALIDITY: () => f.uidValidity,
        UNSEEN: () => f.records.filter((m) => !(m.flags & 1)).length,
        HIGHESTMODSEQ: () => f.highestModseq,
        SIZE: () => f.records.reduce((n, m) => n + m.size, 0),
        DELETED: () => f.records.filter((m) => m.flags & FLAG.deleted).length,
      }[item]!();
      out.push(`${item} ${value}`);
    }
    return `STATUS ${mailboxOut(s, r.name)} (${out.join(' ')})`;
  } finally {
    await f.release();
  }
}

/** The folder's mbox exists as a regular file, reached without a symlink. */
function isFolderFile(r: Resolved): boolean {
  return Boolean(r.spec.beneath?.mbox && lstatBeneath(r.file, r.spec.beneath.mbox)?.isFile());
}

export async function appendCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const r = resolveMailbox(s, mailboxArg(s, c.args[0]));
  if (typeof r === 'string') return no(r);
  let i = 1;
  let flags = { flags: 0, keywords: [] as string[] };
  if (c.args[i]?.kind === 'list') flags = parseFlagList((c.args[i++] as { items: Token[] }).items);
  let date = new Date();
  const maybeDate = c.args[i];
  if (maybeDate?.kind === 'string' && c.args[i + 1]) {
    const d = parseDateTime(maybeDate.value);
    if (!d) return bad('bad date-time');
    date = d;
    i++;
  }
  const lit = c.args[i];
  if (lit?.kind !== 'string') return bad('APPEND needs the message as a literal');
  const message: NewMessage = { data: normalizeLineEnds(lit.bytes), flags: flags.flags, keywords: flags.keywords, date };
  return guarded(s, async () => {
    if (!r.inbox && !isFolderFile(r)) return no('[TRYCREATE] no such mailbox');
    const f = await openFolder(r.spec);
    try {
      const [uid] = await f.append([message]);
      return ok(`[APPENDUID ${f.uidValidity} ${uid}] APPEND completed`);
    } finally {
      await f.release();
    }
  });
}

