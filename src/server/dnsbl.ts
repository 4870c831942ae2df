// DNS block lists for the SMTP listener: dnsbl_zones name client addresses
// (1.2.3.4 is looked up as 4.3.2.1.ZONE, an IPv6 address as its 32 nibbles
// reversed), rhsbl_zones name sender domains (DOMAIN.ZONE). An A record in
// 127.0.0.0/8 means listed, and the name's TXT record says why; the
// 127.255.255.0/24 answers (Spamhaus's "you may not query us" codes) and
// anything outside 127/8 mean not listed. Every query goes through the
// resolvers of dns_servers (deliver/dns.ts). A lookup that fails or times
// out counts as not listed (fail open): a broken list must not stop mail.
// The client's lookups start with the connection and are awaited at RCPT,
// where Policy refuses with 554 5.7.1 (Postfix's reject_rbl_client, after
// smtpd_delay_reject: authenticated clients, relay_networks and access OK
// entries are never refused). Each outcome is logged once a connection.

import net from 'node:net';
import type { Config } from '../config/index.ts';
import type { MailResolver } from '../deliver/index.ts';
import { log } from '../log/index.ts';
import { subnetOf } from './conn-control.ts';

export interface Listing {
  kind: 'client' | 'sender';
  /** What was looked up: the client's address or the sender's domain. */
  subject: string;
  zone: string;
  /** The list's TXT text, '' when it has none. */
  text: string;
}

/** The name a list is asked: reversed octets (IPv4) or nibbles (IPv6), then the zone. */
export function dnsblName(ip: string, zone: string): string | undefined {
  const plain = ip.replace(/^::ffff:(?=\d+\.)/i, '');
  if (net.isIPv4(plain)) return `${plain.split('.').reverse().join('.')}.${zone}`;
  if (!net.isIPv6(plain)) return undefined;
  // All eight groups, from the subnet of one address ("2001:db8:0:0:0:0:567:89ab/128").
  const groups = subnetOf(plain, { v4: 32, v6: 128 }).split('/')[0].split(':');
  return `${groups.map((g) => g.padStart(4, '0')).join('').split('').reverse().join('.')}.${zone}`;
}

/** An answer that means "listed": 127/8, but not 127.255.255/24 (a list's error codes). */
function listedAnswer(a: string): boolean {
  return a.startsWith('127.') && !a.startsWith('127.255.255.');
}

/** One connection's lookups: the client's, started at once, and each sender domain's, on first use. */
export class BlockLists {
  private readonly client: Promise<Listing | undefined>;
  private readonly senders = new Map<string, Promise<Listing | undefined>>();

  constructor(
    private readonly config: Config,
    private readonly resolver: MailResolver,
    private readonly address: string | undefined,
  ) {
    const zones = address === undefined ? [] : config.dnsblZones;
    this.client = this.firstListed('client', address ?? '', zones, (zone) => dnsblName(address as string, zone));
    this.client.catch(() => undefined); // awaited later, maybe never (the client may quit first)
  }

  /** The listing of the client, or else of the sender's domain (when given); undefined when neither is listed. */
  async check(senderDomain: string | undefined): Promise<Listing | undefined> {
    const byClient = await this.client;
    if (byClient || !senderDomain || this.config.rhsblZones.length === 0) return byClient;
    const domain = senderDomain.toLowerCase().replace(/\.$/, '');
    let pending = this.senders.get(domain);
    if (!pending) {
      pending = this.firstListed('sender', domain, this.config.rhsblZones, (zone) => `${domain}.${zone}`);
      this.senders.set(domain, pending);
    }
    return pending;
  }

  /** All zones asked at once; the first zone (in the configured order) that lists the subject wins. */
  private async firstListed(kind: Listing['kind'], subject: string, zones: string[], nameIn: (zone: string) => string | undefined): Promise<Listing | undefined> {
    if (zones.length === 0) return undefined;
    const results = await Promise.all(zones.map((zone) => this.ask(kind, subject, zone, nameIn(zone))));
    const listed = results.find((r) => r !== undefined);
    const who = kind === 'client' ? `client=[${subject}]` : `sender_domain=${subject}`;
    if (!listed) log(this.config, '', `dnsbl: ${who} not listed (${zones.join(', ')})`);
    return listed;
  }

  private async ask(kind: Listing['kind'], subject: string, zone: string, name: string | undefined): Promise<Listing | undefined> {
    const who = kind === 'client' ? `client=[${subject}]` : `sender_domain=${subject}`;
    if (name === undefined) return undefined;
    const a = await this.resolver.records(name, 'A');
    if ('error' in a) {
      log(this.config, '', `dnsbl: ${who} zone=${zone}: lookup of ${name} failed (${a.error}); treated as not listed`);
      return undefined;
    }
    const hits = a.list.filter(listedAnswer);
    if (hits.length === 0) {
      if (a.list.length) log(this.config, '', `dnsbl: ${who} zone=${zone}: answer ${a.list.join(' ')} is not a listing; treated as not listed`);
      return undefined;
    }
    const txt = await this.resolver.records(name, 'TXT');
    const text = 'list' in txt ? txt.list.join(' ').trim() : '';
    log(this.config, '', `dnsbl: ${who} zone=${zone}: listed (${hits.join(' ')})${text ? `: ${text}` : ''}`);
    return { kind, subject, zone, text };
  }
}
