// pickup: moves finished files from the maildrop into the queue (Postfix's
// pickup(8)). The maildrop (mode 1733) is writable by every local user, so
// each entry in it is hostile input. The picker may run as root or as
// mail_owner (the queue's owner); it is safe as either.
//
// What it trusts: the kernel's word on an entry (lstat, fstat), and the
// file's owner (st.uid) as the submitter. An ordinary user cannot claim
// another local user's envelope sender: such a sender is replaced by the
// submitter's own address and the message gets sendmail's
// X-Authentication-Warning header. From the file it takes the envelope
// (S, R, Z, E, B records) and the message text, once checked; it never takes
// the queue ID, arrival time, hop count, submitter, retry state or flags
// (I T H U N K Y G records: checked, then ignored). It gives the ID and the
// time itself and counts the hops in the text as submission does.
//
// How, for each entry, never following a link:
//   1. lstat. The writer's temporary names (.tmp.NAME), and a NAME still
//      linked to its .tmp.NAME (dropMessage between link and unlink), are
//      left alone for an hour, then refused. Anything but a regular file with
//      one link is refused unopened: FIFO, socket, device, directory,
//      symlink, a file with other hard links.
//   2. claim: lock a new queue ID (qf<ID>.lock, entry-lock.ts) and rename the
//      entry to queue_dir/pickup/ID, out of its owner's reach; one fsync of
//      both folders for the batch (transition.ts).
//   3. check: lstat again, open O_RDONLY|O_NONBLOCK|O_NOFOLLOW, fstat the
//      descriptor (regular, one link, the inode lstat saw, at most
//      max_message_size plus the allowances in enqueue.ts), read it whole;
//      then every record against its grammar (RECORDS: known letters, one of
//      each but R, at most 2,048 characters, no NUL, CR, LF or other control
//      character in a field, UTF-8), the L record against the text's length,
//      and the envelope against RFC 5321 and 3461 (dropError: addresses,
//      NOTIFY, ORCPT, ENVID, RET, BODY, at most max(10,000, max_recipients)
//      recipients, the same limits the writer applies).
//   4. enqueue under the claimed ID, then remove the claimed file.
// A refused entry is renamed, itself, into queue_dir/corrupt under a new
// name and logged once: "maildrop/NAME: quarantined: WHY (owner uid N)".
// It is never read, picked up or logged again. Nothing is made outside
// queue_dir. (A picker that is not root cannot move a directory it may not
// write to another folder; such a directory is renamed in the maildrop to
// a .refused. name, which pickup passes over, as it does any such name.)
//
// Known limits: a claim outlives a crash; the next pickup finishes it, or
// discards it when qf<ID> shows it was committed, but if a runner delivered
// and finished that entry before the crash, it is delivered twice. A picker
// that is not root must own the maildrop (the sticky bit lets only a
// folder's owner move other users' files) and can read only what the
// writer made readable (dropMessage makes it 0644, under a random name).
// The Received field names the writer's ID, not the one pickup gives.

import fs from 'node:fs';
import path from 'node:path';
import { type Config, isLocalDomain, localDomains } from '../config/index.ts';
import { lookupUid } from '../config/users.ts';
import { log } from '../log/index.ts';
import { getHeader, prepareSubmission, splitAddress, splitMessage } from '../message/index.ts';
import { ControlParseError, type Envelope, parseControl, shown } from './control.ts';
import { DROP_HEADER_ALLOWANCE, DROP_MAX_CONTROL, DROP_TEMP_PREFIX, MAILDROP_MAGIC, type NewMessage, dropError, enqueue } from './enqueue.ts';
import { type EntryLock, lockEntry } from './entry-lock.ts';
import { type QueueId, isQueueId, newQueueId } from './id.ts';
import { CORRUPT_DIR, HOLD_DIR, PREFIX } from './state.ts';
import { fsyncDir } from './files.ts';
import { REFUSED_PREFIX, claimDropped, claimedPath, discardClaimed, pickupDir, quarantineDropped, syncClaims } from './transition.ts';

/** How long a submission may stay unfinished (a temporary name, or linked to one) before it is refused. */
const WRITER_GRACE_MS = 3600 * 1000;
const MAGIC = Buffer.from(MAILDROP_MAGIC);
const OPEN_FLAGS = fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOFOLLOW;
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // a BOM is not V1

interface Claim {
  id: QueueId;
  lock: EntryLock;
  /** Its name in the maildrop; the ID for a claim resumed after a crash. */
  name: string;
  /** For the log: maildrop/NAME, or pickup/ID. */
  label: string;
}

interface Refusal {
  refuse: string;
  uid: number;
}

/** Returns the IDs moved into the queue. */
export async function pickup(config: Config): Promise<QueueId[]> {
  const claims = resumeClaims(config);
  try {
    claims.push(...claimMaildrop(config));
  } catch (e) {
    for (const c of claims) c.lock.release();
    throw e;
  }
  const moved: QueueId[] = [];
  if (claims.length === 0) return moved;
  const domains = localDomains(config);
  for (const c of claims) {
    try {
      const id = await pickupClaimed(config, c, domains);
      if (id) moved.push(id);
    } catch (e) {
      // The queue cannot be written (disk full, ...): the claim waits for the next run.
      log(config, '', `${c.label}: cannot pick up: ${(e as Error).message}`);
    } finally {
      c.lock.release();
    }
  }
  fsyncDir(pickupDir(config)); // the claims' removals, before their entries can be delivered
  return moved;
}

// ---- 1 and 2: judge each entry by lstat, claim or refuse it -------------------

function claimMaildrop(config: Config): Claim[] {
  const claims: Claim[] = [];
  const now = Date.now();
  for (const name of listMaildrop(config)) {
    const label = `maildrop/${printable(name)}`;
    try {
      const verdict = judgeEntry(config, name, now);
      if (verdict === 'leave') continue;
      if (verdict !== 'claim') {
        refuse(config, 'maildrop', name, label, verdict);
        continue;
      }
      const id = newQueueId();
      const lock = lockEntry(config, id);
      if (!lock) continue;
      let claimed = false;
      try {
        claimed = claimDropped(config, name, id); // false: taken by another picker, or withdrawn by its owner
      } finally {
        if (claimed) claims.push({ id, lock, name, label });
        else lock.release();
      }
    } catch (e) {
      log(config, '', `${label}: cannot pick up: ${(e as Error).message}`);
    }
  }
  if (claims.length === 0) return claims;
  try {
    syncClaims(config);
  } catch (e) {
    for (const c of claims) c.lock.release(); // claimed, not queued: the next run resumes them
    throw e;
  }
  return claims;
}

/** The maildrop's names, in the order written: each begins with its writer's queue ID, which sorts by time. */
function listMaildrop(config: Config): string[] {
  try {
    return fs.readdirSync(config.maildropDir).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Claims a picker left when it stopped (crash, kill); those a live picker holds are its own. */
function resumeClaims(config: Config): Claim[] {
  let names: string[];
  try {
    names = fs.readdirSync(pickupDir(config));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const claims: Claim[] = [];
  for (const id of names.filter(isQueueId)) {
    const lock = lockEntry(config, id);
    if (lock) claims.push({ id, lock, name: id, label: `pickup/${id}` });
  }
  return claims;
}

function judgeEntry(config: Config, name: string, now: number): 'claim' | 'leave' | Refusal {
  if (name.startsWith(REFUSED_PREFIX)) return 'leave'; // refused and logged already
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path.join(config.maildropDir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'leave'; // taken or withdrawn meanwhile
    throw e;
  }
  const unfinished = name.startsWith(DROP_TEMP_PREFIX) || (st.isFile() && st.nlink === 2 && linkedToTemp(config, name, st));
  if (unfinished) {
    // The owner may set mtime, not ctime: the older of the two cannot be kept young.
    const old = now - Math.min(st.mtimeMs, st.ctimeMs) > WRITER_GRACE_MS;
    return old ? { refuse: 'an unfinished submission over an hour old', uid: st.uid } : 'leave';
  }
  const problem = entryProblem(st);
  return problem ? { refuse: problem, uid: st.uid } : 'claim';
}

/** NAME is dropMessage's link, made before it unlinks .tmp.NAME: the same inode under both names. */
function linkedToTemp(config: Config, name: string, st: fs.Stats): boolean {
  try {
    const t = fs.lstatSync(path.join(config.maildropDir, DROP_TEMP_PREFIX + name));
    return t.ino === st.ino && t.dev === st.dev;
  } catch {
    return false;
  }
}

/** Why an entry (by lstat or fstat) cannot be a drop file; undefined when it may be one. */
function entryProblem(st: fs.Stats): string | undefined {
  if (!st.isFile()) return `not a regular file: ${kindOf(st)}`;
  if (st.nlink !== 1) return `a file with ${st.nlink} hard links`;
  return undefined;
}

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  return 'an unknown kind of file';
}

/** Into queue_dir/corrupt, logged once: an entry already gone was handled by another picker. */
function refuse(config: Config, from: 'maildrop' | 'pickup', name: string, label: string, r: Refusal, dropName = name): void {
  const kept = quarantineDropped(config, from, name, dropName);
  if (kept) log(config, '', `${label}: quarantined: ${r.refuse} (owner uid ${r.uid}); kept as ${kept}`);
}

/** A file name for a log line: anything but printable ASCII shown as "?". */
function printable(name: string): string {
  return name.replace(/[^\x21-\x7e]/g, '?');
}

// ---- 3 and 4: check a claimed file and queue it ---------------------------------

async function pickupClaimed(config: Config, c: Claim, domains: Set<string>): Promise<QueueId | undefined> {
  if ([config.queueDir, path.join(config.queueDir, HOLD_DIR), path.join(config.queueDir, CORRUPT_DIR)].map((d) => path.join(d, PREFIX.control + c.id)).some((f) => fs.existsSync(f))) {
    discardClaimed(config, c.id); // committed before a crash: the queue has it
    return undefined;
  }
  const read = readClaimed(config, c.id);
  if (!read) return undefined;
  const drop = 'why' in read ? read.why : parseDrop(config, read.bytes);
  if (typeof drop === 'string') {
    refuse(config, 'pickup', c.id, c.label, { refuse: drop, uid: read.uid }, c.name);
    return undefined;
  }
  const { message, msgid } = submission(config, c.id, drop, read.uid, domains);
  const id = await enqueue(config, message);
  discardClaimed(config, c.id);
  log(config, id, [
    ['from', `<${message.sender}>`],
    ['size', message.data.length],
    ['class', 0],
    ['nrcpts', message.recipients.length],
    ['msgid', msgid],
    ['relay', `${message.submitter}@localhost`],
  ]);
  return id;
}

type Read = { uid: number; bytes: Buffer } | { uid: number; why: string };

/** The claimed file's bytes, read through one descriptor; undefined when it is gone. */
function readClaimed(config: Config, id: QueueId): Read | undefined {
  const file = claimedPath(config, id);
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const problem = entryProblem(st);
  if (problem) return { uid: st.uid, why: problem };
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    return { uid: st.uid, why: `cannot be opened (${code ?? (e as Error).message})` };
  }
  try {
    const f = fs.fstatSync(fd);
    const max = MAGIC.length + DROP_MAX_CONTROL + 1 + config.maxMessageSize + DROP_HEADER_ALLOWANCE;
    const why =
      entryProblem(f) ??
      (f.ino !== st.ino || f.dev !== st.dev ? 'replaced while opened' : undefined) ??
      (f.size > max ? `${f.size} bytes (at most ${max})` : undefined);
    if (why) return { uid: f.uid, why };
    const bytes = Buffer.alloc(f.size + 1); // one byte more: a file still growing is caught
    let n = 0;
    for (let got = 1; got > 0 && n < bytes.length; n += got) got = fs.readSync(fd, bytes, n, bytes.length - n, n);
    if (n !== f.size) return { uid: f.uid, why: 'changed while read' };
    return { uid: f.uid, bytes: bytes.subarray(0, n) };
  } finally {
    fs.closeSync(fd);
  }
}

interface Dropped {
  envelope: Envelope;
  data: Buffer;
}

/** The drop file as dropMessage writes it, every record checked; a string says what is wrong. */
function parseDrop(config: Config, bytes: Buffer): Dropped | string {
  if (!bytes.subarray(0, MAGIC.length).equals(MAGIC)) return 'not a mailtk maildrop file';
  const end = bytes.indexOf('\n\n', MAGIC.length);
  if (end < 0) return 'its records have no end';
  const head = bytes.subarray(MAGIC.length, end + 1);
  const data = bytes.subarray(end + 2);
  if (head.length > DROP_MAX_CONTROL) return `records of ${head.length} bytes (at most ${DROP_MAX_CONTROL})`;
  let text: string;
  try {
    text = UTF8.decode(head);
  } catch {
    return 'its records are not UTF-8';
  }
  const bad = recordsError(text);
  if (bad) return bad;
  let c;
  try {
    c = parseControl(text);
  } catch (e) {
    if (e instanceof ControlParseError) return e.message;
    throw e;
  }
  if (c.size !== data.length) return `its L record says ${c.size} bytes, the message has ${data.length}`;
  return dropError(config, c, data.length, head.length) ?? { envelope: c, data };
}

const DIGITS = /^\d{1,15}$/;
/** Each record a drop file may hold (serializeControl's, for a new entry), with its grammar. */
const RECORDS = new Map<string, RegExp>([
  ['I', /^[\x21-\x7e]{1,64}$/], // queue ID: ignored, pickup gives one
  ['T', DIGITS], // arrival: ignored, pickup's own time
  ['S', /^[^\t]*$/], // sender: checked as an address by dropError
  ['U', /^[^\t]{0,256}$/], // submitter: ignored, the file's owner is
  ['Z', /^[^\t]*$/], // ENVID
  ['E', /^(full|hdrs)$/], // RET
  ['B', /^[^\t]*$/], // BODY
  ['H', DIGITS], // hop count: ignored, counted in the text
  ['N', DIGITS], // attempts, last and next try: ignored, a new entry's
  ['K', DIGITS],
  ['Y', DIGITS],
  ['L', DIGITS], // the message text's length
  ['G', /^[A-Za-z]{0,16}$/], // flags: ignored
  ['R', /^[^\t]*\t[^\t]*\t[^\t]+$/], // NOTIFY, ORCPT, address
]);
const REQUIRED = ['I', 'S', 'L', 'R'];
const MAX_RECORD = 2048;
/** Any control character but the tab that separates R's fields. */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;

function recordsError(text: string): string | undefined {
  const lines = text.slice(0, -1).split('\n');
  if (lines[0] !== 'V1') return `first record ${shown(lines[0])}, not V1`;
  const seen = new Set<string>();
  for (const line of lines.slice(1)) {
    const type = line.charAt(0);
    const grammar = RECORDS.get(type);
    if (!grammar) return `unknown record ${shown(line)}`;
    if (line.length > MAX_RECORD) return `a ${type} record of ${line.length} characters (at most ${MAX_RECORD})`;
    if (CONTROL.test(line)) return `a control character in ${shown(line)}`;
    if (!grammar.test(line.slice(1))) return `bad ${type} record ${shown(line)}`;
    if (type !== 'R' && seen.has(type)) return `two ${type} records`;
    seen.add(type);
  }
  const missing = REQUIRED.find((t) => !seen.has(t));
  return missing && `no ${missing} record`;
}

/**
 * The message as the queue gets it: the envelope checked, the sender as the
 * file's owner may give it, the hop count from the text, a fresh arrival time.
 */
function submission(config: Config, id: QueueId, d: Dropped, uid: number, domains: Set<string>): { message: NewMessage; msgid: string | undefined } {
  const login = lookupUid(config, uid)?.name ?? `#${uid}`;
  let data = d.data;
  let sender = d.envelope.sender;
  const a = splitAddress(sender);
  const local = sender !== '' && (a.domain === '' || isLocalDomain(domains, a.domain));
  if (uid !== 0 && local && a.local.toLowerCase() !== login.toLowerCase()) {
    const warning = `X-Authentication-Warning: ${config.hostname}: ${login} set sender to ${sender} using -f\n`;
    data = Buffer.concat([Buffer.from(warning), data]);
    sender = `${login}@${config.hostname}`;
  }
  const { envid, ret, bodyType, recipients } = d.envelope;
  const message = { id, sender, submitter: login, recipients, data, envid, ret, bodyType, hops: countHops(config, id, d.data) };
  return { message, msgid: getHeader(splitMessage(d.data).headers, 'Message-ID') };
}

/**
 * Hops made before this host, counted as submission counts them (the trace
 * fields prepareSubmission finds), less the submitting sendmail's own
 * Received field, which submission puts first: the count the message gets
 * when root submits it directly.
 */
function countHops(config: Config, id: QueueId, text: Buffer): number {
  const { hops } = prepareSubmission(text, {
    queueId: id,
    hostname: config.hostname,
    envelopeSender: '',
    login: '',
    extractRecipients: false,
    receivedFrom: '',
    now: new Date(),
    bareLocalDomain: config.hostname,
  });
  const own = /^Received[ \t]*:/i.test(text.toString('latin1', 0, 16)) ? 1 : 0;
  return Math.max(0, hops - own);
}
