// What `mailtk queue` does to the queue, as Postfix's postsuper does: hold,
// release, delete and requeue entries named by ID (or ALL), each through
// the queue's own transitions (src/queue/transition.ts: under the entry's
// lock, so that nothing is moved or removed under a delivery in progress),
// each change logged with who made it. Who may: root, or the queue's owner
// (mail_owner; for a queue an ordinary user keeps for himself, that user);
// anyone else may only look (mailq). Root does the work as the queue's
// owner (effective ids), so that what it makes in the queue is the owner's.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { invokingUser, lookupUid, systemUser } from '../config/users.ts';
import { log, openLogNow } from '../log/index.ts';
import { EX, MailError } from '../message/status.ts';
import { type AdminOutcome, type QueueId, type RemovedFrom, hold, isQueueId, listQueue, makeDue, remove, unhold } from '../queue/index.ts';

export type QueueAction = 'hold' | 'release' | 'delete' | 'requeue';

/** One ID's result: done (or where a deleted entry was), busy (being delivered), missing. */
export interface ActionResult {
  id: QueueId;
  result: 'done' | 'busy' | 'missing';
  /** For delete: where the entry was. */
  from?: RemovedFrom;
}

/** What each action did, in the log and on the terminal (Postfix's postsuper words). */
const DONE: Record<QueueAction, string> = {
  hold: 'placed on hold',
  release: 'released from hold',
  delete: 'removed',
  requeue: 'requeued (next try now)',
};

const WORK: Record<QueueAction, (config: Config, id: QueueId) => AdminOutcome | RemovedFrom> = {
  hold,
  release: unhold,
  delete: remove,
  requeue: (config, id) => makeDue(config, id),
};

/** The entries ALL stands for, for each action: those it could change. */
const ALL_OF: Record<QueueAction, (state: string) => boolean> = {
  hold: (s) => s !== 'held',
  release: (s) => s === 'held',
  delete: () => true,
  requeue: (s) => s !== 'held',
};

/** Refuse, naming what to do, unless this process may change the queue: root or the queue's owner. */
export function mayChangeQueue(config: Config, what: string): void {
  const euid = process.geteuid?.() ?? 0;
  if (euid === 0) return;
  let owner: number;
  try {
    owner = fs.statSync(config.queueDir).uid;
  } catch (e) {
    throw new MailError('queue-write', `cannot read the queue directory: ${(e as Error).message}`, { file: config.queueDir, cause: e });
  }
  if (owner === euid) return;
  const name = lookupUid(config, owner)?.name ?? (systemUser(config.mailOwner)?.uid === owner ? config.mailOwner : `uid ${owner}`);
  throw new MailError('not-allowed', `queue ${what}: only root or the queue's owner (${name}) may change ${config.queueDir}; run it as root (sudo), or list with mailq`);
}

/**
 * As root, act as the owner of queue_dir from here on (effective ids), the log opened first. The
 * invoking user is read before: the log names who made each change.
 */
export function becomeQueueOwner(config: Config): string {
  const who = whoAmI(config);
  if ((process.geteuid?.() ?? 0) !== 0) return who;
  openLogNow(config);
  const st = fs.statSync(config.queueDir, { throwIfNoEntry: false });
  if (st && st.uid !== 0) {
    process.setegid!(st.gid);
    process.seteuid!(st.uid);
  }
  return who;
}

/**
 * The invoking user for the log: the real user's name and, when the login
 * session's user differs (sudo, su), that one too, from the kernel's audit
 * login uid (/proc/self/loginuid), which sudo cannot change.
 */
export function whoAmI(config: Config): string {
  const me = invokingUser(config).name;
  let login: number | undefined;
  try {
    const n = Number(fs.readFileSync('/proc/self/loginuid', 'utf8').trim());
    if (Number.isInteger(n) && n >= 0 && n !== 4294967295) login = n;
  } catch {
    // no audit login uid: the real user alone
  }
  if (login === undefined || login === (process.getuid?.() ?? 0)) return me;
  return `${me} (login ${lookupUid(config, login)?.name ?? `uid ${login}`})`;
}

/** The IDs an action names: each checked, or ALL expanded to the entries the action could change. */
export function resolveIds(config: Config, action: QueueAction, args: string[]): QueueId[] {
  if (args.length === 0) throw new MailError('usage', `queue ${action}: name the entries (IDs as mailq shows them, or ALL)`);
  if (args.some((a) => a === 'ALL')) {
    if (args.length > 1) throw new MailError('usage', `queue ${action}: ALL stands alone`);
    return listQueue(config).filter((q) => ALL_OF[action](q.state)).map((q) => q.id);
  }
  for (const a of args) {
    // mailq marks an ID with '*' (being delivered) or '!' (held): a pasted mark is not part of it.
    const id = a.replace(/[*!]$/, '');
    if (!isQueueId(id)) throw new MailError('usage', `queue ${action}: "${a}" is not a queue ID (14 letters and digits, as mailq shows them)`);
  }
  return [...new Set(args.map((a) => a.replace(/[*!]$/, '')))];
}

/** Apply an action to each ID, logging each change with who made it. */
export function applyAction(config: Config, action: QueueAction, ids: QueueId[], who: string): ActionResult[] {
  return ids.map((id) => {
    const out = WORK[action](config, id);
    if (out === 'busy' || out === 'missing') return { id, result: out };
    const from = out === 'done' ? undefined : out;
    const where = from && from !== 'queue' ? ` from ${from}/` : '';
    log(config, id, `${DONE[action]}${where} by ${who} (mailtk queue ${action})`);
    return { id, result: 'done', from };
  });
}

/** A line for each result: what was done, or why not and what to do. */
export function describe(action: QueueAction, r: ActionResult): string {
  if (r.result === 'done') return `${r.id}: ${DONE[action]}${r.from && r.from !== 'queue' ? ` (was in ${r.from}/)` : ''}`;
  if (r.result === 'busy') return `${r.id}: being delivered now; nothing done: try again when the run is over (mailq marks it with '*')`;
  const where = action === 'release' ? 'not held' : action === 'requeue' ? 'not in the queue (a held entry is released first)' : 'not in the queue';
  return `${r.id}: ${where}; nothing done (mailq lists the entries)`;
}

/** sysexits for a batch: 0 when all were done; EX_TEMPFAIL when one was busy; else EX_NOINPUT for an unknown ID. */
export function exitFor(results: ActionResult[]): number {
  if (results.some((r) => r.result === 'busy')) return EX.TEMPFAIL;
  if (results.some((r) => r.result === 'missing')) return EX.NOINPUT;
  return EX.OK;
}
