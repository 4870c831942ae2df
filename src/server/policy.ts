// Who may send what through the listener: sendmail's check_relay,
// check_mail and check_rcpt, from relay_networks, the access file, the local
// domains and the aliases. Built at start and on SIGHUP (the password table
// alone re-reads itself when mailpasswd changes it). Each decision carries
// its rule ("relay_networks", "/etc/mail/access:12") for the log. Relaying
// needs a reason (relay network, RELAY rule, AUTH); a local part holding a
// routing character (% ! @ :) is never local, so percent hacks, bang paths
// and "u@other"@local cannot turn a local domain into a relay. Password
// checks for SMTP AUTH go through the login throttle (auth-throttle.ts); DNS
// block lists (dnsbl.ts) and a null sender's one recipient are RCPT checks.

import net from 'node:net';
import type tls from 'node:tls';
import { type Destination, expandRecipient, inProcessLists, openAliases, type AliasTable } from '../aliases/index.ts';
import { type Config, isLocalDomain, localDomains } from '../config/index.ts';
import { type MailResolver, makeResolver } from '../deliver/index.ts';
import { splitAddress } from '../message/index.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import { mailboxFull } from '../virtual/quota.ts';
import { isVirtualDomain } from '../virtual/tables.ts';
import { type AccessRule, AccessTable, ruleName, unmapped } from './access.ts';
import { type AuthBlocked, AuthThrottle } from './auth-throttle.ts';
import { BlockLists, type Listing } from './dnsbl.ts';
import { PasswdFile } from './passwd.ts';
import { type Reply, fail, reply } from './replies.ts';
import { loadTlsContext } from './tls.ts';
import { allLists, routeList } from '../lists/index.ts';

export interface Client {
  /** IP address; undefined for `sendmail -bs` (a local user, trusted as sendmail trusts it). */
  address: string | undefined;
  /** Forward-confirmed reverse name. */
  name: string | undefined;
  /** The address the client connected to, so that u@[that address] is local. */
  localAddress: string | undefined;
}

export interface Decision {
  /** A refusal; undefined means go on. */
  refuse?: Reply;
  /** Accept, and silently drop (DISCARD). */
  discard?: boolean;
  /** Why relaying is allowed, when it is. */
  relay?: string;
  /** The rule that decided, for the log. */
  rule?: string;
}

const ROUTING = /[%!@:]/;

export class Policy {
  readonly localDomains: Set<string>;
  readonly access: AccessTable;
  /** Read again when mailpasswd changes the file (see passwd()); the rest stays as built. */
  private passwdFile: PasswdFile;
  readonly tls: tls.SecureContext | undefined;
  private readonly relayNets = new net.BlockList();
  private readonly aliases: AliasTable;

  private readonly throttle: AuthThrottle;
  /** For the DNS block lists, made when first needed. */
  private resolver: MailResolver | undefined;

  /** Throws MailError('config') naming file and line when a file is bad. */
  constructor(readonly config: Config, opts: { network: boolean; throttle?: AuthThrottle }) {
    this.throttle = opts.throttle ?? new AuthThrottle();
    this.localDomains = localDomains(config);
    this.access = AccessTable.load(config.accessFile);
    // AUTH and STARTTLS are for network clients; `sendmail -bs` has neither.
    this.passwdFile = opts.network ? PasswdFile.load(config.passwdFile) : PasswdFile.empty();
    this.tls = opts.network ? loadTlsContext(config) : undefined;
    for (const cidr of config.relayNetworks) addCidr(this.relayNets, cidr);
    this.aliases = openAliases(config);
  }

  close(): void {
    this.aliases.close();
  }

  /** The password table, re-read if the file changed; a bad file keeps the old table (and is logged). */
  passwd(): PasswdFile {
    try {
      this.passwdFile = this.passwdFile.refreshed();
    } catch (e) {
      log(this.config, '', `AUTH: ${(e as Error).message}; the previous passwords stay in use`);
    }
    return this.passwdFile;
  }

  /**
   * SMTP AUTH's check of a name and password, through the login throttle
   * that POP3 and IMAP share (auth-throttle.ts): true, false (after the
   * failure's delay), or a block to answer at once as a temporary failure.
   */
  authenticate(client: Client, user: string, password: string, method: string): Promise<true | undefined | AuthBlocked> {
    const attempt = { service: 'smtp' as const, client: client.address ?? '', user, method };
    return this.throttle.attempt(this.config, attempt, async () => ((await this.passwd().verify(user, password)) ? true : undefined));
  }

  inRelayNetworks(address: string | undefined): boolean {
    if (address === undefined) return false;
    const plain = unmapped(address);
    return this.relayNets.check(plain, net.isIPv4(plain) ? 'ipv4' : 'ipv6');
  }

  /** The client's own right to relay, decided once a session (and again after AUTH). */
  clientRelay(client: Client, connectRule: AccessRule | undefined, authUser: string | undefined): string | undefined {
    if (client.address === undefined) return 'local submission (-bs)';
    if (authUser !== undefined) return `authenticated as ${authUser}`;
    if (connectRule?.action.kind === 'RELAY') return `${ruleName(connectRule)} ${connectRule.key} RELAY`;
    if (this.inRelayNetworks(client.address)) return 'relay_networks';
    return undefined;
  }

  /** A rule for the client itself: refusals take effect at MAIL (sendmail's delay_checks). */
  connectRule(client: Client): AccessRule | undefined {
    return client.address === undefined ? undefined : this.access.connect(client.address, client.name);
  }

  /**
   * The DNS block list lookups for a new connection, started now, or
   * undefined when none apply: no zones, `sendmail -bs`, relay_networks, or
   * an access rule that says OK or RELAY for the client (the allow-list).
   */
  blockLists(client: Client, connectRule: AccessRule | undefined): BlockLists | undefined {
    if (this.config.dnsblZones.length + this.config.rhsblZones.length === 0 || client.address === undefined) return undefined;
    if (this.inRelayNetworks(client.address)) return undefined;
    if (connectRule?.action.kind === 'OK' || connectRule?.action.kind === 'RELAY') {
      log(this.config, '', `dnsbl: client=[${client.address}] not looked up: ${ruleName(connectRule)} ${connectRule.key} ${connectRule.action.kind}`);
      return undefined;
    }
    this.resolver ??= makeResolver(this.config);
    return new BlockLists(this.config, this.resolver, client.address);
  }

  /**
   * RCPT's checks of the transaction before the recipient's own: a null
   * sender (a bounce, RFC 5321 4.5.5) has one recipient, so a second gets
   * 452 4.5.3 (the code RFC 5321 4.5.3.1.10 gives for recipient limits: a
   * genuine sender sends the rest in another transaction, a spammer forging
   * bounces gets one copy a transaction); then, unless the client
   * authenticated, a listing of the client or of the sender's domain (whose
   * From: rule, if it says OK or RELAY, spares it) is 554 5.7.1.
   */
  async checkTransaction(t: { sender: string; recipients: number; authUser: string | undefined; lists: BlockLists | undefined }, given: string): Promise<Decision> {
    if (t.sender === '' && t.recipients >= 1) {
      return { refuse: fail('too-many-recipients', `${given}... A null sender (a bounce) has one recipient; send the others separately`), rule: 'null sender' };
    }
    if (!t.lists || t.authUser !== undefined) return {};
    const fromRule = t.sender === '' ? undefined : this.access.from(t.sender)?.action.kind;
    const { domain } = splitAddress(t.sender);
    const senderDomain = fromRule === 'OK' || fromRule === 'RELAY' || domain.startsWith('[') ? undefined : domain || undefined;
    const listing = await t.lists.check(senderDomain);
    return listing ? { refuse: fail('blocklisted', listingText(listing, t.sender)), rule: `${listing.kind === 'client' ? 'dnsbl_zones' : 'rhsbl_zones'} ${listing.zone}` } : {};
  }

  /** MAIL FROM: the Connect: verdict, then From: rules. */
  checkSender(connectRule: AccessRule | undefined, sender: string, given: string): Decision {
    const byClient = verdict(connectRule, '');
    if (byClient.refuse || byClient.discard) return byClient;
    const d = verdict(this.access.from(sender), `${given}... `);
    return d.relay || d.refuse || d.discard ? d : {};
  }

  /**
   * RCPT TO: To: rules, then a local recipient must exist, and any other
   * needs a reason to relay (the client's, or the sender's From: RELAY).
   */
  async checkRecipient(client: Client, address: string, given: string, relayReason: string | undefined): Promise<Decision> {
    const byRule = verdict(this.access.to(address), `${given}... `);
    if (byRule.refuse || byRule.discard) return byRule;
    const { local, domain } = splitAddress(address);
    if (!ROUTING.test(local) && this.isLocalDomain(domain, client)) return this.checkLocal(address, given, byRule.rule);
    const why = byRule.relay ?? relayReason;
    if (why) return { relay: why, rule: byRule.rule ?? why };
    return { refuse: fail('relay-denied', `${given}... Relaying denied`), rule: 'no relay permission' };
  }

  /** A local domain, one of our names, or an address literal of this host (the router agrees: config's isLocalDomain). */
  isLocalDomain(domain: string, client: Client): boolean {
    if (isLocalDomain(this.localDomains, domain) || isVirtualDomain(this.config, domain)) return true;
    const ip = domain.slice(1, -1).replace(/^ipv6:/i, '').toLowerCase();
    return domain.startsWith('[') && ip === client.localAddress;
  }

  /** A local user or alias exists: at least one destination that is not an error. */
  private async checkLocal(address: string, given: string, rule: string | undefined): Promise<Decision> {
    const dests = await this.expand(address);
    if (!Array.isArray(dests)) return { refuse: reply(dests.code, dests.status, `${given}... ${dests.lines[0]}`), rule: 'alias lookup' };
    const errors = dests.filter((d) => d.kind === 'error');
    const full = quotaRefusal(this.config, dests, errors.length, given);
    if (full) return { refuse: full, rule: 'quota_file' };
    if (dests.length > 0 && errors.length < dests.length) return { rule };
    const status = errors[0]?.kind === 'error' ? errors[0].status : { status: '5.1.1', text: 'User unknown' };
    // A virtusertable "error:5.1.1 text" keeps its own text.
    if (status.status === '5.1.1' && status.text === 'User unknown') return { refuse: fail('user-unknown', `${given}... User unknown`), rule: 'local recipient check' };
    const code = status.status.startsWith('4') ? 451 : 550;
    return { refuse: reply(code, status.status, `${given}... ${status.text}`), rule: 'local recipient check' };
  }

  /** For VRFY and EXPN: what a local address leads to; undefined when it is not local. */
  async localRecipients(address: string, client: Client): Promise<string[] | undefined> {
    const { local, domain } = splitAddress(address);
    if (ROUTING.test(local) || !this.isLocalDomain(domain, client)) return undefined;
    const dests = await this.expand(address);
    if (!Array.isArray(dests)) return [];
    return dests.flatMap((d) => {
      if (d.kind === 'program') return [`"|${d.command}"`];
      if (d.kind === 'file') return [d.path];
      return d.kind === 'error' ? [] : [d.address];
    });
  }

  /**
   * Alias and user expansion; a failure of the lookup itself as a Reply.
   * .forward and :include: files are read in this process (inProcessLists).
   */
  private async expand(address: string): Promise<Destination[] | Reply> {
    // A mailing list's address (src/lists): accepted here, handled by the queue runner.
    if (routeList(new Set(allLists(this.config)), this.config.hostname, address)) return [{ kind: 'list', key: `list:${address}`, original: address, address }];
    try {
      return await expandRecipient({ config: this.config, aliases: this.aliases, localDomains: this.localDomains, lists: inProcessLists }, address);
    } catch (e) {
      const err = e instanceof MailError ? e : new MailError('internal', (e as Error).message);
      return reply(err.reply, err.status, err.detail);
    }
  }
}

/** 452 4.2.2 or 552 5.2.2 (quota_exceeded) when every mailbox the address leads to is a virtual one full already. */
function quotaRefusal(config: Config, dests: Destination[], errors: number, given: string): Reply | undefined {
  const boxes = dests.flatMap((d) => (d.kind === 'local' && d.user.name.includes('@') ? [d.user.name] : []));
  if (boxes.length === 0 || boxes.length < dests.length - errors || !boxes.every((b) => mailboxFull(config, b))) return undefined;
  const bounce = config.raw.quota_exceeded === 'bounce';
  return reply(bounce ? 552 : 452, bounce ? '5.2.2' : '4.2.2', `${given}... Mailbox full`);
}

/** What an access rule says, as a Decision; prefix goes before the text of a refusal. */
function verdict(rule: AccessRule | undefined, prefix: string): Decision {
  if (!rule) return {};
  const name = `${ruleName(rule)} ${rule.key}`;
  switch (rule.action.kind) {
    case 'REJECT':
      return { refuse: fail('rejected', `${prefix}Access denied`), rule: name };
    case 'ERROR': {
      const r = rule.action.reply;
      return { refuse: reply(r.code, r.status, `${prefix}${r.lines[0]}`), rule: name };
    }
    case 'DISCARD':
      return { discard: true, rule: name };
    case 'RELAY':
      return { relay: `${name} RELAY`, rule: name };
    default:
      return { rule: name };
  }
}

/** Postfix's words: "Service unavailable; Client host [1.2.3.4] blocked using zone; text". */
function listingText(l: Listing, sender: string): string {
  const what = l.kind === 'client' ? `Client host [${l.subject}]` : `Sender address [${sender}]`;
  return `Service unavailable; ${what} blocked using ${l.zone}${l.text ? `; ${l.text}` : ''}`;
}

function addCidr(list: net.BlockList, cidr: string): void {
  const [addr, bits] = cidr.split('/');
  const family = net.isIPv4(addr) ? 'ipv4' : 'ipv6';
  if (bits === undefined) list.addAddress(addr, family);
  else list.addSubnet(addr, Number(bits), family);
}
