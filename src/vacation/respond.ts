// What vacation does with one message, and its -i, -x and -l chores. The
// order is RFC 3834's: first whether the message may be answered at all
// (policy.ts), then, under the database's lock, whether this sender is
// excluded or was answered within the interval; only then is the reply sent,
// and the sender recorded once sendmail has taken it. A reply that could not
// be handed over is not recorded and exits EX_TEMPFAIL, so mailtk tries the
// |vacation delivery again later (the user's own copy is not affected).

import fs from 'node:fs';
import path from 'node:path';
import { asctime } from '../message/date.ts';
import { MailError } from '../message/status.ts';
import type { VacationArgs } from './args.ts';
import { DEFAULT_INTERVAL, FOREVER, isExcluded, isStorable, loadDb, prune, repliedRecently, updateDb, type Interval } from './db.ts';
import { readIncoming } from './incoming.ts';
import { judge } from './policy.ts';
import { buildReply } from './reply.ts';

export interface VacationFiles {
  db: string;
  msg: string;
}

/** ~/.vacation.db and ~/.vacation.msg, or -f and -m (relative to the home, as in sendmail's vacation). */
export function vacationFiles(home: string, a: VacationArgs): VacationFiles {
  return { db: path.resolve(home, a.dbFile ?? '.vacation.db'), msg: path.resolve(home, a.msgFile ?? '.vacation.msg') };
}

export interface Responder {
  /** The user's mailbox, for the reply's From: when ~/.vacation.msg has none. */
  from: string;
  isMine: (address: string) => boolean;
  send: (message: Buffer, to: string) => Promise<void>;
  now?: () => number;
}

/** Answer the message on `input` or not; returns what happened, for -d. */
export async function respond(a: VacationArgs, files: VacationFiles, input: Buffer, env: NodeJS.ProcessEnv, r: Responder): Promise<string> {
  const msg = readIncoming(input, env);
  if (msg.sender === undefined) throw new MailError('bad-input', 'no envelope sender: no SENDER, no From_ line, no Return-Path:');
  const verdict = judge({ headers: msg.headers, sender: msg.sender }, r.isMine, !a.skipAddressCheck);
  if (!verdict.answer) return `no reply to <${msg.sender}>: ${verdict.why}`;
  const to = a.replyTo ?? msg.sender;
  if (!isStorable(to)) return `no reply to <${to}>: not an address vacation can keep`;
  let template: Buffer;
  try {
    template = fs.readFileSync(files.msg);
  } catch (e) {
    throw new MailError('no-input', `cannot read the reply: ${(e as Error).message}`, { file: files.msg });
  }
  let outcome = `answered <${to}>`;
  await updateDb(files.db, async (db) => {
    const interval = a.interval ?? db.interval ?? DEFAULT_INTERVAL;
    const now = Math.floor((r.now?.() ?? Date.now()) / 1000);
    if (isExcluded(db, to) || isExcluded(db, msg.sender!)) {
      outcome = `no reply to <${to}>: excluded (vacation -x)`;
      return false;
    }
    if (repliedRecently(db, to, now, interval)) {
      outcome = `no reply to <${to}>: answered already within ${describeInterval(interval)}`;
      return false;
    }
    await r.send(buildReply({ template, original: msg.headers, to, from: r.from }), to);
    prune(db, now, interval);
    db.replies.set(to.toLowerCase(), now);
    return true;
  });
  return outcome;
}

function describeInterval(i: Interval): string {
  return i === FOREVER ? 'all time' : `${i / 86400} days`;
}

/** vacation -i [-r N]: forget every reply and exclusion; keep -r as the interval. */
export async function initDb(a: VacationArgs, files: VacationFiles): Promise<void> {
  await updateDb(files.db, (db) => {
    db.interval = a.interval;
    db.excluded = [];
    db.replies.clear();
    return true;
  });
}

/** vacation -x: one address, or @domain, a line on standard input. */
export async function addExclusions(files: VacationFiles, text: string): Promise<number> {
  const add = text.split(/\r?\n/).map((l) => l.trim().toLowerCase()).filter((l) => l && !l.startsWith('#') && isStorable(l));
  await updateDb(files.db, (db) => {
    db.excluded.push(...add.filter((x) => !db.excluded.includes(x)));
    return true;
  });
  return add.length;
}

/** vacation -l: the interval, the exclusions and each answered sender with the time. */
export function listDb(files: VacationFiles): string {
  const db = loadDb(files.db);
  const lines = [`interval ${db.interval === undefined ? `${DEFAULT_INTERVAL} (default)` : db.interval}`];
  for (const x of db.excluded) lines.push(`exclude ${x}`);
  for (const [who, at] of db.replies) lines.push(`${who.padEnd(40)} ${asctime(new Date(at * 1000))}`);
  return lines.join('\n') + '\n';
}
