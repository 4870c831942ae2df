// The queue runner: the only code that delivers. A run picks up the
// maildrop, then takes the committed entries that are due in arrival order
// (a stat each, see scan.ts; a run from the command line takes them all), a
// batch at a time:
// each entry is locked (activate), its recipients expanded through aliases
// and .forward, and deliveries to one mailbox across the whole batch are
// appended under one dotlock and one fsync (the batching is why a run beats
// per-message delivery). Then each entry is settled: delivered destinations
// crossed off, permanent failures bounced, temporary ones deferred with
// backoff (or bounced once queue_return has passed), and the entry finished
// when nothing is left. The DSNs a run makes are delivered by the same run,
// after its batches. A destination found dead is not tried again in the run.
// An entry whose message is not whole (length, checksum) is never
// delivered: it is set aside in corrupt/ and postmaster is told. Two runners
// never deliver one entry at once: the lock is per entry, and a runner skips
// what another holds. Time comes from opts.clock, so tests move it.

import type { Config } from '../config/index.ts';
import { systemUser } from '../config/users.ts';
import { formatDuration, localDomains } from '../config/index.ts';
import { formatDelay, holdLines, log } from '../log/index.ts';
import { type AliasTable, type Destination, expandRecipient, openAliases } from '../aliases/index.ts';
import { type DeliveryStatus, FAILURES, MailError, isTemporary, statusOf } from '../message/status.ts';
import {
  type ActiveEntry,
  DamagedEntry,
  type Deferral,
  type Placement,
  activate,
  crossOff,
  defer,
  discardEntry,
  finishAll,
  parseNotify,
  pickup,
  placedKey,
  quarantine,
  recordPlacement,
  scanQueue,
  step,
} from '../queue/index.ts';
import { type DsnRecipient, FLAG_DOUBLE, FLAG_DSN, enqueueDamageNotice, enqueueDsn } from '../queue/bounce.ts';
import { allLists, deliverToList, expireLists, routeList } from '../lists/index.ts';
import { applyVerdict, type Verdict } from '../sieve/index.ts';
import { type LocalAgent, inProcessAgent } from './local-agent.ts';
import { frameForProgram } from './frame.ts';
import { deliverToVirtual } from './virtual.ts';
import type { DeadRoutes, RemoteJob, RemoteOutcome, RemoteRecipient } from './remote.ts';

export interface RunOptions {
  ids?: string[];
  filters?: Array<{ kind: 'I' | 'R' | 'S'; negate: boolean; substr: string }>;
  /** Try entries whose next-try time has not come (-qf, -qI, -qR, -qS, an ID named). */
  force: boolean;
  /** The time, in ms since the epoch (Date.now unless a test moves it). */
  clock?: () => number;
  verbose: boolean;
  /** Called with a line of progress for -v (defaults to stdout). */
  say?: (line: string) => void;
  /** Who does the deliveries that need someone's identity (default: this process). */
  agent?: LocalAgent;
}

export interface RunSummary {
  tried: number;
  delivered: number;
  deferred: number;
  bounced: number;
}

const BATCH = 64;

interface Attempt {
  entry: Loaded;
  rcpt: number;
  dest: Destination;
  result?: DeliveryStatus | 'ok';
  /** For remote attempts: the log's relay= and the server's words on accepting. */
  relay?: string;
  reply?: string;
  /** For mailbox attempts: where an interrupted run placed this copy. */
  placed?: Placement;
  /** For remote attempts: not tried, the destination was found dead earlier in the run. */
  suspended?: boolean;
}

interface Loaded {
  active: ActiveEntry;
  data: Buffer;
  attempts: Attempt[];
}

interface Ctx {
  config: Config;
  agent: LocalAgent;
  aliases: AliasTable;
  localDomains: Set<string>;
  opts: RunOptions;
  summary: RunSummary;
  now: () => number;
  /** Destinations found dead in this run: the rest of their mail waits without trying. */
  dead: DeadRoutes;
  /** DSNs and notices this run queued: delivered before it ends. */
  made: string[];
  /** The mailing lists (LIST@DOMAIN) that exist, read once a run. */
  lists: Set<string>;
}

/** Rounds of a run's own DSNs: a bounce, its double bounce, and one to spare. */
const DSN_ROUNDS = 3;

export async function runQueue(config: Config, opts: RunOptions): Promise<RunSummary> {
  const summary: RunSummary = { tried: 0, delivered: 0, deferred: 0, bounced: 0 };
  const now = opts.clock ?? Date.now;
  // The maildrop is emptied by root's queue owner (mail_owner, or root itself); an ordinary user's own queue has none in use.
  if (process.geteuid?.() === 0 || isMailOwner(config)) await pickup(config);
  const scan = scanQueue(config, opts.force ? undefined : now());
  for (const id of scan.abandoned) {
    // Never acknowledged: its writer died before the commit point.
    discardEntry(config, id);
    log(config, id, `removed tf${id}, left uncommitted by a writer that stopped over an hour ago`);
  }
  let ids = opts.ids ?? scan.ids;
  for (const f of opts.filters ?? []) {
    if (f.kind === 'I') ids = ids.filter((id) => id.includes(f.substr) !== f.negate);
  }
  // The mailing lists' periodic work (expired confirmations and held posts, stale bounce counts): full runs only.
  if (!opts.ids) ids = [...ids, ...(await expireLists(config, now()))];
  if (ids.length === 0) return summary;
  const ctx: Ctx = {
    config, agent: opts.agent ?? inProcessAgent, aliases: openAliases(config), localDomains: localDomains(config), opts, summary,
    now, dead: new Map(), made: [], lists: new Set(allLists(config)),
  };
  try {
    await deliverIds(ctx, ids);
    // The run's own DSNs go now, whatever the filters: a bounce is never left for the next run.
    for (let round = 0; round < DSN_ROUNDS && ctx.made.length; round++) await deliverIds(ctx, ctx.made.splice(0), true);
  } finally {
    ctx.aliases.close();
  }
  return summary;
}

async function deliverIds(ctx: Ctx, ids: string[], own = false): Promise<void> {
  for (let i = 0; i < ids.length; i += BATCH) {
    const batch = await lockBatch(ctx, ids.slice(i, i + BATCH), own);
    if (!batch.length) continue;
    // One write of the log for the batch's lines.
    const flush = holdLines(ctx.config);
    try {
      await deliverBatch(ctx, batch);
    } finally {
      flush();
    }
  }
}

function wanted(ctx: Ctx, a: ActiveEntry): boolean {
  const c = a.control;
  for (const f of ctx.opts.filters ?? []) {
    if (f.kind === 'R' && c.recipients.some((r) => r.address.toLowerCase().includes(f.substr.toLowerCase())) === f.negate) return false;
    if (f.kind === 'S' && c.sender.toLowerCase().includes(f.substr.toLowerCase()) === f.negate) return false;
  }
  return true;
}

async function lockBatch(ctx: Ctx, ids: string[], own: boolean): Promise<Loaded[]> {
  const out: Loaded[] = [];
  for (const id of ids) {
    let active: ActiveEntry | undefined;
    try {
      active = activate(ctx.config, id);
    } catch (e) {
      log(ctx.config, id, `SYSERR: ${(e as Error).message}`);
      if (e instanceof DamagedEntry && e.where) await tellPostmaster(ctx, id, e.message, e.where, e.control);
      continue;
    }
    if (!active) continue;
    if (!own && !wanted(ctx, active)) {
      await active.release();
      continue;
    }
    let data: Buffer;
    try {
      data = active.message();
    } catch (e) {
      await active.release();
      if (!(e instanceof DamagedEntry)) {
        log(ctx.config, id, `SYSERR: cannot read queue entry: ${(e as Error).message}`);
        continue;
      }
      let where = '';
      try {
        where = quarantine(ctx.config, id);
      } catch (q) {
        log(ctx.config, id, `SYSERR: damaged queue entry (${e.message}) could not be set aside: ${(q as Error).message}`);
        continue;
      }
      log(ctx.config, id, `SYSERR: queue entry damaged (${e.message}); not delivered, moved to ${where}`);
      await tellPostmaster(ctx, id, `${e.message}; moved to ${where}`, where, active.control);
      continue;
    }
    out.push({ active, data, attempts: [] });
  }
  return out;
}

async function tellPostmaster(ctx: Ctx, id: string, why: string, where: string, c?: ActiveEntry['control']): Promise<void> {
  try {
    const notice = await enqueueDamageNotice(ctx.config, id, why, where, c);
    ctx.made.push(notice);
    log(ctx.config, id, `${notice}: postmaster notify: queue entry damaged`);
  } catch (e) {
    log(ctx.config, id, `SYSERR: cannot tell postmaster of the damaged queue entry: ${(e as Error).message}`);
  }
}

/** Expand every pending recipient of an entry into attempts, skipping what is crossed off. */
async function plan(ctx: Ctx, e: Loaded): Promise<void> {
  const c = e.active.control;
  const seen = new Set<string>();
  for (const [i, r] of c.recipients.entries()) {
    let dests: Destination[];
    if (c.hops > ctx.config.maxHopCount) {
      const status = { status: '5.4.6', text: `Too many hops ${c.hops} (${ctx.config.maxHopCount} max)` };
      dests = [{ kind: 'error', key: `error:${r.address}`, original: r.address, address: r.address, status }];
    } else if (routeList(ctx.lists, ctx.config.hostname, r.address)) {
      dests = [{ kind: 'list', key: `list:${r.address.toLowerCase()}`, original: r.address, address: r.address }];
    } else {
      try {
        dests = await expandRecipient({ config: ctx.config, aliases: ctx.aliases, localDomains: ctx.localDomains, lists: ctx.agent.lists }, r.address);
      } catch (err) {
        const s = statusOf(err);
        const status = err instanceof MailError ? s : { status: '4.3.0', text: s.text };
        dests = [{ kind: 'error', key: `error:${r.address}`, original: r.address, address: r.address, status }];
      }
    }
    for (const d of dests) {
      if (c.journal.done.get(i)?.has(d.key) || c.journal.failed.get(i)?.has(d.key)) continue;
      if (seen.has(d.key)) {
        e.attempts.push({ entry: e, rcpt: i, dest: d, result: 'ok' }); // same target reached twice: once is enough
        continue;
      }
      seen.add(d.key);
      // A mailbox copy a runner that died may have written: the agent looks for it before writing.
      const placed = d.kind === 'local' ? c.journal.placed.get(placedKey(i, d.key)) : undefined;
      e.attempts.push({ entry: e, rcpt: i, dest: d, placed });
    }
  }
}

async function deliverBatch(ctx: Ctx, batch: Loaded[]): Promise<void> {
  for (const e of batch) await plan(ctx, e);
  const all = batch.flatMap((e) => e.attempts.filter((a) => a.result === undefined));
  const started = ctx.now();
  // One dotlock and one fsync per mailbox for the whole batch; or all of them to the mailbox_transport's LMTP server.
  const viaLmtp = ctx.config.mailboxTransport !== '';
  const byUser = new Map<string, Attempt[]>();
  for (const a of all) {
    if (a.dest.kind === 'local' && !viaLmtp) {
      const list = byUser.get(a.dest.user.name) ?? [];
      list.push(a);
      byUser.set(a.dest.user.name, list);
    }
  }
  for (const list of byUser.values()) {
    const d = list[0].dest as Extract<Destination, { kind: 'local' }>;
    if (d.user.name.includes('@')) {
      // A virtual user's mailbox: written by this runner (mail_owner's), under its quota.
      const messages = list.map((a) => ({ sender: a.entry.active.control.sender, recipient: d.user.name, data: a.entry.data, placed: a.placed }));
      const verdicts: Array<Verdict | undefined> = [];
      const results = await deliverToVirtual(ctx.config, d.user, messages, ctx.agent, (which, placed) => recordPlacements(ctx, which.map((j) => list[j]), placed), (j, v) => (verdicts[j] = v));
      for (const [j, a] of list.entries()) {
        const c = a.entry.active.control;
        a.result = results[j] === 'ok' ? await applyVerdict({ config: ctx.config, id: c.id, sender: c.sender, hops: c.hops, user: d.user.name, data: a.entry.data }, verdicts[j], ctx.made) : results[j];
      }
      continue;
    }
    try {
      const verdicts = await ctx.agent.appendToMbox(
        ctx.config,
        d.user,
        list.map((a) => ({ sender: a.entry.active.control.sender, recipient: (a.dest as typeof d).address, data: a.entry.data, placed: a.placed })),
        (placed) => recordPlacements(ctx, list, placed),
      );
      // The user's Sieve script may have rejected, redirected or answered (src/sieve).
      for (const [j, a] of list.entries()) {
        const c = a.entry.active.control;
        a.result = await applyVerdict({ config: ctx.config, id: c.id, sender: c.sender, hops: c.hops, user: d.user.name, data: a.entry.data }, verdicts[j], ctx.made);
      }
    } catch (err) {
      const s = statusOf(err);
      for (const a of list) a.result = s;
    }
  }
  if (byUser.size) step('delivery');
  if (viaLmtp) await handOver(ctx, all, 'local', async (jobs) => (await import('./lmtp.ts')).deliverLmtp(ctx.config, jobs, ctx.dead));
  await handOver(ctx, all, 'remote', async (jobs) => (await import('./remote.ts')).deliverRemote(ctx.config, jobs, ctx.dead));
  crossOffNow(ctx, all.filter((a) => (a.dest.kind === 'remote' || (viaLmtp && a.dest.kind === 'local')) && a.result === 'ok'));
  // Then entry by entry: its programs and files, then settle it. Finished
  // entries go together at the end (one .done fdatasync for the batch); a
  // runner killed before that repeats none of their deliveries: mbox copies
  // are found by their placement records, the rest are crossed off.
  const finished: Loaded[] = [];
  try {
    for (const e of batch) {
      for (const a of e.attempts) {
        if (a.result !== undefined) continue;
        a.result = await deliverOne(ctx, a);
        // Crossed off one by one: a runner killed later repeats none of them.
        if (a.result === 'ok') crossOffNow(ctx, [a]);
      }
      if (await settle(ctx, e, started)) finished.push(e);
    }
    finishAll(ctx.config, finished.map((e) => e.active));
  } catch (err) {
    for (const e of finished) log(ctx.config, e.active.control.id, `SYSERR: cannot remove finished queue entry: ${(err as Error).message}`);
  } finally {
    // Every entry of the batch: one left unsettled by an error must not stay locked by a runner
    // that lives on (the daemon's); release() leaves alone what settle() released already.
    await Promise.all(batch.map((e) => e.active.release()));
  }
}

/** Make these successes durable in their entries' journals before anything else runs. */
function crossOffNow(ctx: Ctx, attempts: Attempt[]): void {
  const byEntry = new Map<Loaded, Array<[number, string]>>();
  for (const a of attempts) byEntry.set(a.entry, [...(byEntry.get(a.entry) ?? []), [a.rcpt, a.dest.key]]);
  for (const [e, rows] of byEntry) {
    try {
      crossOff(e.active, rows, []);
    } catch (err) {
      log(ctx.config, e.active.control.id, `SYSERR: cannot cross off: ${(err as Error).message}`);
    }
  }
}

/**
 * Hand every remote attempt of the batch to deliverRemote at once (or every
 * mailbox attempt to deliverLmtp), one job per queue entry, so that it can
 * group recipients by destination. ORCPT is the sender's, else the address
 * before aliasing when it changed. remote.ts and lmtp.ts are loaded on
 * demand: local-only runs (sendmail -odi) need no TLS, DNS or sockets.
 */
async function handOver(ctx: Ctx, all: Attempt[], kind: 'remote' | 'local', deliver: (jobs: RemoteJob[]) => Promise<Map<RemoteRecipient, RemoteOutcome>>): Promise<void> {
  const jobs = new Map<Loaded, RemoteJob>();
  const attemptOf = new Map<RemoteRecipient, Attempt>();
  for (const a of all) {
    if (a.result !== undefined || a.dest.kind !== kind) continue;
    const c = a.entry.active.control;
    const r = c.recipients[a.rcpt];
    let job = jobs.get(a.entry);
    if (!job) {
      job = { id: c.id, sender: c.sender, recipients: [], data: a.entry.data, envid: c.envid, ret: c.ret, bodyType: c.bodyType };
      jobs.set(a.entry, job);
    }
    const address = (a.dest as Extract<Destination, { kind: typeof kind }>).address;
    const orcpt = r.orcpt ?? (r.address === address ? undefined : `rfc822;${r.address}`);
    const rr: RemoteRecipient = { address, notify: r.notify, orcpt };
    job.recipients.push(rr);
    attemptOf.set(rr, a);
  }
  if (jobs.size === 0) return;
  const outcomes = await deliver([...jobs.values()]);
  for (const [rr, a] of attemptOf) {
    const o = outcomes.get(rr)!;
    a.result = o.result;
    a.relay = o.relay;
    a.reply = o.reply;
    a.suspended = o.suspended;
  }
}

function recordPlacements(ctx: Ctx, list: Attempt[], placed: Placement[]): void {
  const byEntry = new Map<Loaded, Array<[number, string, Placement]>>();
  list.forEach((a, j) => {
    const p = placed[j];
    if (a.placed && p.offset === a.placed.offset && p.digest === a.placed.digest) {
      // Written by a runner that died before crossing it off: delivered already.
      log(ctx.config, a.entry.active.control.id, `to=<${a.dest.original}>, ${a.dest.key}: found in ${p.path} at ${p.offset} after an interrupted run; not delivered again`);
      return;
    }
    const rows = byEntry.get(a.entry) ?? [];
    rows.push([a.rcpt, a.dest.key, placed[j]]);
    byEntry.set(a.entry, rows);
  });
  for (const [e, rows] of byEntry) recordPlacement(e.active, rows);
}

async function deliverOne(ctx: Ctx, a: Attempt): Promise<DeliveryStatus | 'ok'> {
  const c = a.entry.active.control;
  const d = a.dest;
  try {
    switch (d.kind) {
      case 'program':
        await ctx.agent.runProgram({
          command: d.command,
          runAs: d.runAs,
          sender: c.sender,
          recipient: d.original,
          input: frameForProgram(c.sender, d.original, a.entry.data),
          timeoutMs: ctx.config.programTimeoutMs,
          configFile: ctx.config.file,
        });
        return 'ok';
      case 'file':
        await ctx.agent.appendToFile(d.path, d.runAs, { sender: c.sender, recipient: d.original, data: a.entry.data });
        return 'ok';
      case 'list':
        return await deliverToListAddress(ctx, a, d.address);
      case 'remote':
        return { status: '4.3.0', text: `remote recipient ${d.address} was not handed to remote delivery` };
      case 'error':
        return d.status;
      default:
        return { status: '4.3.0', text: `unexpected destination ${(d as Destination).kind}` };
    }
  } catch (err) {
    return statusOf(err);
  }
}

/** Mail to a list's address: handled here, as mail_owner; what it queues is delivered by this run. */
async function deliverToListAddress(ctx: Ctx, a: Attempt, address: string): Promise<DeliveryStatus | 'ok'> {
  const c = a.entry.active.control;
  const to = routeList(ctx.lists, ctx.config.hostname, address);
  if (!to) return { status: '4.3.0', text: `list address ${address} no longer routes to a list` };
  const outcome = await deliverToList(ctx.config, { to, sender: c.sender, data: a.entry.data, hops: c.hops, now: ctx.now() });
  ctx.made.push(...outcome.queued);
  log(ctx.config, c.id, `list ${to.list} (${to.role}): ${outcome.note}`);
  return outcome.refused ?? 'ok';
}

const MAILER: Record<Destination['kind'], string> = { local: 'local', program: 'prog', file: '*file*', remote: 'esmtp', error: 'error', list: 'list' };

function mailerOf(ctx: Ctx, d: Destination): string {
  return d.kind === 'local' && ctx.config.mailboxTransport ? 'lmtp' : MAILER[d.kind];
}

function logAttempt(ctx: Ctx, a: Attempt, started: number): void {
  const c = a.entry.active.control;
  const r = a.result!;
  const d = a.dest;
  const to = d.kind === 'program' ? `"|${d.command}"` : d.kind === 'file' ? d.path : `<${d.address}>`;
  const stat = r === 'ok' ? (a.reply ? `Sent (${a.reply})` : 'Sent') : isTemporary(r) ? `Deferred: ${r.text}` : r.text;
  log(ctx.config, c.id, [
    ['to', to],
    ['ctladdr', to === `<${a.dest.original}>` ? undefined : `<${a.dest.original}>`],
    ['delay', formatDelay(ctx.now() - c.arrival)],
    ['xdelay', formatDelay(ctx.now() - started)],
    ['mailer', mailerOf(ctx, a.dest)],
    ['relay', a.relay],
    ['dsn', r === 'ok' ? '2.0.0' : r.status],
    ['stat', stat],
  ]);
  if (ctx.opts.verbose) (ctx.opts.say ?? ((l) => process.stdout.write(l + '\n')))(`${to.replace(/^<|>$/g, '')}... ${stat}`);
}

function dsnRecipient(a: Attempt, action: DsnRecipient['action'], s: DeliveryStatus | 'ok'): DsnRecipient {
  const r = a.entry.active.control.recipients[a.rcpt];
  const final = 'address' in a.dest ? a.dest.address : a.dest.original;
  const ok = s === 'ok';
  return {
    original: r.orcpt ?? r.address,
    final,
    action,
    status: ok ? '2.0.0' : s.status,
    text: ok ? 'Delivered' : s.text,
    remote: ok ? undefined : s.remote,
    remoteMta: ok ? undefined : s.remoteMta,
  };
}

/**
 * Cross off, bounce or defer one entry after its attempts ran; true when
 * nothing is left, and the entry, still locked, is the caller's to finish.
 */
async function settle(ctx: Ctx, e: Loaded, started: number): Promise<boolean> {
  const { config } = ctx;
  const c = e.active.control;
  const now = ctx.now();
  const expired = now - c.arrival > config.queueReturnMs;
  const done: Array<[number, string]> = [];
  const failed: Attempt[] = [];
  const later: Attempt[] = [];
  const successes: Attempt[] = [];
  for (const a of e.attempts) {
    logAttempt(ctx, a, started);
    const r = a.result!;
    if (r === 'ok') {
      done.push([a.rcpt, a.dest.key]);
      if (parseNotify(c.recipients[a.rcpt].notify).success) successes.push(a);
    } else if (!isTemporary(r)) failed.push(a);
    else if (expired) {
      a.result = { status: FAILURES.expired.status, text: `Message could not be delivered for ${formatDuration(config.queueReturnMs)}: ${r.text}`, remote: r.remote, remoteMta: r.remoteMta };
      failed.push(a);
    } else later.push(a);
  }
  try {
    await notify(ctx, e, failed, 'failed');
    await notify(ctx, e, successes, 'delivered');
    ctx.summary.tried++;
    ctx.summary.delivered += done.length;
    ctx.summary.bounced += failed.length;
    if (later.length === 0) {
      // Bounced already: crossed off, so that a runner killed before the batch's end does not bounce again.
      if (failed.length) crossOff(e.active, [], failed.map((a) => [a.rcpt, a.dest.key]));
      return true;
    }
    crossOff(e.active, done, failed.map((a) => [a.rcpt, a.dest.key]));
    ctx.summary.deferred += later.length;
    const first = later[0].result as DeliveryStatus;
    // Nothing was tried (every destination was found dead earlier in this run): no attempt to count.
    const tried = done.length > 0 || failed.length > 0 || later.some((a) => !a.suspended);
    const update: Deferral = {
      attempts: tried ? c.attempts + 1 : c.attempts,
      lastAttempt: tried ? now : c.lastAttempt,
      nextTry: now + backoff(config, c.attempts),
      reason: tried || !c.reason ? `Deferred: ${first.text}` : c.reason,
      warned: c.warned,
    };
    if (!c.warned && now - c.arrival > config.queueWarnMs) {
      await notify(ctx, e, later.filter((a) => parseNotify(c.recipients[a.rcpt].notify).delay), 'delayed');
      update.warned = true;
    }
    defer(config, e.active, update);
  } catch (err) {
    log(config, c.id, `SYSERR: cannot settle queue entry: ${(err as Error).message}`);
  }
  await e.active.release();
  return false;
}

function backoff(config: Config, attempts: number): number {
  return Math.min(config.maxBackoffMs, config.minBackoffMs * 2 ** Math.min(attempts, 20));
}

/** Send a DSN for these attempts to whoever should hear of them. */
async function notify(ctx: Ctx, e: Loaded, attempts: Attempt[], kind: 'failed' | 'delayed' | 'delivered'): Promise<void> {
  const c = e.active.control;
  const wanted = kind === 'failed' ? attempts.filter((a) => !parseNotify(c.recipients[a.rcpt].notify).never) : attempts;
  if (wanted.length === 0) return;
  const action = kind;
  // Errors of an owner-LIST go to the owner; the rest to the envelope sender.
  const groups = new Map<string, Attempt[]>();
  for (const a of wanted) {
    const to = (kind === 'failed' ? a.dest.errorsTo : undefined) ?? c.sender;
    groups.set(to, [...(groups.get(to) ?? []), a]);
  }
  for (const [to, list] of groups) {
    const rcpts = list.map((a) => dsnRecipient(a, action, a.result!));
    const now = new Date(ctx.now());
    if (to !== '' && !c.flags.includes(FLAG_DSN)) {
      const id = await enqueueDsn(ctx.config, c, e.data, kind, to, rcpts, { now });
      if (id) ctx.made.push(id);
      if (id) log(ctx.config, c.id, `${id}: DSN: ${rcpts[0].text}`);
    } else if (kind === 'failed' && !c.flags.includes(FLAG_DOUBLE)) {
      // A bounce that cannot be delivered goes once to postmaster.
      const id = await enqueueDsn(ctx.config, c, e.data, kind, `postmaster@${ctx.config.hostname}`, rcpts, { double: true, now });
      if (id) ctx.made.push(id);
      if (id) log(ctx.config, c.id, `${id}: postmaster notify: ${rcpts[0].text}`);
    } else if (kind === 'failed') {
      log(ctx.config, c.id, `Losing double bounce: ${rcpts.map((r) => `${r.final}: ${r.text}`).join('; ')}`);
    }
  }
}

function isMailOwner(config: Config): boolean {
  return systemUser(config.mailOwner)?.uid === process.geteuid?.();
}
