// Remote delivery: the queue runner hands over every remote recipient of a
// batch; this module routes each domain (transport_map, smart_host, MX),
// groups recipients by destination, and answers per recipient 'ok' or a
// DeliveryStatus carrying the remote reply. How: one worker per destination,
// at most remote_concurrency at once; a worker walks the destination's hosts
// in MX order (a refused connection, a failed greeting or EHLO moves on) and
// keeps one connection for all its messages, each message one transaction
// for all its recipients there. Known limits: no 8-bit to 7-bit conversion
// for servers without 8BITMIME; one connection per destination (no
// parallel connections to one busy domain); IPv4 addresses tried before IPv6.

import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { type DeliveryStatus, FAILURES, type Failure, MailError } from '../message/status.ts';
import { type HostLookup, makeResolver, type MailResolver } from './dns.ts';
import { SmtpClientError, SmtpWire, type SmtpReply, replyMessage, replyText } from './smtp-client.ts';
import { hasEightBit, wireSize } from './smtp-client-data.ts';
import {
  type Envelope,
  type RcptResult,
  type RemoteRecipient,
  type Session,
  SessionRefused,
  TransactionLost,
  openSession,
  sendTransaction,
} from './smtp-client-session.ts';
import { type Route, type TransportMap, loadTransportMap, routeFor, smartHostRoute } from './transport-map.ts';

export type { RemoteRecipient } from './smtp-client-session.ts';

/** One queued message and those of its recipients that are remote. */
export interface RemoteJob {
  /** Queue ID, for log lines about hosts. */
  id: string;
  sender: string;
  recipients: RemoteRecipient[];
  /** The message as queued, LF line ends. */
  data: Buffer;
  envid?: string;
  ret?: 'full' | 'hdrs';
  bodyType?: string;
}

/** What became of one recipient. */
export interface RemoteOutcome {
  result: DeliveryStatus | 'ok';
  /** sendmail's relay= field, "mx.b.test. [127.0.0.1]"; absent when no host answered. */
  relay?: string;
  /** The server's words on taking the message ("Ok: queued as 4XYZ"), for stat=Sent (...). */
  reply?: string;
  /** Not tried: the destination was found dead earlier in the run. */
  suspended?: boolean;
}

// RFC 5321 4.5.3.1.8: every server takes at least 100 recipients a transaction.
export const MAX_RCPTS = 100;

/** A host to connect to; a UNIX-domain socket (LMTP) has its path as name and no address. */
export interface Target {
  name: string;
  address: string;
  port: number;
}

interface Parcel {
  job: RemoteJob;
  recipients: RemoteRecipient[];
}

interface Destination {
  key: string;
  route: Extract<Route, { kind: 'smtp' }>;
  parcels: Parcel[];
}

/**
 * Destinations a queue run found dead (every host failed, or the lookup did,
 * temporarily): the run's later mail for them is deferred with that failure
 * at once instead of waiting through the same time-outs entry after entry
 * (Postfix's qmgr does the same). One map a run; the next run tries again.
 */
export type DeadRoutes = Map<string, { status: DeliveryStatus; relay?: string }>;

interface Ctx {
  config: Config;
  dead: DeadRoutes;
  resolver: MailResolver;
  out: Map<RemoteRecipient, RemoteOutcome>;
  sizes: Map<RemoteJob, { wireSize: number; eightBit: boolean }>;
}

/** Deliver every job's recipients; one outcome per recipient object given. */
export async function deliverRemote(config: Config, jobs: RemoteJob[], dead: DeadRoutes = new Map()): Promise<Map<RemoteRecipient, RemoteOutcome>> {
  const out = new Map<RemoteRecipient, RemoteOutcome>();
  const routes = loadRoutes(config, jobs[0]?.id ?? '');
  if ('failure' in routes) {
    for (const job of jobs) for (const r of job.recipients) out.set(r, { result: routes.failure });
    return out;
  }
  const destinations = groupByDestination(jobs, routes, out);
  const ctx: Ctx = { config, dead, resolver: makeResolver(config), out, sizes: new Map() };
  await runLimited(destinations, config.remoteConcurrency, (d) => deliverToDestination(ctx, d));
  return out;
}

/** transport_map and smart_host; a broken one defers all remote mail rather than guess a route. */
function loadRoutes(config: Config, id: string): { map: TransportMap; smart: Route | undefined } | { failure: DeliveryStatus } {
  try {
    return { map: loadTransportMap(config), smart: smartHostRoute(config) };
  } catch (e) {
    if (!(e instanceof MailError)) throw e;
    log(config, id, `SYSERR: ${e.message}`);
    return { failure: { status: e.status, text: e.message } };
  }
}

function groupByDestination(jobs: RemoteJob[], routes: { map: TransportMap; smart: Route | undefined }, out: Map<RemoteRecipient, RemoteOutcome>): Destination[] {
  const byKey = new Map<string, Destination & { byJob: Map<RemoteJob, RemoteRecipient[]> }>();
  for (const job of jobs) {
    for (const r of job.recipients) {
      const at = r.address.lastIndexOf('@');
      if (at < 0) {
        out.set(r, { result: { status: FAILURES['bad-address'].status, text: `${r.address}: no domain to send to` } });
        continue;
      }
      const route = routeFor(routes.map, routes.smart, r.address.slice(at + 1));
      if (route.kind === 'error') {
        out.set(r, { result: route.status });
        continue;
      }
      const key = `${route.mx ? 'mx' : 'host'}:${route.host.toLowerCase()}:${route.port}`;
      const dest = byKey.get(key) ?? { key, route, parcels: [], byJob: new Map() };
      byKey.set(key, dest);
      dest.byJob.set(job, [...(dest.byJob.get(job) ?? []), r]);
    }
  }
  return [...byKey].map(([key, { route, byJob }]) => ({
    key,
    route,
    parcels: [...byJob].flatMap(([job, rcpts]) => chunk(rcpts, MAX_RCPTS).map((recipients) => ({ job, recipients }))),
  }));
}

async function deliverToDestination(ctx: Ctx, d: Destination): Promise<void> {
  const { route } = d;
  const known = ctx.dead.get(d.key);
  if (known) {
    const result = { ...known.status, text: `delivery temporarily suspended: ${known.status.text}` };
    for (const p of d.parcels) for (const r of p.recipients) ctx.out.set(r, { result, relay: known.relay, suspended: true });
    return;
  }
  const lookup: HostLookup = route.mx ? await ctx.resolver.mailHosts(route.host, ctx.config.hostname) : await ctx.resolver.directHost(route.host);
  if ('failure' in lookup) {
    for (const p of d.parcels) for (const r of p.recipients) ctx.out.set(r, { result: lookup.failure });
    if (lookup.failure.status.startsWith('4')) ctx.dead.set(d.key, { status: lookup.failure });
    return;
  }
  const targets = lookup.hosts.flatMap((h) => h.addresses.map((address) => ({ name: h.name, address, port: route.port })));
  const courier = new Courier(ctx, targets);
  try {
    for (const p of d.parcels) await courier.deliver(p);
  } finally {
    await courier.close();
  }
  const dead = courier.deadFailure();
  if (dead?.status.status.startsWith('4')) ctx.dead.set(d.key, dead);
}

/** A failure that belongs to a host, not to a recipient: try the next host. */
export interface HostFailure {
  status: DeliveryStatus;
  relay: string;
}

/**
 * Carries a destination's parcels over one connection, opening it (and
 * reopening it, further down the host list) as needed. When every host has
 * failed, the rest of the destination's parcels share that failure at once,
 * instead of each waiting through the same time-outs again.
 */
class Courier {
  private session: { s: Session; target: Target; used: boolean } | undefined;
  private next = 0;
  private dead: HostFailure | undefined;

  constructor(
    private readonly ctx: Ctx,
    private readonly targets: Target[],
  ) {}

  async deliver(p: Parcel): Promise<void> {
    const failures: HostFailure[] = [];
    let retriedReused = false;
    while (!this.dead) {
      const open = this.session ?? (await this.connectNext(p.job.id, failures));
      if (!open) break;
      try {
        const results = await sendTransaction(open.s, this.envelope(p), this.ctx.config.smtpTimeouts);
        open.used = true;
        this.record(p, results, open.target);
        if (!open.s.usable) this.drop();
        return;
      } catch (e) {
        if (!(e instanceof TransactionLost)) throw e;
        const wasReused = open.used;
        this.drop();
        const failure = hostFailure(open.target, e.error);
        this.logHost(p.job.id, failure.status.text);
        if (e.maybeDelivered) return this.settle(p, failure);
        failures.push(failure);
        // A kept connection may have been closed as idle: one fresh try at the same host.
        if (wasReused && !retriedReused) retriedReused = true;
        else this.next++;
      }
    }
    this.dead ??= worst(failures);
    this.settle(p, this.dead);
  }

  private async connectNext(id: string, failures: HostFailure[]): Promise<Courier['session']> {
    for (; this.next < this.targets.length; this.next++) {
      const target = this.targets[this.next];
      try {
        const s = await this.open(target, id);
        this.session = { s, target, used: false };
        return this.session;
      } catch (e) {
        if (!(e instanceof SmtpClientError || e instanceof SessionRefused)) throw e;
        const failure = hostFailure(target, e);
        this.logHost(id, failure.status.text);
        failures.push(failure);
      }
    }
    return undefined;
  }

  /** Connect and greet; at TLS level "may", a failed handshake is retried in the clear. */
  private async open(target: Target, id: string): Promise<Session> {
    const { config } = this.ctx;
    const opts = {
      helo: config.hostname,
      tls: config.smtpTlsLevel,
      servername: isIpLiteral(target.name) ? undefined : target.name,
      timeouts: config.smtpTimeouts,
    };
    for (const plain of [false, true]) {
      const wire = await SmtpWire.connect(target.address, target.port, target.name, config.smtpTimeouts.connect);
      try {
        const s = await openSession(wire, opts, plain);
        this.logTls(id, target, s);
        return s;
      } catch (e) {
        wire.close();
        const retry = !plain && config.smtpTlsLevel === 'may' && e instanceof SmtpClientError && e.kind === 'tls';
        if (!retry) throw e;
        this.logHost(id, `${e.message}; trying again without TLS`);
      }
    }
    throw new Error('unreachable: the plain retry either returns or throws');
  }

  /** Every host failed: the destination is dead for now. */
  deadFailure(): HostFailure | undefined {
    return this.dead;
  }

  private envelope(p: Parcel): Envelope {
    let size = this.ctx.sizes.get(p.job);
    if (!size) {
      size = { wireSize: wireSize(p.job.data), eightBit: hasEightBit(p.job.data) };
      this.ctx.sizes.set(p.job, size);
    }
    const { sender, data, envid, ret, bodyType } = p.job;
    return { sender, recipients: p.recipients, data, envid, ret, bodyType, ...size };
  }

  private record(p: Parcel, results: RcptResult[], target: Target): void {
    p.recipients.forEach((r, i) => this.ctx.out.set(r, outcomeOf(results[i], target)));
  }

  private settle(p: Parcel, f: HostFailure): void {
    for (const r of p.recipients) this.ctx.out.set(r, { result: f.status, relay: f.relay });
  }

  private drop(): void {
    this.session?.s.wire.close();
    this.session = undefined;
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = undefined;
    if (s) await s.s.wire.quit(this.ctx.config.smtpTimeouts.quit);
  }

  private logHost(id: string, text: string): void {
    log(this.ctx.config, id, text);
  }

  private logTls(id: string, target: Target, s: Session): void {
    const info = s.tls ? s.wire.tlsInfo() : undefined;
    if (!info) return;
    const verify = this.ctx.config.smtpTlsLevel === 'verify' ? 'OK' : 'NO';
    log(this.ctx.config, id, [
      ['STARTTLS', 'client'],
      ['relay', relayOf(target)],
      ['version', info.version],
      ['verify', verify],
      ['cipher', info.cipher],
    ]);
  }
}

/** What a recipient's result in a transaction means for the queue. */
export function outcomeOf(res: RcptResult, target: Target): RemoteOutcome {
  const relay = relayOf(target);
  if (res.ok) return { result: 'ok', relay, reply: replyMessage(res.reply) };
  if ('failure' in res) return { result: { status: FAILURES[res.failure].status, text: res.detail }, relay };
  return { result: remoteStatus(target, res.reply, res.command), relay };
}

/** A remote reply as a status: its own enhanced code, else the class's x.0.0. */
export function remoteStatus(target: Target, reply: SmtpReply, command: string): DeliveryStatus {
  const quoted = replyText(reply);
  const text = `host ${hostLabel(target)} said: ${quoted} (in reply to ${command} command)`;
  if (reply.code < 400 || reply.code > 599) {
    // A 2xx or 3xx where a refusal was expected is the server's bug; try again later.
    return { status: FAILURES['remote-protocol'].status, text: `${text}: unexpected reply`, remote: quoted, remoteMta: target.name };
  }
  const status = reply.enhanced ?? `${String(reply.code)[0]}.0.0`;
  return { status, text, remote: quoted, remoteMta: target.name };
}

export function hostFailure(target: Target, e: SmtpClientError | SessionRefused): HostFailure {
  const relay = relayOf(target);
  if (e instanceof SessionRefused) return { status: remoteStatus(target, e.reply, e.command), relay };
  const rows: Record<SmtpClientError['kind'], Failure> = {
    connect: 'connect-failed',
    timeout: 'connection-lost',
    lost: 'connection-lost',
    protocol: 'remote-protocol',
    tls: 'tls-failed',
    'no-tls': 'tls-unavailable',
  };
  return { status: { status: FAILURES[rows[e.kind]].status, text: e.message }, relay };
}

/** Of all hosts' failures: a temporary one if any (another try may work), else the last. */
function worst(failures: HostFailure[]): HostFailure {
  const temporary = failures.filter((f) => f.status.status.startsWith('4'));
  const pick = temporary.at(-1) ?? failures.at(-1);
  return pick ?? { status: { status: FAILURES['unroutable'].status, text: 'no mail host to try' }, relay: '' };
}

function isIpLiteral(name: string): boolean {
  return /^[\d.]+$/.test(name) || name.includes(':');
}

/** sendmail's form: "mx.b.test. [127.0.0.1]", or "[127.0.0.1] [127.0.0.1]" for an address literal. */
export function relayOf(t: Target): string {
  if (!t.address) return t.name;
  return `${isIpLiteral(t.name) ? `[${t.name}]` : `${t.name}.`} [${t.address}]`;
}

/** Postfix's form for texts: "mx.b.test[127.0.0.1]". */
function hostLabel(t: Target): string {
  if (!t.address) return t.name;
  return `${t.name}[${t.address}]`;
}

export function chunk<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Run `fn` over `items`, at most `limit` at a time. */
async function runLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
