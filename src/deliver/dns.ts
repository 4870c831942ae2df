// DNS for mail: MX lookups with RFC 5321 section 5.1's rules, address
// lookups, reverse (PTR) names for the SMTP listener's Received headers, and
// the A and TXT records the DNS block lists answer with (server/dnsbl.ts).
// Every query goes to the resolvers of the dns_servers key (the system's when
// it is empty) through node:dns's Resolver, never through getaddrinfo, so a
// test that points dns_servers at a loopback server sends no query elsewhere.
// Loopback addresses and "localhost" are answered here without a query.
// Failures come back as DeliveryStatus rows (5.1.2, 5.1.10, 5.4.4, 4.4.3):
// deciding what a lookup result means for the mail is this module's job.

import net from 'node:net';
import { Resolver } from 'node:dns/promises';
import type { Config } from '../config/index.ts';
import { type DeliveryStatus, FAILURES, type Failure } from '../message/status.ts';

/** One mail host to try, in order: a name (or IP literal) and its addresses. */
export interface MailHost {
  name: string;
  preference: number;
  addresses: string[];
}

export type HostLookup = { hosts: MailHost[] } | { failure: DeliveryStatus };

export interface ReverseName {
  /** The PTR name, when there is one. */
  name?: string;
  /** True when the name's own A/AAAA records lead back to the address. */
  confirmed: boolean;
}

// c-ares doubles its wait on each retry: two tries take about 3 × the first wait.
const DNS_TRIES = 2;
// Enough for any sane domain; a longer list is truncated, as Postfix's smtp_mx_address_limit does.
const MAX_ADDRESSES = 10;
// Answers that mean "no such name" or "no records of this type", as opposed to a failure.
const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

function failure(f: Failure, detail: string): DeliveryStatus {
  return { status: FAILURES[f].status, text: detail };
}

function isLoopback(ip: string): boolean {
  const v4 = ip.replace(/^::ffff:/i, '');
  return net.isIPv4(v4) ? v4.startsWith('127.') : ip === '::1';
}

export class MailResolver {
  private readonly resolver: Resolver;

  constructor(servers: string[], timeoutMs: number) {
    this.resolver = new Resolver({ timeout: Math.max(100, Math.round(timeoutMs / 3)), tries: DNS_TRIES });
    if (servers.length) this.resolver.setServers(servers);
  }

  /**
   * The mail hosts for a domain, best first: MX records by preference, equal
   * preferences shuffled, each with its addresses; the implicit MX (the domain
   * itself) when there are none. `self` names this host: an MX that is us, and
   * every worse one, is dropped so that mail never loops back to ourselves.
   */
  async mailHosts(domain: string, self?: string): Promise<HostLookup> {
    let mx: Array<{ exchange: string; priority: number }>;
    try {
      mx = await this.resolver.resolveMx(domain);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (code === 'ENOTFOUND') return { failure: failure('host-unknown', `Host unknown (Name server: ${domain}: host not found)`) };
      if (code !== 'ENODATA') return { failure: failure('dns-temp', `Name server: ${domain}: MX lookup failed (${code}), will retry`) };
      mx = [];
    }
    if (mx.some((r) => r.exchange === '' || r.exchange === '.')) {
      // RFC 7505: "0 ." alone says the domain takes no mail; mixed with real MXs it is ignored.
      if (mx.length === 1) return { failure: failure('null-mx', `Domain ${domain} does not accept mail (null MX)`) };
      mx = mx.filter((r) => r.exchange !== '' && r.exchange !== '.');
    }
    const ordered = mx.length ? orderMx(mx) : [{ name: domain, preference: 0 }];
    const kept = dropSelf(ordered, self);
    if (kept.length === 0) return { failure: failure('mail-loop', `mail for ${domain} loops back to myself`) };
    return this.withAddresses(kept, mx.length ? `${domain}: no address for any MX host` : `${domain}: no MX and no address records`);
  }

  /** A host named directly ("[host]" in a route): no MX lookup. */
  async directHost(name: string): Promise<HostLookup> {
    return this.withAddresses([{ name, preference: 0 }], `${name}: no address records`);
  }

  private async withAddresses(list: Array<{ name: string; preference: number }>, none: string): Promise<HostLookup> {
    const looked = await Promise.all(list.map((h) => this.addresses(h.name)));
    const hosts: MailHost[] = [];
    let temporary: string | undefined;
    let budget = MAX_ADDRESSES;
    looked.forEach((r, i) => {
      if ('error' in r) temporary ??= r.error;
      else if (r.addresses.length && budget > 0) {
        const addresses = r.addresses.slice(0, budget);
        budget -= addresses.length;
        hosts.push({ ...list[i], addresses });
      }
    });
    if (hosts.length) return { hosts };
    if (temporary) return { failure: failure('dns-temp', `Name server: ${temporary}, will retry`) };
    return { failure: failure('unroutable', `Host or domain name not found (${none})`) };
  }

  /** IPv4 then IPv6 addresses of a name; an IP literal is its own address. */
  async addresses(name: string): Promise<{ addresses: string[] } | { error: string }> {
    if (net.isIP(name)) return { addresses: [name] };
    if (name.toLowerCase() === 'localhost') return { addresses: ['127.0.0.1'] };
    const [v4, v6] = await Promise.all([this.query(() => this.resolver.resolve4(name)), this.query(() => this.resolver.resolve6(name))]);
    if ('error' in v4 && 'error' in v6) return { error: `${name}: address lookup failed (${v4.error})` };
    const addresses = [...('error' in v4 ? [] : v4.list), ...('error' in v6 ? [] : v6.list)];
    // One family failing while the other answered still gives something to try.
    if (addresses.length === 0 && ('error' in v4 || 'error' in v6)) return { error: `${name}: address lookup failed` };
    return { addresses };
  }

  /** A or TXT records of a name (a TXT record's strings joined), [] when there are none; for the DNS block lists. */
  records(name: string, type: 'A' | 'TXT'): Promise<{ list: string[] } | { error: string }> {
    return this.query(async () => (type === 'A' ? this.resolver.resolve4(name) : (await this.resolver.resolveTxt(name)).map((parts) => parts.join(''))));
  }

  private async query(run: () => Promise<string[]>): Promise<{ list: string[] } | { error: string }> {
    try {
      return { list: await run() };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      return NOT_FOUND.has(code) ? { list: [] } : { error: code };
    }
  }

  /**
   * The PTR name of a client address, forward-confirmed (the name's
   * addresses include the client's) as sendmail and Postfix check it before
   * trusting it. Loopback is "localhost", answered without a query.
   */
  async reverse(ip: string): Promise<ReverseName> {
    if (isLoopback(ip)) return { name: 'localhost', confirmed: true };
    let names: string[];
    try {
      names = await this.resolver.reverse(ip.replace(/^::ffff:(?=\d+\.)/i, ''));
    } catch {
      return { confirmed: false };
    }
    const name = names[0]?.replace(/\.$/, '');
    if (!name) return { confirmed: false };
    const fwd = await this.addresses(name);
    const plain = ip.replace(/^::ffff:(?=\d+\.)/i, '').toLowerCase();
    return { name, confirmed: 'addresses' in fwd && fwd.addresses.some((a) => a.toLowerCase() === plain) };
  }
}

/** A resolver for this configuration's dns_servers and dns_timeout. */
export function makeResolver(config: Config): MailResolver {
  return new MailResolver(config.dnsServers, config.dnsTimeoutMs);
}

/** By preference, ascending; equal preferences in random order (RFC 5321 5.1). */
export function orderMx(mx: Array<{ exchange: string; priority: number }>): Array<{ name: string; preference: number }> {
  return mx
    .map((r) => ({ name: r.exchange.replace(/\.$/, ''), preference: r.priority, tiebreak: Math.random() }))
    .sort((a, b) => a.preference - b.preference || a.tiebreak - b.tiebreak)
    .map(({ name, preference }) => ({ name, preference }));
}

/** RFC 5321 5.1: when this host is an MX, only better-preference hosts may be tried. */
function dropSelf<T extends { name: string; preference: number }>(list: T[], self: string | undefined): T[] {
  if (!self) return list;
  const me = list.find((h) => h.name.toLowerCase() === self.toLowerCase());
  return me ? list.filter((h) => h.preference < me.preference) : list;
}
