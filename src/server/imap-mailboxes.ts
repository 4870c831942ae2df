// IMAP's mailbox commands (RFC 3501 6.3): LIST, LSUB, CREATE, DELETE, RENAME,
// SUBSCRIBE, UNSUBSCRIBE, STATUS and APPEND. INBOX (any case) is the spool
// mbox; every other name is an mbox file under imap_folder_dir, "/" the
// hierarchy delimiter and directories the \Noselect levels between. Names are
// kept as the client sends them (modified UTF-7, RFC 3501 5.1.3), and a name
// that could leave the folder directory (.., a leading dot or slash, NUL) is
// refused. Subscriptions are the lines of .subscriptions in that directory.

import fs from 'node:fs';
import path from 'node:path';
import type { User } from '../config/users.ts';
import { type FolderSpec, type NewMessage, openFolder } from '../mailbox/index.ts';
import { normalizeLineEnds } from '../message/index.ts';
import { copyMessages, parseFlagList } from './imap-selected.ts';
import { bad, type Cmd, type ImapSession, no, ok, type Result } from './imap-session.ts';
import { astr, astring, isAtom, parseDateTime, str, type Token } from './imap-wire.ts';

const MAX_DEPTH = 20;
const MAX_ENTRIES = 10_000;
const SUBSCRIPTIONS = '.subscriptions';

export interface Resolved {
  name: string;
  inbox: boolean;
  spec: FolderSpec;
  /** The mbox file (INBOX: the spool file). */
  file: string;
}

/** A mailbox name checked and mapped to its files; a string is the reason it cannot be. */
export function resolveMailbox(s: ImapSession, raw: string): Resolved | string {
  const user = s.user as User;
  if (raw.toUpperCase() === 'INBOX') {
    const spec = s.ctx.access.inbox(user);
    return { name: 'INBOX', inbox: true, spec, file: spec.mbox };
  }
  const name = raw.replace(/\/+$/, '');
  const parts = name.split('/');
  if (name === '' || parts.some((p) => p === '' || p.startsWith('.') || p === '..') || /[\0\r\n]/.test(name)) {
    return `bad mailbox name "${raw.slice(0, 80)}"`;
  }
  if (parts[0].toUpperCase() === 'INBOX') return 'INBOX has no children here';
  if (parts.some((p) => p.endsWith('.lock'))) return 'mailbox names may not end in .lock';
  const spec = s.ctx.access.folder(user, name);
  return { name, inbox: false, spec, file: spec.mbox };
}

function owner(s: ImapSession): { uid: number; gid: number } | undefined {
  return process.geteuid?.() === 0 && s.user ? { uid: s.user.uid, gid: s.user.gid } : undefined;
}

/** mkdir -p for the folder directory tree, owned by the user. */
function makeDirs(s: ImapSession, dir: string): void {
  const root = s.ctx.access.folderDir(s.user as User);
  const chain: string[] = [];
  for (let d = dir; d.length >= root.length && !fs.existsSync(d); d = path.dirname(d)) chain.unshift(d);
  for (const d of chain) {
    fs.mkdirSync(d, { mode: 0o700 });
    const o = owner(s);
    if (o) fs.chownSync(d, o.uid, o.gid);
  }
}

// ------------------------------------------------------------ LIST and LSUB

interface Listed {
  name: string;
  dir: boolean;
  children: boolean;
}

/** Every folder and directory under the folder directory, INBOX first. */
function allMailboxes(s: ImapSession): Listed[] {
  const root = s.ctx.access.folderDir(s.user as User);
  const out: Listed[] = [{ name: 'INBOX', dir: false, children: false }];
  const walk = (dir: string, prefix: string, depth: number) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (out.length >= MAX_ENTRIES || e.name.startsWith('.') || e.name.endsWith('.lock')) continue;
      const name = prefix + e.name;
      if (e.isFile()) out.push({ name, dir: false, children: false });
      else if (e.isDirectory() && depth < MAX_DEPTH) {
        const item = { name, dir: true, children: false };
        out.push(item);
        const before = out.length;
        walk(path.join(dir, e.name), `${name}/`, depth + 1);
        item.children = out.length > before;
      }
    }
  };
  walk(root, '', 0);
  return out;
}

/** LIST's wildcards: * matches anything, % anything but the delimiter. INBOX matches in any case. */
function matcher(reference: string, pattern: string): (name: string) => boolean {
  const full = reference && !pattern.startsWith('/') ? `${reference}${pattern}` : pattern;
  const re = new RegExp(`^${full.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/%/g, '[^/]*')}$`);
  const inbox = new RegExp(re.source, 'i');
  return (name) => (name === 'INBOX' ? inbox.test(name) : re.test(name));
}

export async function listCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const reference = astring(c.args[0], 'reference');
  const pattern = astring(c.args[1], 'mailbox pattern');
  if (pattern === '') {
    await s.untagged('LIST (\\Noselect) "/" ""');
    return ok('LIST completed');
  }
  const match = matcher(reference, pattern);
  for (const m of allMailboxes(s)) {
    if (!match(m.name)) continue;
    const attrs = m.dir ? ['\\Noselect', m.children ? '\\HasChildren' : '\\HasNoChildren'] : ['\\HasNoChildren'];
    await s.untagged(`LIST (${attrs.join(' ')}) "/" ${astr(m.name)}`);
  }
  return ok('LIST completed');
}

function subscriptionsFile(s: ImapSession): string {
  return path.join(s.ctx.access.folderDir(s.user as User), SUBSCRIPTIONS);
}

function readSubscriptions(s: ImapSession): string[] {
  try {
    return fs.readFileSync(subscriptionsFile(s), 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

export async function lsubCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const match = matcher(astring(c.args[0], 'reference'), astring(c.args[1], 'mailbox pattern'));
  for (const name of readSubscriptions(s)) if (match(name)) await s.untagged(`LSUB () "/" ${astr(name)}`);
  return ok('LSUB completed');
}

export async function subscribeCommand(s: ImapSession, c: Cmd, on: boolean): Promise<Result> {
  const r = resolveMailbox(s, astring(c.args[0], 'mailbox name'));
  if (typeof r === 'string') return no(r);
  const names = new Set(readSubscriptions(s));
  if (on) names.add(r.name);
  else names.delete(r.name);
  const file = subscriptionsFile(s);
  makeDirs(s, path.dirname(file));
  fs.writeFileSync(file, [...names].map((n) => `${n}\n`).join(''), { mode: 0o600 });
  const o = owner(s);
  if (o) fs.chownSync(file, o.uid, o.gid);
  return ok(`${on ? 'SUBSCRIBE' : 'UNSUBSCRIBE'} completed`);
}

// ------------------------------------------------------------ CREATE, DELETE, RENAME

export async function createCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const raw = astring(c.args[0], 'mailbox name');
  const r = resolveMailbox(s, raw);
  if (typeof r === 'string') return no(r);
  if (r.inbox) return no('[ALREADYEXISTS] INBOX always exists');
  if (fs.existsSync(r.file)) return no('[ALREADYEXISTS] mailbox already exists');
  if (raw.endsWith('/')) {
    makeDirs(s, r.file);
    return ok('CREATE completed');
  }
  makeDirs(s, path.dirname(r.file));
  const fd = fs.openSync(r.file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  const o = owner(s);
  if (o) fs.fchownSync(fd, o.uid, o.gid);
  fs.closeSync(fd);
  return ok('CREATE completed');
}

export async function deleteCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const r = resolveMailbox(s, astring(c.args[0], 'mailbox name'));
  if (typeof r === 'string') return no(r);
  if (r.inbox) return no('INBOX cannot be deleted');
  let st: fs.Stats;
  try {
    st = fs.lstatSync(r.file);
  } catch {
    return no('[NONEXISTENT] no such mailbox');
  }
  if (st.isDirectory()) {
    if (fs.readdirSync(r.file).some((n) => !n.startsWith('.'))) return no(`Name "${r.name}" has inferior hierarchical names`);
    fs.rmSync(r.file, { recursive: true, force: true });
  } else fs.rmSync(r.file, { force: true });
  if (r.spec.indexDir) fs.rmSync(r.spec.indexDir, { recursive: true, force: true });
  return ok('DELETE completed');
}

export async function renameCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const from = resolveMailbox(s, astring(c.args[0], 'mailbox name'));
  const to = resolveMailbox(s, astring(c.args[1], 'new mailbox name'));
  if (typeof from === 'string') return no(from);
  if (typeof to === 'string') return no(to);
  if (to.inbox) return no('[ALREADYEXISTS] INBOX always exists');
  if (fs.existsSync(to.file)) return no('[ALREADYEXISTS] the new name exists');
  if (from.inbox) return renameInbox(s, from, to);
  if (!fs.existsSync(from.file)) return no('[NONEXISTENT] no such mailbox');
  makeDirs(s, path.dirname(to.file));
  fs.renameSync(from.file, to.file);
  if (from.spec.indexDir && to.spec.indexDir && fs.existsSync(from.spec.indexDir)) {
    makeDirs(s, path.dirname(to.spec.indexDir));
    fs.rmSync(to.spec.indexDir, { recursive: true, force: true });
    fs.renameSync(from.spec.indexDir, to.spec.indexDir);
  }
  return ok('RENAME completed');
}

/** RFC 3501 6.3.5: renaming INBOX moves its messages to the new mailbox and leaves INBOX empty. */
async function renameInbox(s: ImapSession, from: Resolved, to: Resolved): Promise<Result> {
  makeDirs(s, path.dirname(to.file));
  const src = await openFolder(from.spec);
  try {
    await src.sync();
    const uids = src.records.map((r) => r.uid);
    fs.closeSync(fs.openSync(to.file, 'a', 0o600));
    await copyMessages(src, uids, to.spec);
    await src.expunge(uids);
  } finally {
    await src.release();
  }
  return ok('RENAME completed');
}

// ------------------------------------------------------------ STATUS and APPEND

export async function statusCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const r = resolveMailbox(s, astring(c.args[0], 'mailbox name'));
  if (typeof r === 'string') return no(r);
  const items = c.args[1];
  if (items?.kind !== 'list') return bad('STATUS needs a list of items');
  if (!r.inbox && !isFile(r.file)) return no('[NONEXISTENT] no such mailbox');
  const f = await openFolder(r.spec);
  try {
    await f.sync();
    const out: string[] = [];
    for (const t of items.items) {
      const item = isAtom(t) ? t.value.toUpperCase() : '';
      const value = {
        MESSAGES: f.records.length,
        RECENT: f.takeRecent(false).size,
        UIDNEXT: f.uidNext,
        UIDVALIDITY: f.uidValidity,
        UNSEEN: f.records.filter((m) => !(m.flags & 1)).length,
      }[item];
      if (value === undefined) return bad(`unknown STATUS item ${item}`);
      out.push(`${item} ${value}`);
    }
    await s.untagged(`STATUS ${astr(r.name)} (${out.join(' ')})`);
  } finally {
    await f.release();
  }
  return ok('STATUS completed');
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

export async function appendCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const r = resolveMailbox(s, astring(c.args[0], 'mailbox name'));
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
  if (!r.inbox && !isFile(r.file)) return no('[TRYCREATE] no such mailbox');
  const message: NewMessage = { data: normalizeLineEnds(lit.bytes), flags: flags.flags, keywords: flags.keywords, date };
  const f = await openFolder(r.spec);
  try {
    const [uid] = await f.append([message]);
    return ok(`[APPENDUID ${f.uidValidity} ${uid}] APPEND completed`);
  } finally {
    await f.release();
  }
}

