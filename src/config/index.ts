// Configuration: mailtk.conf ("key = value", # comments), chosen by -C, by
// the MAILTK_CONFIG environment variable (so that every child process reaches
// the same file), else /etc/mail/mailtk.conf. -O key=value overrides a key.
// Every path any module uses comes from here. Errors name file:line and exit
// with EX_CONFIG (78) through MailError('config').

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { MailError } from '../message/status.ts';
import { parseDuration } from './duration.ts';
import { KEYS, type Key, type KeySpec } from './keys.ts';

export { parseDuration, formatDuration } from './duration.ts';
export { KEYS, type Key } from './keys.ts';

export const SYSTEM_CONFIG = '/etc/mail/mailtk.conf';
export const DATA_DIR_NAME = 'mailtk-data';

export interface Config {
  /** The config file read, or undefined when only defaults apply. */
  file: string | undefined;
  hostname: string;
  queueDir: string;
  maildropDir: string;
  mailSpoolDir: string;
  aliasFile: string;
  aliasDb: string;
  localHostNamesFile: string;
  accessFile: string;
  logFile: string;
  pidFile: string;
  userDb: string;
  defaultPrivs: string;
  /** The unprivileged account that owns the queue and runs SMTP, pickup and queue runs when mailtk starts as root. */
  mailOwner: string;
  forwardPath: string;
  queueWarnMs: number;
  queueReturnMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  deliveryMode: 'background' | 'interactive' | 'queue';
  programTimeoutMs: number;
  maxHopCount: number;
  maxMessageSize: number;
  /** The SMTP listeners' addresses (src/server). */
  smtpListen: ListenAddress[];
  submissionListen: ListenAddress[];
  /** CIDRs whose clients may relay ("127.0.0.0/8", "::1/128"). */
  relayNetworks: string[];
  passwdFile: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  smtpVrfy: boolean;
  smtpExpn: boolean;
  maxRecipients: number;
  smtpTimeoutMs: number;
  smtpStressTimeoutMs: number;
  smtpMaxErrors: number;
  smtpMaxClients: number;
  smtpMaxClientsPerIp: number;
  smtpMaxClientsPerSubnet: number;
  /** What makes a client's subnet for the per-subnet limits. */
  clientIpv4PrefixLength: number;
  clientIpv6PrefixLength: number;
  /** CIDRs spared the per-client limits (counts and rates); $relay_networks expanded. */
  clientLimitExceptions: string[];
  /** The SMTP listener's wait at each step (smtpd_*_timeout; smtp_timeout where unset). */
  smtpdTimeouts: SmtpdTimeouts;
  /** Per client address and client_rate_time_unit; 0 = no limit (Postfix's anvil). */
  smtpClientRateLimits: { connections: number; messages: number; recipients: number };
  clientRateTimeUnitMs: number;
  /** sendmail's mailertable: per-domain routes for remote mail. */
  transportMap: string;
  /** '' or a nexthop ("[host]:port", "host") that takes all remote mail. */
  smartHost: string;
  /** Resolvers as "address:port" ("[::1]:53"); empty = the system's. */
  dnsServers: string[];
  dnsTimeoutMs: number;
  remoteConcurrency: number;
  smtpTlsLevel: 'none' | 'may' | 'encrypt' | 'verify';
  smtpTimeouts: SmtpTimeouts;
  /** '' (mbox in mail_spool_dir) or "lmtp:[host]:port" / "lmtp:unix:/path": where mailbox deliveries go. */
  mailboxTransport: string;
  /** The LMTP RCPT TO address: user@hostname, or the bare user name. */
  lmtpRecipient: 'full' | 'local';
  /** The POP3 and IMAP listeners' addresses; the *s ones speak TLS from the first byte. */
  pop3Listen: ListenAddress[];
  imapListen: ListenAddress[];
  pop3sListen: ListenAddress[];
  imapsListen: ListenAddress[];
  managesieveListen: ListenAddress[];
  apopSecretsFile: string;
  pop3TimeoutMs: number;
  imapTimeoutMs: number;
  mailboxMaxClients: number;
  mailboxMaxClientsPerIp: number;
  mailboxMaxClientsPerSubnet: number;
  /** The idle limit of a POP3/IMAP session before login, and before login under stress. */
  mailboxLoginTimeoutMs: number;
  mailboxStressTimeoutMs: number;
  mailboxLoginTls: boolean;
  /** Where a user's IMAP folders live and where the per-mailbox indexes go; $HOME is the user's home. */
  imapFolderDir: string;
  mailboxIndexDir: string;
  /** The active Sieve script's path ($HOME, $USER); '' = no filtering. */
  sieveScript: string;
  /** Login throttling for POP3, IMAP and SMTP AUTH together (auth_* keys, src/server/auth-throttle.ts). */
  authFailureDelayMs: number;
  authFailureDelayMaxMs: number;
  authClientFailures: number;
  authAccountFailures: number;
  authBlockTimeMs: number;
  /** DNS block list zones: of client addresses, and of sender domains. */
  dnsblZones: string[];
  rhsblZones: string[];
  /** Mailing lists: one directory per list (src/lists). */
  listDir: string;
  listBounceLimit: number;
  /** Raw values, for keys later issues add and for `sendmail -d0` style dumps. */
  raw: Record<Key, string>;
  /** The -O overrides given, passed on to child processes. */
  overrides: Record<string, string>;
}

/** Time limits of the SMTP client, one per stage of a session (Postfix's smtp_*_timeout). */
export interface SmtpTimeouts {
  connect: number;
  helo: number;
  starttls: number;
  mail: number;
  rcpt: number;
  dataInit: number;
  dataXfer: number;
  dataDone: number;
  quit: number;
}

/** What the SMTP listener waits for, step by step; undefined data = no limit on the whole message. */
export interface SmtpdTimeouts {
  helo: number;
  mail: number;
  rcpt: number;
  dataBlock: number;
  data: number | undefined;
}

export const TLS_LEVELS = ['none', 'may', 'encrypt', 'verify'] as const;

/** One listening address: "0.0.0.0:25" or "[::1]:2525" parsed. */
export interface ListenAddress {
  host: string;
  port: number;
}

export interface LoadOptions {
  file?: string;
  overrides?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

interface Source {
  value: string;
  file?: string;
  line?: number;
}

export function configFileFor(opts: LoadOptions): string | undefined {
  const env = opts.env ?? process.env;
  if (opts.file) return path.resolve(opts.cwd ?? process.cwd(), opts.file);
  if (env.MAILTK_CONFIG) return path.resolve(opts.cwd ?? process.cwd(), env.MAILTK_CONFIG);
  if (fs.existsSync(SYSTEM_CONFIG)) return SYSTEM_CONFIG;
  return undefined;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const file = configFileFor(opts);
  const explicit = Boolean(opts.file || (opts.env ?? process.env).MAILTK_CONFIG);
  const values = new Map<Key, Source>();
  if (file) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      throw new MailError('config', `cannot read config file: ${(e as Error).message}`, { file, cause: e });
    }
    for (const [key, src] of parseConfigText(text, file)) values.set(key, src);
  }
  for (const [k, v] of Object.entries(opts.overrides ?? {})) {
    if (!(k in KEYS)) throw new MailError('config', `-O ${k}=${v}: unknown key "${k}"; see mailtk.conf(5)`);
    values.set(k as Key, { value: v });
  }
  // Root, or anyone with a config file, gets the system layout; an ordinary
  // user with none gets a private tree under ./mailtk-data.
  const system = file !== undefined || process.geteuid?.() === 0;
  const dataDir = path.resolve(opts.cwd ?? process.cwd(), DATA_DIR_NAME);
  const baseDir = file && explicit ? path.dirname(file) : (opts.cwd ?? process.cwd());
  const raw = {} as Record<Key, string>;
  for (const key of Object.keys(KEYS) as Key[]) {
    const spec: KeySpec = KEYS[key];
    const src = values.get(key);
    let v = src ? src.value : system ? spec.root : spec.user.replace('$D', dataDir);
    if (spec.kind === 'path' && src && v !== '' && !path.isAbsolute(v)) v = path.resolve(baseDir, v);
    checkValue(key, spec, v, src);
    raw[key] = v;
  }
  return build(file, raw, opts.overrides ?? {});
}

export function parseConfigText(text: string, file: string): Array<[Key, Source]> {
  const out: Array<[Key, Source]> = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(trimmed);
    if (!m) {
      throw new MailError('config', `expected "key = value", found "${trimmed}"`, { file, line: i + 1 });
    }
    const key = m[1];
    if (!(key in KEYS)) {
      throw new MailError('config', `unknown key "${key}"; see mailtk.conf(5) for the keys`, { file, line: i + 1 });
    }
    let value = m[2];
    // A trailing comment after the value, when separated by white space.
    value = value.replace(/\s+#.*$/, '');
    out.push([key as Key, { value, file, line: i + 1 }]);
  }
  return out;
}

const LISTEN_KEYS = new Set<Key>(['smtp_listen', 'submission_listen', 'pop3_listen', 'imap_listen', 'pop3s_listen', 'imaps_listen', 'managesieve_listen']);

function checkValue(key: Key, spec: KeySpec, v: string, src: Source | undefined): void {
  const where = src?.file ? { file: src.file, line: src.line } : undefined;
  const bad = (what: string): never => {
    throw new MailError('config', `${key} = ${v}: ${what}`, where);
  };
  switch (spec.kind) {
    case 'duration':
      if (v === '' && spec.root === '') break; // "as another key" or "none", as its entry says
      if (parseDuration(v) === undefined) bad('not a time interval (examples: 45s, 20m, 1h30m, 5d)');
      break;
    case 'count':
      if (!/^\d+$/.test(v)) bad('not a whole number');
      break;
    case 'bytes':
      if (parseBytes(v) === undefined) bad('not a size in bytes (examples: 10000000, 10M, 512k)');
      break;
    case 'bool':
      if (!/^(yes|no|true|false|on|off|1|0)$/i.test(v)) bad('not yes or no');
      break;
    case 'path':
      if (v === '') bad('empty path');
      break;
    default:
      break;
  }
  if (key === 'dns_servers' && v !== '' && !splitList(v).every(isServerAddress)) {
    bad('expected a list of resolver addresses, e.g. "127.0.0.1:5353, [::1]:53"');
  }
  if (key === 'quota_exceeded' && v !== 'defer' && v !== 'bounce') bad('expected defer or bounce');
  if (key === 'smart_host' && v !== '' && !/^(smtp:)?(\[[^\]\s]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(v)) {
    bad('expected "[host]:port", "[host]", "host" or "host:port"');
  }
  if (key === 'mailbox_transport' && v !== '' && !/^lmtp:(unix:\/\S+|\[[^\]\s]+\](:\d{1,5})?|[A-Za-z0-9.-]+(:\d{1,5})?)$/i.test(v)) {
    bad('expected "lmtp:[host]:port", "lmtp:host:port" or "lmtp:unix:/path"');
  }
  if (key === 'lmtp_recipient' && v !== 'full' && v !== 'local') bad('must be full or local');
  if (key === 'smtp_tls_security_level' && !(TLS_LEVELS as readonly string[]).includes(v)) {
    bad('must be none, may, encrypt or verify');
  }
  if (key === 'client_rate_time_unit' && parseDuration(v) === 0) bad('must be longer than 0');
  if (key === 'remote_concurrency' && Number(v) < 1) bad('must be at least 1');
  // Defaults are known good; parsing addresses costs node:net's IPv6 regex on every command.
  if (LISTEN_KEYS.has(key) && src && !splitList(v).every((a) => parseListenAddress(a))) {
    bad('expected a list of "address:port", IPv6 as "[::1]:port"');
  }
  if (key === 'client_limit_exceptions' && !splitList(v).every((c) => c === '$relay_networks' || isCidr(c))) {
    bad('expected a list of networks and $relay_networks, e.g. "$relay_networks, 192.0.2.0/24"');
  }
  if (key === 'client_ipv4_prefix_length' && Number(v) > 32) bad('must be 0 to 32');
  if (key === 'client_ipv6_prefix_length' && Number(v) > 128) bad('must be 0 to 128');
  if ((key === 'dnsbl_zones' || key === 'rhsbl_zones') && !splitList(v).every((z) => /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\.?$/.test(z))) {
    bad('expected a list of DNS zones, e.g. "zen.spamhaus.org"');
  }
  if (key === 'relay_networks' && !splitList(v).every(isCidr)) bad('expected a list of networks, e.g. "127.0.0.0/8, ::1/128"');
  if (key === 'delivery_mode' && !['background', 'interactive', 'queue'].includes(v)) {
    bad('must be background, interactive or queue');
  }
}

export function parseBytes(v: string): number | undefined {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v.trim());
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase()] ?? 1;
  return Number(m[1]) * mult;
}

/** A list value: items separated by commas and/or white space. */
export function splitList(v: string): string[] {
  return v.split(/[\s,]+/).filter((x) => x !== '');
}

/** "1.2.3.4", "1.2.3.4:53", "::1" or "[::1]:53": what node:dns setServers() takes. */
function isServerAddress(s: string): boolean {
  const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s) ?? /^([^:]+)(?::(\d{1,5}))?$/.exec(s);
  if (m) return net.isIP(m[1]) !== 0 && (m[2] === undefined || Number(m[2]) <= 65535);
  return net.isIP(s) === 6;
}

/** "0.0.0.0:25" or "[::]:25"; undefined when malformed. Port 0 lets the system choose. */
export function parseListenAddress(s: string): ListenAddress | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:\[\]]+):(\d{1,5})$/.exec(s);
  if (!m || net.isIP(m[1]) === 0 || Number(m[2]) > 65535) return undefined;
  return { host: m[1], port: Number(m[2]) };
}

/**
 * 4, 6 or 0. Not net.isIP: its IPv6 regular expression takes ~10 ms to
 * compile, and every sendmail start checks relay_networks (bench/startup.mjs).
 */
function ipFamily(addr: string): 0 | 4 | 6 {
  if (!addr.includes(':')) return net.isIPv4(addr) ? 4 : 0;
  try {
    new net.SocketAddress({ address: addr, family: 'ipv6' });
    return 6;
  } catch {
    return 0;
  }
}

/** "10.0.0.0/8", "::1/128", or a bare address (a network of one). */
function isCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  const family = ipFamily(addr);
  if (family === 0 || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

export function parseBool(v: string): boolean {
  return /^(yes|true|on|1)$/i.test(v);
}

function build(file: string | undefined, raw: Record<Key, string>, overrides: Record<string, string>): Config {
  const dur = (k: Key) => parseDuration(raw[k]) as number;
  const config = {
    file,
    hostname: raw.hostname || os.hostname(),
    queueDir: raw.queue_dir,
    maildropDir: path.join(raw.queue_dir, 'maildrop'),
    mailSpoolDir: raw.mail_spool_dir,
    aliasFile: raw.alias_file,
    aliasDb: raw.alias_db,
    localHostNamesFile: raw.local_host_names_file,
    accessFile: raw.access_file,
    logFile: raw.log_file,
    pidFile: raw.pid_file,
    userDb: raw.user_db,
    defaultPrivs: raw.default_privs,
    mailOwner: raw.mail_owner,
    forwardPath: raw.forward_path,
    queueWarnMs: dur('queue_warn'),
    queueReturnMs: dur('queue_return'),
    minBackoffMs: dur('min_backoff'),
    maxBackoffMs: dur('max_backoff'),
    deliveryMode: raw.delivery_mode as Config['deliveryMode'],
    programTimeoutMs: dur('program_timeout'),
    maxHopCount: Number(raw.max_hop_count),
    maxMessageSize: parseBytes(raw.max_message_size) as number,
    relayNetworks: splitList(raw.relay_networks),
    passwdFile: raw.passwd_file,
    tlsCertFile: raw.tls_cert_file,
    tlsKeyFile: raw.tls_key_file,
    smtpVrfy: parseBool(raw.smtp_vrfy),
    smtpExpn: parseBool(raw.smtp_expn),
    maxRecipients: Number(raw.max_recipients),
    smtpTimeoutMs: dur('smtp_timeout'),
    smtpStressTimeoutMs: dur('smtp_stress_timeout'),
    smtpMaxErrors: Number(raw.smtp_max_errors),
    smtpMaxClients: Number(raw.smtp_max_clients),
    smtpMaxClientsPerIp: Number(raw.smtp_max_clients_per_ip),
    smtpMaxClientsPerSubnet: Number(raw.smtp_max_clients_per_subnet),
    clientIpv4PrefixLength: Number(raw.client_ipv4_prefix_length),
    clientIpv6PrefixLength: Number(raw.client_ipv6_prefix_length),
    clientLimitExceptions: splitList(raw.client_limit_exceptions).flatMap((c) => (c === '$relay_networks' ? splitList(raw.relay_networks) : [c])),
    smtpdTimeouts: {
      helo: raw.smtpd_helo_timeout ? dur('smtpd_helo_timeout') : dur('smtp_timeout'),
      mail: raw.smtpd_mail_timeout ? dur('smtpd_mail_timeout') : dur('smtp_timeout'),
      rcpt: raw.smtpd_rcpt_timeout ? dur('smtpd_rcpt_timeout') : dur('smtp_timeout'),
      dataBlock: raw.smtpd_data_block_timeout ? dur('smtpd_data_block_timeout') : dur('smtp_timeout'),
      data: raw.smtpd_data_timeout ? dur('smtpd_data_timeout') : undefined,
    },
    smtpClientRateLimits: {
      connections: Number(raw.smtp_client_connection_rate_limit),
      messages: Number(raw.smtp_client_message_rate_limit),
      recipients: Number(raw.smtp_client_recipient_rate_limit),
    },
    clientRateTimeUnitMs: dur('client_rate_time_unit'),
    transportMap: raw.transport_map,
    smartHost: raw.smart_host,
    dnsServers: splitList(raw.dns_servers),
    dnsTimeoutMs: dur('dns_timeout'),
    remoteConcurrency: Number(raw.remote_concurrency),
    smtpTlsLevel: raw.smtp_tls_security_level as Config['smtpTlsLevel'],
    smtpTimeouts: {
      connect: dur('smtp_connect_timeout'),
      helo: dur('smtp_helo_timeout'),
      starttls: dur('smtp_starttls_timeout'),
      mail: dur('smtp_mail_timeout'),
      rcpt: dur('smtp_rcpt_timeout'),
      dataInit: dur('smtp_data_init_timeout'),
      dataXfer: dur('smtp_data_xfer_timeout'),
      dataDone: dur('smtp_data_done_timeout'),
      quit: dur('smtp_quit_timeout'),
    },
    mailboxTransport: raw.mailbox_transport,
    lmtpRecipient: raw.lmtp_recipient as Config['lmtpRecipient'],
    apopSecretsFile: raw.apop_secrets_file,
    pop3TimeoutMs: dur('pop3_timeout'),
    imapTimeoutMs: dur('imap_timeout'),
    mailboxMaxClients: Number(raw.mailbox_max_clients),
    mailboxMaxClientsPerIp: Number(raw.mailbox_max_clients_per_ip),
    mailboxMaxClientsPerSubnet: Number(raw.mailbox_max_clients_per_subnet),
    mailboxLoginTimeoutMs: dur('mailbox_login_timeout'),
    mailboxStressTimeoutMs: dur('mailbox_stress_timeout'),
    mailboxLoginTls: parseBool(raw.mailbox_login_tls),
    imapFolderDir: raw.imap_folder_dir,
    mailboxIndexDir: raw.mailbox_index_dir,
    sieveScript: raw.sieve_script,
    authFailureDelayMs: dur('auth_failure_delay'),
    authFailureDelayMaxMs: dur('auth_failure_delay_max'),
    authClientFailures: Number(raw.auth_client_failures),
    authAccountFailures: Number(raw.auth_account_failures),
    authBlockTimeMs: dur('auth_block_time'),
    dnsblZones: splitList(raw.dnsbl_zones).map((z) => z.toLowerCase().replace(/\.$/, '')),
    rhsblZones: splitList(raw.rhsbl_zones).map((z) => z.toLowerCase().replace(/\.$/, '')),
    listDir: raw.list_dir,
    listBounceLimit: Number(raw.list_bounce_limit),
    raw,
    overrides,
  };
  // Listen lists are parsed when a daemon asks for them, not on every command.
  const lazy = (name: string, key: Key) =>
    Object.defineProperty(config, name, { get: () => listenList(raw[key]), enumerable: true });
  lazy('smtpListen', 'smtp_listen');
  lazy('submissionListen', 'submission_listen');
  lazy('pop3Listen', 'pop3_listen');
  lazy('imapListen', 'imap_listen');
  lazy('pop3sListen', 'pop3s_listen');
  lazy('imapsListen', 'imaps_listen');
  lazy('managesieveListen', 'managesieve_listen');
  return config as Config;
}

function listenList(v: string): ListenAddress[] {
  return splitList(v).map((a) => parseListenAddress(a) as ListenAddress);
}

/** The environment a child mailtk process needs to reach the same config. */
export function childEnv(config: Config): NodeJS.ProcessEnv {
  return config.file ? { ...process.env, MAILTK_CONFIG: config.file } : { ...process.env };
}

/** The -O arguments that give a child mailtk process the same overrides. */
export function childArgs(config: Config): string[] {
  return Object.entries(config.overrides).flatMap(([k, v]) => ['-O', `${k}=${v}`]);
}

/**
 * The domains this host receives mail for: its hostname, localhost, and the
 * lines of local_host_names_file (sendmail's Cw class). Lower case.
 */
export function localDomains(config: Config): Set<string> {
  const set = new Set<string>([config.hostname.toLowerCase(), 'localhost', 'localhost.localdomain']);
  const short = config.hostname.split('.')[0];
  if (short) set.add(short.toLowerCase());
  let text = '';
  try {
    text = fs.readFileSync(config.localHostNamesFile, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new MailError('config', `cannot read: ${(e as Error).message}`, { file: config.localHostNamesFile });
    }
  }
  for (const line of text.split('\n')) {
    const name = line.replace(/#.*/, '').trim().toLowerCase();
    if (name) set.add(domainKey(name));
  }
  // A literal of one of this host's own addresses names this host, for acceptance and routing alike
  // (sendmail's $=w holds them too): never a relay back to ourselves through SMTP.
  set.add('[127.0.0.1]');
  set.add('[ipv6:::1]');
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) set.add(domainKey(a.family === 'IPv6' ? `[IPv6:${a.address.replace(/%.*$/, '')}]` : `[${a.address}]`));
  }
  return set;
}

/**
 * A domain as localDomains() holds it: lower case, and an address literal in
 * one canonical form ([192.0.2.1], [ipv6:2001:db8::1]), so that
 * [IPv6:0:0:0:0:0:0:0:1] and [ipv6:::1] are one host.
 */
export function domainKey(domain: string): string {
  const d = domain.toLowerCase();
  if (!d.startsWith('[') || !d.endsWith(']')) return d;
  const inner = d.slice(1, -1);
  if (inner.startsWith('ipv6:')) return net.isIPv6(inner.slice(5)) ? `[ipv6:${new URL(`http://[${inner.slice(5)}]/`).hostname.slice(1, -1)}]` : d;
  return net.isIPv4(inner) ? `[${inner}]` : d;
}

/** True when this host receives mail for `domain` (a name of localDomains(), or a literal of its own address). */
export function isLocalDomain(domains: Set<string>, domain: string): boolean {
  return domains.has(domainKey(domain));
}
