// Connection control, one for every listener (SMTP, submission, POP3, IMAP):
// who gets a session slot. It counts sessions in all, per client address and
// per client subnet (IPv4 /24 and IPv6 /64 unless configured), knows when the
// listener is under stress (three quarters of the slots taken: Postfix's
// stress mode, where idle clients get a short timeout and each client a
// smaller share), and refuses at once: the refusal is written and the socket
// destroyed without waiting for the client, so a refused socket never holds
// a file descriptor or counts against any limit. When every slot is taken, a
// newcomer displaces the session idle longest (half a second at least, unless
// the newcomer is the site's own) among those that have not begun anything
// worth keeping (no login, no mail transaction), as Dovecot's login processes do ("Connection queue full"):
// an attacker holding slots from many addresses cannot lock everybody out,
// at the cost of such a session ending early. A subnet outside
// client_limit_exceptions may displace three times in ten seconds, so attackers
// who reconnect at once cannot churn the slots among themselves. Clients in
// client_limit_exceptions are spared the per-client limits, never the total.
// The protocol's own words for a refusal (421, * BYE, -ERR) are the caller's.

import net from 'node:net';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { type FdBudget, processFds } from './fd-budget.ts';
import { fail, formatReply } from './replies.ts';

/** Three quarters full: from here on, stress mode. */
export const STRESS_FRACTION = 0.75;
/** Under stress, each client address and subnet may hold this share of its usual number of sessions. */
const STRESS_CLIENT_SHARE = 0.5;
/**
 * A session is displaced only once it has been idle this long: a client that
 * reconnects at once cannot turn displacement into a loop that eats the CPU
 * (each slot changes hands at most twice a second).
 */
const DISPLACE_MIN_IDLE_MS = 500;
/**
 * A client subnet outside client_limit_exceptions may make room by displacing
 * DISPLACE_PER_SUBNET times in DISPLACE_WINDOW_MS: attackers who reconnect at
 * once from many addresses then cannot take the slots back from each other,
 * and from the site's clients, as fast as they are freed.
 */
const DISPLACE_PER_SUBNET = 3;
const DISPLACE_WINDOW_MS = 10_000;
/** At most one "accept failed" log line per this long (EMFILE comes in floods), and one refusal line per client and rule. */
const ACCEPT_ERROR_LOG_MS = 10_000;
const REFUSAL_LOG_MS = 10_000;

export interface ClientLimits {
  /** The name the log gives these limits ("smtp", "mailbox"), and the key prefix. */
  name: string;
  maxClients: number;
  maxPerAddress: number;
  maxPerSubnet: number;
}

/** Why a client was not let in; `key` is the setting that said no, for the log. */
export interface Refusal {
  why: 'busy' | 'address' | 'subnet';
  key: string;
}

/** What a session shows the control so that it may be displaced when the listener is full. */
export interface Displaceable {
  /** When it last did something, if it holds nothing worth keeping (no login, no transaction); else undefined. */
  idleSince(): number | undefined;
  /** Say goodbye and close now. */
  displace(): void;
  /** Stress began: take up the timeout that now applies. */
  rearmTimer(): void;
}

/** One admitted session's hold on its slot; release() is idempotent. */
export interface Slot {
  readonly ip: string;
  release(): void;
}

export class ConnControl {
  private readonly slots = new Map<SlotImpl, Displaceable | undefined>();
  private readonly perAddress = new Map<string, number>();
  private readonly perSubnet = new Map<string, number>();
  private exceptions = new net.BlockList();
  private readonly refusalLog = new LogThrottle(REFUSAL_LOG_MS);
  /** When each subnet last made room by displacing a session. */
  private readonly displacedFor = new Map<string, { start: number; n: number }>();
  private prefixes = { v4: 24, v6: 64 };
  private readonly fdLog = new LogThrottle(ACCEPT_ERROR_LOG_MS);

  constructor(private config: Config, private limits: ClientLimits, private readonly fds: FdBudget = processFds) {
    this.reload(config, limits);
  }

  reload(config: Config, limits: ClientLimits): void {
    this.config = config;
    this.limits = limits;
    this.exceptions = blockList(config.clientLimitExceptions);
    this.prefixes = { v4: config.clientIpv4PrefixLength, v6: config.clientIpv6PrefixLength };
  }

  get size(): number {
    return this.slots.size;
  }

  /** Three quarters of the slots or more are taken. */
  stressed(): boolean {
    return this.slots.size >= Math.ceil(this.limits.maxClients * STRESS_FRACTION);
  }

  /** Whether the per-client limits (counts and rates) spare this client. */
  exempt(ip: string): boolean {
    return this.exceptions.check(ip, net.isIPv4(ip) ? 'ipv4' : 'ipv6');
  }

  /** A slot for a client at `ip`, or why not (logged). A full listener first displaces an idle session. */
  admit(ip: string): Slot | Refusal {
    if (this.fds.tight()) {
      const { inUse, limit } = this.fds;
      this.fdLog.note('files', (more) =>
        log(this.config, '', `rejecting new ${this.limits.name} sessions: ${Math.max(0, limit! - inUse)} of ${limit} file descriptors left, the rest kept for the ${this.slots.size} sessions open; raise the daemon's open-file limit (ulimit -n, LimitNOFILE=)${more}`),
      );
      return { why: 'busy', key: 'open files' };
    }
    const refusal = this.check(ip);
    if (refusal) {
      this.refusalLog.note(`${ip} ${refusal.key}`, (more) => log(this.config, '', `rejecting connection from [${ip}]: ${this.describe(refusal, ip)}${more}`));
      return refusal;
    }
    const slot = new SlotImpl(ip, subnetOf(ip, this.prefixes), this.exempt(ip), (s) => this.release(s));
    this.slots.set(slot, undefined);
    bump(this.perAddress, slot.ip, 1);
    bump(this.perSubnet, slot.subnet, 1);
    // Entering stress: sessions already waiting get the short limit from now on, too.
    if (this.slots.size === Math.ceil(this.limits.maxClients * STRESS_FRACTION)) {
      for (const d of this.slots.values()) d?.rearmTimer();
    }
    return slot;
  }

  /** Tell the control about the session in a slot, so it can be displaced or rearmed. */
  attach(slot: Slot, session: Displaceable): void {
    if (this.slots.has(slot as SlotImpl)) this.slots.set(slot as SlotImpl, session);
  }

  private check(ip: string): Refusal | undefined {
    const l = this.limits;
    const exempt = this.exempt(ip);
    const subnet = subnetOf(ip, this.prefixes);
    if (!exempt) {
      const share = (n: number) => (this.stressed() ? Math.max(1, Math.floor(n * STRESS_CLIENT_SHARE)) : n);
      if ((this.perAddress.get(ip) ?? 0) >= share(l.maxPerAddress)) return { why: 'address', key: `${l.name}_max_clients_per_ip` };
      if ((this.perSubnet.get(subnet) ?? 0) >= share(l.maxPerSubnet)) return { why: 'subnet', key: `${l.name}_max_clients_per_subnet` };
    }
    // Last: displacing a session is only worth it for a client that may come in.
    if (this.slots.size < l.maxClients) return undefined;
    const busy: Refusal = { why: 'busy', key: `${l.name}_max_clients` };
    const now = Date.now();
    const made = this.displacedFor.get(subnet);
    const current = made && now - made.start < DISPLACE_WINDOW_MS ? made : undefined;
    if (!exempt && current && current.n >= DISPLACE_PER_SUBNET) return busy;
    if (!this.displaceOne(exempt)) return busy;
    if (!exempt) this.noteDisplacement(subnet, now, current);
    return undefined;
  }

  /**
   * Close a session holding nothing, for a newcomer; false when there is none.
   * Sessions of clients outside client_limit_exceptions go first, the longest
   * idle first. For an excepted newcomer (the site's own) any such session
   * will do; for another one, only a session idle DISPLACE_MIN_IDLE_MS.
   */
  private displaceOne(newcomerExempt: boolean): boolean {
    const latest = Date.now() - (newcomerExempt ? 0 : DISPLACE_MIN_IDLE_MS);
    let best: { slot: SlotImpl; d: Displaceable; t: number } | undefined;
    for (const [slot, d] of this.slots) {
      const t = d?.idleSince();
      if (!d || t === undefined || t > latest) continue;
      const better = !best || (best.slot.exempt && !slot.exempt) || (best.slot.exempt === slot.exempt && t < best.t);
      if (better) best = { slot, d, t };
    }
    if (!best) return false;
    const { slot, d, t } = best;
    log(this.config, '', `closing idle session from [${slot.ip}] (idle ${Math.round((Date.now() - t) / 1000)}s): ${this.limits.name}_max_clients reached`);
    slot.release();
    d.displace();
    return true;
  }

  private noteDisplacement(subnet: string, now: number, current: { start: number; n: number } | undefined): void {
    if (current) {
      current.n++;
      return;
    }
    if (this.displacedFor.size > 10_000) {
      for (const [k, w] of this.displacedFor) if (now - w.start >= DISPLACE_WINDOW_MS) this.displacedFor.delete(k);
    }
    this.displacedFor.set(subnet, { start: now, n: 1 });
  }

  private describe(r: Refusal, ip: string): string {
    if (r.why === 'busy') return `${this.slots.size} sessions open (${r.key})`;
    if (r.why === 'address') return `too many sessions from it (${r.key})`;
    return `too many sessions from ${subnetOf(ip, this.prefixes)} (${r.key})`;
  }

  private release(slot: SlotImpl): void {
    if (!this.slots.delete(slot)) return;
    bump(this.perAddress, slot.ip, -1);
    bump(this.perSubnet, slot.subnet, -1);
  }
}

/**
 * One log line per key and period: a client refused a thousand times a second
 * writes one line, and the next one says how many were left out.
 */
export class LogThrottle {
  private readonly last = new Map<string, { at: number; missed: number }>();

  constructor(private readonly periodMs: number) {}

  note(key: string, write: (more: string) => void): void {
    const now = Date.now();
    const seen = this.last.get(key);
    if (seen && now - seen.at < this.periodMs) {
      seen.missed++;
      return;
    }
    if (this.last.size > 10_000) this.forget(now);
    write(seen?.missed ? ` (and ${seen.missed} more since the last report)` : '');
    this.last.set(key, { at: now, missed: 0 });
  }

  private forget(now: number): void {
    for (const [k, v] of this.last) if (now - v.at >= this.periodMs) this.last.delete(k);
  }
}

class SlotImpl implements Slot {
  constructor(readonly ip: string, readonly subnet: string, readonly exempt: boolean, private readonly onRelease: (s: SlotImpl) => void) {}
  release(): void {
    this.onRelease(this);
  }
}

function bump(map: Map<string, number>, key: string, by: number): void {
  const n = (map.get(key) ?? 0) + by;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

/**
 * Answer a refused client and close at once: destroyed as soon as the text is
 * handed to the kernel, whatever the client does (it may never read or close).
 */
export function refuseSocket(socket: net.Socket, text: string | undefined): void {
  socket.on('error', () => undefined);
  if (text === undefined) return void socket.destroy();
  socket.write(text);
  socket.destroySoon();
  // A client that never reads cannot keep a full send buffer open for long, either.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * What a listener of `kind` says to a client it turns away before any
 * session (the root master, when its worker cannot take the connection):
 * undefined where TLS comes first, so the socket is only closed.
 */
export function refusalLine(kind: string, host: string, text: string): string | undefined {
  switch (kind) {
    case 'smtp':
    case 'submission':
      return formatReply(fail('server-busy', `${host} ${text}`));
    case 'pop3':
      return `-ERR [SYS/TEMP] ${text}\r\n`;
    case 'imap':
      return `* BYE ${text}\r\n`;
    case 'managesieve':
      return `BYE "${text}"\r\n`;
    default:
      return undefined;
  }
}

/**
 * Log a listener's accept errors (EMFILE, ENFILE: out of file descriptors) at
 * most once per ACCEPT_ERROR_LOG_MS, and keep serving: the sessions already
 * open go on, and new ones are accepted again once descriptors are free.
 */
export function watchAcceptErrors(server: net.Server, config: () => Config, kind: string): void {
  const throttle = new LogThrottle(ACCEPT_ERROR_LOG_MS);
  server.on('error', (e: NodeJS.ErrnoException) => {
    throttle.note('accept', (more) => log(config(), '', `${kind} listener: cannot accept a connection: ${e.code ?? e.message}${more}; raise the daemon's open-file limit (ulimit -n)`));
  });
}

/** A client's subnet, "192.0.2.0/24" or "2001:db8:0:1::/64", by the configured prefix lengths. */
export function subnetOf(ip: string, prefixes: { v4: number; v6: number }): string {
  if (net.isIPv4(ip)) {
    const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
    const bits = Math.min(32, prefixes.v4);
    const masked = bits === 0 ? 0 : Math.floor(n / 2 ** (32 - bits)) * 2 ** (32 - bits);
    return `${[24, 16, 8, 0].map((s) => Math.floor(masked / 2 ** s) % 256).join('.')}/${bits}`;
  }
  const groups = expandIpv6(ip);
  if (!groups) return ip;
  const bits = Math.min(128, prefixes.v6);
  const out = groups.map((g, i) => {
    const keep = Math.max(0, Math.min(16, bits - i * 16));
    return keep === 0 ? 0 : g & (0xffff << (16 - keep)) & 0xffff;
  });
  return `${out.map((g) => g.toString(16)).join(':')}/${bits}`;
}

/** The eight 16-bit groups of an IPv6 address ("::", a zone and a dotted IPv4 tail allowed). */
function expandIpv6(ip: string): number[] | undefined {
  let s = ip.replace(/%.*$/, '');
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  if (v4) {
    const o = v4.slice(1).map(Number);
    s = s.slice(0, v4.index) + `${((o[0] << 8) | o[1]).toString(16)}:${((o[2] << 8) | o[3]).toString(16)}`;
  }
  const [head, tail] = s.split('::');
  const part = (x: string | undefined) => (x ? x.split(':').map((g) => parseInt(g, 16)) : []);
  const h = part(head);
  const t = part(tail);
  const groups = tail === undefined ? h : [...h, ...new Array(Math.max(0, 8 - h.length - t.length)).fill(0), ...t];
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** A BlockList of "10.0.0.0/8", "::1/128" or bare addresses. */
export function blockList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const cidr of cidrs) {
    const [addr, bits] = cidr.split('/');
    const family = net.isIPv4(addr) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, family);
    else list.addSubnet(addr, Number(bits), family);
  }
  return list;
}
