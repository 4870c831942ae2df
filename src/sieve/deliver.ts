// Local delivery through the user's Sieve script, done with the user's
// identity (in the user's delivery agent as root, in-process otherwise; a
// virtual user's in the runner, as mail_owner, which owns their mailboxes;
// never for another uid than this process's). For a batch bound for one user's
// INBOX: each message is run through the active script (sieve_script,
// default $HOME/.sieve); fileinto copies go to the user's folders under
// imap_folder_dir, kept ones (with their IMAP flags as Status:/X-Status:/
// X-Keywords: fields) join the INBOX batch and its placement records, and
// what needs the queue (redirect, vacation replies, rejections) comes back as
// a Verdict for the runner to enqueue or bounce. A script that cannot be read
// or fails keeps the mail in INBOX; the user is told once per script version
// by a notice in INBOX (the script's digest in `SCRIPT.notified`).
//
// Known limit: a runner killed between a fileinto and its cross-off repeats
// the fileinto (a duplicate, never a loss), as a |program may run twice.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { localDomains, type Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import { appendToFolder, appendToMbox, folderMessage, type MboxMessage, type MboxQuota, openDirBeneath, type PlacedMessage, FLAG, type StoredFlags, SYSTEM_FLAGS, withoutMboxState } from '../mailbox/index.ts';
import { rfc5322Date } from '../message/date.ts';
import { splitMessage } from '../message/headers.ts';
import { buildReply, judge, ownAddresses, prune, repliedRecently, updateDb } from '../vacation/index.ts';
import { compileScript, type Node } from './check.ts';
import { type Outcome, runScript, type VacationAction } from './interpret.ts';
import { SieveError } from './parse.ts';

/** What the runner does for one message after the script: bounce it, and/or queue new mail. */
export interface Verdict {
  reject?: string;
  redirect: string[];
  /** A vacation reply, to go from the null sender to `to`. */
  reply?: { to: string; data: Uint8Array };
}

/** A copy the script took care of without INBOX: its placement record says so on a rerun. */
const FILTERED: PlacedMessage = { path: 'sieve:filtered', offset: 0, length: 0, digest: 'sieve' };

/** The script's path for this user, or '' when Sieve is off. */
export function scriptPath(config: Config, user: User): string {
  const t = config.sieveScript;
  return t ? path.resolve(t.replace(/\$HOME\b/g, user.home).replace(/\$USER\b/g, user.name)) : '';
}

type Loaded = { script: Node[]; digest: string } | { error: string; digest: string } | undefined;

/**
 * The script, followed through its link (ManageSieve's ~/.sieve is one) but
 * only to a file the user owns: a delivery agent also has the mail group,
 * which must not let a script link read what the user cannot.
 */
function loadScript(file: string, uid: number): Loaded {
  let src: string;
  try {
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== uid) return { error: `${file} is not a file of yours; not used`, digest: `foreign:${st.ino}` };
      src = fs.readFileSync(fd, 'utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    return { error: `cannot read ${file}: ${(e as Error).message}`, digest: `unreadable:${code}` };
  }
  try {
    return { script: compileScript(src), digest: digestOf(src) };
  } catch (e) {
    return { error: e instanceof SieveError ? `${file}: ${e.message}` : String(e), digest: digestOf(src) };
  }
}

/**
 * Deliver `messages` for `user` through the user's script; without one, as
 * appendToMbox. Returns one Verdict per message (undefined: plain INBOX copy).
 * A virtual user's INBOX copies go under the user's quota (src/virtual).
 */
export async function deliverFiltered(
  config: Config,
  user: User,
  messages: MboxMessage[],
  beforeWrite: (placed: PlacedMessage[]) => void | Promise<void>,
  quota?: MboxQuota,
): Promise<Array<Verdict | undefined>> {
  // Every local delivery passes here: the sender's own Status:, X-Status:,
  // X-Keywords: (and the other mbox bookkeeping fields) go before anything
  // reads or writes flags, so only a script (below) sets them.
  messages = messages.map((m) => {
    const data = withoutMboxState(m.data);
    return data === m.data ? m : { ...m, data };
  });
  const file = scriptPath(config, user);
  const loaded = file && process.geteuid?.() === user.uid ? loadScript(file, user.uid) : undefined;
  if (!loaded) {
    await appendToMbox(config, user, messages, { beforeWrite, quota });
    return messages.map(() => undefined);
  }
  const verdicts: Array<Verdict | undefined> = messages.map(() => undefined);
  const toInbox: number[] = [];
  const inboxFlags = new Map<number, StoredFlags | undefined>();
  let notice: Buffer | undefined;
  for (const [i, m] of messages.entries()) {
    if (m.placed?.path === FILTERED.path) continue; // a run that died after filtering it
    if (m.placed || 'error' in loaded) {
      toInbox.push(i);
      continue;
    }
    try {
      const outcome = runScript(loaded.script, sieveMessage(m));
      verdicts[i] = await act(config, user, m, outcome);
      if (outcome.keep) {
        toInbox.push(i);
        inboxFlags.set(i, storedFlags(outcome.keep.flags));
      }
    } catch (e) {
      // Runtime error, or a folder that cannot be written: the message stays in INBOX.
      toInbox.push(i);
      verdicts[i] = undefined;
      notice ??= noticeOnce(file, `${file}: ${e instanceof SieveError ? e.message : (e as Error).message}`, loaded.digest, user, config);
    }
  }
  if ('error' in loaded) notice = noticeOnce(file, loaded.error, loaded.digest, user, config);
  const batch: MboxMessage[] = toInbox.map((i) => ({ ...messages[i], flags: inboxFlags.get(i) }));
  if (notice) batch.push({ sender: '', recipient: user.name, data: notice });
  const mapBack = async (placed: PlacedMessage[]) => {
    const all = messages.map((m) => (m.placed?.path === FILTERED.path ? m.placed : FILTERED));
    toInbox.forEach((i, j) => (all[i] = placed[j]));
    await beforeWrite(all);
  };
  if (batch.length) await appendToMbox(config, user, batch, { beforeWrite: mapBack, quota });
  else await mapBack([]);
  return verdicts;
}

function sieveMessage(m: MboxMessage): Parameters<typeof runScript>[1] {
  const { headers, body } = splitMessage(m.data);
  return { headers, body, size: m.data.length, envelope: { from: m.sender, to: m.recipient } };
}

/** The script's own deliveries (folders), and what the runner must do. */
async function act(config: Config, user: User, m: MboxMessage, o: Outcome): Promise<Verdict> {
  for (const f of o.fileinto) {
    if (f.folder.toUpperCase() === 'INBOX') {
      o.keep ??= { flags: f.flags };
      continue;
    }
    await appendBeneath(config, user, folderFile(config, user, f.folder), folderMessage(m.sender, m.data, undefined, storedFlags(f.flags)));
  }
  const v: Verdict = { redirect: o.redirect };
  if (o.reject) v.reject = o.reject.reason;
  if (o.vacation) v.reply = await vacationReply(config, user, m, o.vacation);
  return v;
}

/** A folder name as IMAP sees it (hierarchy "/"), as a file under imap_folder_dir. */
export function folderFile(config: Config, user: User, name: string): string {
  const parts = name.split('/');
  if (parts.some((p) => p === '' || p.startsWith('.') || p.endsWith('.lock')) || /[\0\r\n]/.test(name)) {
    throw new SieveError(`fileinto: bad folder name "${name}"`, 0);
  }
  const dir = path.resolve(config.imapFolderDir.replace(/\$HOME\b/g, user.home).replace(/\$USER\b/g, user.name));
  return path.join(dir, ...parts);
}

/**
 * Append to a folder file whose directories, from the home directory (or
 * imap_folder_dir's parent outside it) down, are opened without following a
 * link, as IMAP opens them: a link under ~/mail must not lend the delivery
 * agent's mail group to the user.
 */
async function appendBeneath(config: Config, user: User, file: string, message: Buffer): Promise<void> {
  const home = path.resolve(user.home);
  const top = path.resolve(config.imapFolderDir.replace(/\$HOME\b/g, user.home).replace(/\$USER\b/g, user.name));
  const rel = path.relative(home, top);
  const anchor = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? home : path.dirname(top);
  const dir = openDirBeneath(path.dirname(file), anchor, { owner: { uid: user.uid, gid: user.gid } });
  if (!dir) throw new SieveError(`fileinto: cannot make the folder's directory ${path.dirname(file)}`, 0);
  try {
    const at = dir.at(path.basename(file));
    if (fs.lstatSync(at, { throwIfNoEntry: false })?.isSymbolicLink()) throw new SieveError(`fileinto: ${file} is a symbolic link`, 0);
    await appendToFolder(at, [message]);
  } finally {
    dir.close();
  }
}

/** An IMAP keyword (RFC 3501 flag-keyword, an atom); anything else a script names is left out. */
const KEYWORD = /^[^\x00-\x20\x7f(){%*"\\\]]+$/;

/**
 * The script's IMAP flags, for the one writer (mailbox/format.ts) to record
 * in the fields mbox readers keep them in, as Dovecot writes them: Status: R
 * (and O) for \Seen, X-Status: A D F T for \Answered \Deleted \Flagged
 * \Draft (mailbox/flags.ts writes both), and X-Keywords: with the keywords
 * space-separated, all at the end of the header. Fields of those names that came with the message go: what
 * the script set is the whole truth. Other system flags (\Recent) are left
 * out, as RFC 5232 lets a server ignore flags it cannot store.
 */
export function storedFlags(flags: string[]): StoredFlags | undefined {
  if (flags.length === 0) return undefined;
  const has = new Set(flags.map((f) => f.toLowerCase()));
  let system = 0;
  for (const [bit, name] of SYSTEM_FLAGS) if (has.has(name.toLowerCase())) system |= bit;
  const keywords = flags.filter((f) => !f.startsWith('\\') && KEYWORD.test(f));
  return { system, keywords, old: (system & FLAG.seen) !== 0 };
}

function digestOf(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 22);
}

/** A notice for INBOX, unless this script version was reported already. */
function noticeOnce(file: string, why: string, digest: string, user: User, config: Config): Buffer | undefined {
  const mark = `${file}.notified`;
  try {
    if (fs.readFileSync(mark, 'utf8').trim() === digest) return undefined;
  } catch {
    // never told
  }
  try {
    // A new file renamed over the old name: a link planted there is replaced, never followed.
    const tmp = `${mark}.${process.pid}.tmp`;
    fs.rmSync(tmp, { force: true });
    const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      fs.writeSync(fd, digest + '\n');
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, mark);
  } catch {
    // cannot remember: a notice per message is better than none
  }
  const text = [
    `From: Mail Delivery Subsystem <MAILER-DAEMON@${config.hostname}>`,
    `To: ${user.name}`,
    'Subject: Your Sieve script failed; mail is kept in INBOX',
    `Date: ${rfc5322Date(new Date())}`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Your mail filter could not be run:',
    '',
    `  ${why}`,
    '',
    'Until it is fixed, all mail is kept in INBOX unfiltered. This notice is',
    'sent once for each version of the script.',
    '',
  ].join('\n');
  return Buffer.from(text);
}

// ------------------------------------------------------------------ vacation (RFC 5230)

const DAY = 24 * 60 * 60;

/** RFC 5230 4: a reply, unless the message is not to be answered or this sender was answered within :days. */
async function vacationReply(config: Config, user: User, m: MboxMessage, v: VacationAction): Promise<Verdict['reply']> {
  const { headers } = splitMessage(m.data);
  const mine = ownAddresses(user.name, [...v.addresses, m.recipient], localDomains(config));
  if (!judge({ headers, sender: m.sender }, mine).answer) return undefined;
  const days = Math.max(1, Math.min(v.days ?? 7, 365));
  const handle = v.handle ?? digestOf(`${v.reason}\0${v.subject ?? ''}\0${v.from ?? ''}\0${v.mime}`);
  const key = `${m.sender}#${handle.replace(/\s/g, '_')}`;
  let answer = false;
  const now = Math.floor(Date.now() / 1000);
  await updateDb(path.join(user.home, '.sieve.vacation'), (db) => {
    if (repliedRecently(db, key, now, days * DAY)) return false;
    prune(db, now, 365 * DAY);
    db.replies.set(key.toLowerCase(), now);
    return (answer = true);
  });
  if (!answer) return undefined;
  const from = v.from ?? (user.name.includes('@') ? user.name : `${user.name}@${config.hostname}`); // a virtual user's name is the address
  const subject = v.subject !== undefined ? [`Subject: ${v.subject.replace(/[\r\n]+/g, ' ')}`] : [];
  const template = v.mime ? Buffer.from([...subject, v.reason].join('\n')) : Buffer.from([...subject, 'MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', '', v.reason].join('\n'));
  return { to: m.sender, data: buildReply({ template, original: headers, to: m.sender, from }) };
}
