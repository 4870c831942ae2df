// Login throttling for every listener that checks a password: POP3
// (USER/PASS, APOP, AUTH), IMAP (LOGIN, AUTHENTICATE) and SMTP AUTH. It
// counts failures per client address, per account, and per (address,
// account) pair, answers each failure after a delay that doubles with the
// failures counted (auth_failure_delay up to auth_failure_delay_max), and
// then blocks, answering at once and checking nothing:
//
//   - an address with auth_client_failures failures, for every account;
//   - an account with auth_account_failures failures (from all addresses),
//     but only from the addresses that have failed on that account: its real
//     owner, logging in from an address that has not failed, still gets in.
//
// Failures are remembered, and blocks last, auth_block_time. Attempts from
// one address are checked at most auth_client_failures at a time, so
// parallel connections cannot race past the block. Each failure is logged
// in one line for fail2ban (packaging/fail2ban, mailtk.conf(5) AUTHENTICATION):
//
//   auth failure: service=imap client=[192.0.2.7] user=bob method=LOGIN reason=...
//
// One table a daemon: every login is checked in the process that holds all
// the listeners (the worker of a root daemon, master.ts; the daemon itself
// otherwise), whose Daemon gives the same AuthThrottle to the SMTP and the
// mailbox listeners; it outlives the Policy and MailboxAccess that SIGHUP
// builds anew.
// Known limits: a botnet gets one guess per address and account per
// auth_block_time once the account is blocked; the table lives in memory
// (CAPACITY keys, oldest dropped first) and starts empty with the process.

import net from 'node:net';
import { type Config, formatDuration } from '../config/index.ts';
import { log } from '../log/index.ts';
import { subnetOf } from './conn-control.ts';

export type AuthService = 'pop3' | 'imap' | 'smtp';

export interface AuthAttempt {
  service: AuthService;
  /** The client's IP address. */
  client: string;
  user: string;
  /** USER, APOP, LOGIN, AUTHENTICATE PLAIN, AUTH LOGIN, ... */
  method: string;
}

/** A refusal given at once, without checking the password: the listener answers it as temporary. */
export interface AuthBlocked {
  blocked: string;
}

export const BLOCKED_TEXT = 'Too many authentication failures; try again later';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

interface Count {
  failures: number;
  /** Failures are forgotten after this. */
  expires: number;
  /** 0, or until when this key is blocked. */
  blockedUntil: number;
}

/** Keys remembered at most; past this the oldest are dropped (an attacker rotating addresses cannot fill memory). */
const CAPACITY = 100_000;

const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class AuthThrottle {
  /** "c ADDRESS", "a ACCOUNT", "p ADDRESS ACCOUNT" -> count; Map order is the order of last change. */
  private counts = new Map<string, Count>();
  private inFlight = new Map<string, number>();
  private waiting = new Map<string, Array<() => void>>();

  constructor(private readonly clock: Clock = realClock) {}

  /**
   * Check a login through `check` (undefined = wrong credentials) unless a
   * block stands; a failure is counted, logged, and answered after its delay.
   */
  async attempt<T>(config: Config, a: AuthAttempt, check: () => Promise<T | undefined>): Promise<T | undefined | AuthBlocked> {
    a = { ...a, client: a.client.replace(/^::ffff:(?=\d+\.)/i, '') };
    const user = safeName(a.user);
    const refused = this.refusal(config, a, user);
    if (refused) return refused;
    await this.slot(clientKey(a.client), config.authClientFailures);
    const late = this.refusal(config, a, user);
    if (late) {
      this.release(clientKey(a.client));
      return late;
    }
    let result: T | undefined;
    try {
      result = await check();
    } finally {
      this.release(clientKey(a.client));
    }
    if (result !== undefined) return result;
    const delay = this.fail(config, a, user);
    await this.clock.sleep(delay);
    return undefined;
  }

  /** A standing block for this attempt: logged, and answered at once. */
  private refusal(config: Config, a: AuthAttempt, user: string): AuthBlocked | undefined {
    const now = this.clock.now();
    this.expire(now);
    const client = this.live(`c ${clientKey(a.client)}`, now);
    const pair = this.live(`p ${clientKey(a.client)} ${user}`, now);
    const account = this.live(`a ${user}`, now);
    let until = 0;
    let why = '';
    if (client && client.blockedUntil > now) [until, why] = [client.blockedUntil, 'address blocked (auth_client_failures)'];
    else if (pair && account && account.blockedUntil > now) [until, why] = [account.blockedUntil, 'account blocked for this address (auth_account_failures)'];
    if (!until) return undefined;
    log(config, '', failureLine(a, user, `reason=blocked (${why}), for=${formatDuration(until - now)}`));
    return { blocked: BLOCKED_TEXT };
  }

  /** Wait while this address has as many checks under way as it may still fail. */
  private async slot(client: string, limit: number): Promise<void> {
    for (;;) {
      const n = this.inFlight.get(client) ?? 0;
      const failed = this.live(`c ${client}`, this.clock.now())?.failures ?? 0;
      if (n === 0 || n + failed < Math.max(1, limit)) break;
      await new Promise<void>((resolve) => this.waiting.set(client, [...(this.waiting.get(client) ?? []), resolve]));
    }
    this.inFlight.set(client, (this.inFlight.get(client) ?? 0) + 1);
  }

  private release(client: string): void {
    const n = (this.inFlight.get(client) ?? 1) - 1;
    if (n > 0) this.inFlight.set(client, n);
    else this.inFlight.delete(client);
    const w = this.waiting.get(client)?.shift();
    if (this.waiting.get(client)?.length === 0) this.waiting.delete(client);
    w?.();
  }

  /** Count a failure under its three keys; log it (and a block that begins); the delay to answer it after. */
  private fail(config: Config, a: AuthAttempt, user: string): number {
    const now = this.clock.now();
    const client = this.bump(`c ${clientKey(a.client)}`, now, config.authBlockTimeMs);
    const pair = this.bump(`p ${clientKey(a.client)} ${user}`, now, config.authBlockTimeMs);
    const account = this.bump(`a ${user}`, now, config.authBlockTimeMs);
    const n = Math.max(client.failures, pair.failures);
    const delay = Math.min(config.authFailureDelayMaxMs, config.authFailureDelayMs * 2 ** Math.min(n - 1, 30));
    log(config, '', failureLine(a, user, `reason=bad credentials, failures=${client.failures}, delay=${formatDuration(delay)}`));
    if (client.failures >= config.authClientFailures && client.blockedUntil <= now) {
      client.blockedUntil = now + config.authBlockTimeMs;
      client.expires = client.blockedUntil;
      log(config, '', `auth block: client=[${a.client}] for=${formatDuration(config.authBlockTimeMs)} reason=${client.failures} failures from the address (auth_client_failures)`);
    }
    if (account.failures >= config.authAccountFailures && account.blockedUntil <= now) {
      account.blockedUntil = now + config.authBlockTimeMs;
      account.expires = account.blockedUntil;
      log(config, '', `auth block: user=${user} for=${formatDuration(config.authBlockTimeMs)} reason=${account.failures} failures for the account (auth_account_failures), from the addresses that failed on it`);
    }
    return delay;
  }

  private bump(key: string, now: number, keepMs: number): Count {
    const c = this.live(key, now) ?? { failures: 0, expires: 0, blockedUntil: 0 };
    c.failures++;
    c.expires = Math.max(c.expires, now + keepMs);
    this.counts.delete(key);
    this.counts.set(key, c);
    if (this.counts.size > CAPACITY) this.counts.delete(this.counts.keys().next().value as string);
    return c;
  }

  private live(key: string, now: number): Count | undefined {
    const c = this.counts.get(key);
    return c && c.expires > now ? c : undefined;
  }

  /** Forget what has expired, oldest change first (amortised over attempts). */
  private expire(now: number): void {
    for (const [key, c] of this.counts) {
      if (c.expires > now) break;
      this.counts.delete(key);
    }
  }
}

/** "auth failure: service=.. client=[..] user=.. method=.. " then the rest: the line fail2ban's filter matches. */
function failureLine(a: AuthAttempt, user: string, rest: string): string {
  return `auth failure: service=${a.service} client=[${a.client}] user=${user} method=${a.method.replace(/\s+/g, '-')} ${rest}`;
}

/** A client-chosen name in a log line and a table key: no spaces or controls (nothing can fake "client="), bounded. */
function safeName(name: string): string {
  const clean = name.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 64 ? `${clean.slice(0, 64)}...` : clean || '""';
}

/** IPv4 addresses one by one; IPv6 by /64, the least a site (or an attacker) is given. */
export function clientKey(ip: string): string {
  return net.isIPv6(ip) ? subnetOf(ip, { v4: 32, v6: 64 }) : ip;
}

export function isBlocked(x: unknown): x is AuthBlocked {
  return typeof x === 'object' && x !== null && 'blocked' in x;
}
