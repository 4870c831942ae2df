// The mailbox listeners: one TCP server per address of pop3_listen and
// imap_listen, TLS from the first byte on pop3s_listen and imaps_listen, all
// under one limit on sessions (mailbox_max_clients), one per client address
// and one per subnet (client_limit_exceptions excepted, as for SMTP;
// conn-control.ts). A session not logged in yet waits at most
// mailbox_login_timeout for each command, and mailbox_stress_timeout once
// three quarters of the slots are taken; a full listener closes the longest
// idle of those for a newcomer.
// The certificate is the SMTP listener's (tls.ts). close() says goodbye to
// every session (IMAP "* BYE", POP3 "-ERR") and waits for them to end.
// In a root daemon this runs in the unprivileged worker, which only checks
// logins: a session that logs in is handed to a process running as its user
// (handoff), and the worker relays the bytes (and keeps the TLS) until the
// session ends, as Dovecot's login processes do.

import net from 'node:net';
import type tls from 'node:tls';
import type { Config, ListenAddress } from '../config/index.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import { type ClientLimits, ConnControl, type Refusal, refuseSocket, watchAcceptErrors } from './conn-control.ts';
import { ImapSession } from './imap-session.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { MailboxAccess } from './mailbox-access.ts';
import { Conn } from './mailbox-conn.ts';
import { Pop3Session } from './pop3-session.ts';
import { ManageSieveSession } from './managesieve.ts';
import { ensureCertificate, loadTlsContext } from './tls.ts';
import { type Binder, bindHere } from './bind.ts';

export type MailboxProtocol = 'pop3' | 'imap' | 'pop3s' | 'imaps' | 'managesieve';

export interface MailboxAddress {
  kind: MailboxProtocol;
  host: string;
  port: number;
}

export interface MailboxListeners {
  addresses: MailboxAddress[];
  /** SIGHUP: new settings, passwords and certificate for new sessions. */
  reload(config: Config): void;
  /** Stop accepting, end every session, and wait (at most timeoutMs) for them. */
  close(timeoutMs?: number): Promise<void>;
}

/** A login handed on: what the user's process needs to carry the session on. */
export interface LoginHandoff {
  proto: 'pop3' | 'imap' | 'managesieve';
  user: string;
  method: string;
  /** IMAP: the tag of the LOGIN or AUTHENTICATE the user's process answers. */
  tag?: string;
}

/**
 * Hand a logged-in session to the user's process: resolves with why it was
 * refused, or with undefined when the session (relayed meanwhile) is over.
 */
export type Handoff = (conn: Conn, login: LoginHandoff) => Promise<string | undefined>;

/** Where a root worker's logins go: a socket to the user's process, or why not. */
export type SessionBroker = (info: LoginHandoff & { ip: string; secure: boolean }) => Promise<net.Socket | string>;

export interface MailboxListenOptions {
  binder?: Binder;
  broker?: SessionBroker;
  /** The login throttle, one a daemon, shared with its SMTP listeners (default: one of their own). */
  throttle?: AuthThrottle;
}

/** What a session needs from its listener. */
export interface SessionContext {
  config: Config;
  access: MailboxAccess;
  tls: tls.SecureContext | undefined;
  handoff?: Handoff;
}

interface Session {
  /** 'authorization' (POP3) and 'nonauth' (IMAP) are before login. */
  state: string;
  run(): Promise<void>;
  shutdown(): void;
}

class Listeners implements MailboxListeners {
  addresses: MailboxAddress[] = [];
  private servers: net.Server[] = [];
  private sessions = new Set<Session>();
  private readonly control: ConnControl;
  private ctx: SessionContext;

  private readonly throttle: AuthThrottle;

  constructor(private config: Config, private opts: MailboxListenOptions) {
    this.throttle = opts.throttle ?? new AuthThrottle();
    this.ctx = this.context(config);
    this.control = new ConnControl(config, limitsOf(config));
  }

  private context(config: Config): SessionContext {
    const broker = this.opts.broker;
    return { config, access: new MailboxAccess(config, true, this.throttle), tls: loadTlsContext(config), handoff: broker && ((conn, login) => relayTo(broker, conn, login)) };
  }

  async open(kind: MailboxProtocol, a: ListenAddress): Promise<void> {
    const implicit = kind === 'pop3s' || kind === 'imaps';
    if (implicit && !this.ctx.tls) throw new MailError('config', `${kind}_listen needs a certificate: tls_cert_file and tls_key_file cannot be read`);
    // Implicit TLS is STARTTLS at the first byte: the same TLSSocket wrap, so reloads reach both.
    const server = await (this.opts.binder ?? bindHere(this.config))(kind, a);
    if (!server) return;
    server.on('connection', (socket: net.Socket) => this.onConnection(socket, kind));
    watchAcceptErrors(server, () => this.config, kind);
    this.servers.push(server);
    this.addresses.push({ kind, host: a.host, port: (server.address() as net.AddressInfo).port });
  }

  private onConnection(socket: net.Socket, kind: MailboxProtocol): void {
    const ip = (socket.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
    socket.on('error', () => undefined);
    const imap = kind === 'imap' || kind === 'imaps';
    const sieve = kind === 'managesieve';
    const goodbye = (text: string) => (sieve ? `BYE "${text}"\r\n` : imap ? `* BYE ${text}\r\n` : `-ERR [SYS/TEMP] ${text}\r\n`);
    const slot = this.control.admit(ip);
    if ('why' in slot) return refuseSocket(socket, goodbye(refusalText(slot)));
    socket.setNoDelay(true);
    const conn = new Conn(socket, ip, false);
    const session: Session = sieve ? new ManageSieveSession(conn, this.ctx) : imap ? new ImapSession(conn, this.ctx) : new Pop3Session(conn, this.ctx);
    const preLogin = () => !conn.released && (session.state === 'authorization' || session.state === 'nonauth');
    conn.limitIdle = (ms) => (preLogin() ? this.loginTimeout(ms) : ms);
    this.control.attach(slot, {
      idleSince: () => (preLogin() && !conn.closed ? conn.lastActive : undefined),
      displace: () => refuseSocket(conn.socket, goodbye('Too many open connections, closing an idle session')),
      rearmTimer: () => conn.rearm(),
    });
    this.sessions.add(session);
    const implicit = kind === 'pop3s' || kind === 'imaps';
    // A failed handshake is the client's business: no session, no log line.
    const started = implicit ? conn.startTls(this.ctx.tls!).then(() => true, () => false) : Promise.resolve(true);
    void started
      .then((ok) => (ok ? session.run() : undefined))
      .catch((e) => log(this.config, '', `SYSERR: ${kind} session from [${ip}]: ${(e as Error).stack ?? e}`))
      .finally(() => {
        conn.close();
        this.sessions.delete(session);
        slot.release();
      });
  }

  /** Before login: mailbox_login_timeout, and mailbox_stress_timeout under stress. */
  private loginTimeout(ms: number): number {
    const t = Math.min(ms, this.config.mailboxLoginTimeoutMs);
    return this.control.stressed() ? Math.min(t, this.config.mailboxStressTimeoutMs) : t;
  }

  reload(config: Config): void {
    try {
      this.ctx = this.context(config);
      this.config = config;
      this.control.reload(config, limitsOf(config));
      log(config, '', 'mailbox listeners: configuration, passwords and certificate reloaded');
    } catch (e) {
      log(this.config, '', `SIGHUP: mailbox listeners not reloaded, the old settings stay: ${(e as Error).message}`);
    }
  }

  async close(timeoutMs = 5000): Promise<void> {
    const closed = this.servers.map((s) => new Promise((resolve) => s.close(resolve)));
    for (const s of this.sessions) s.shutdown();
    const deadline = Date.now() + timeoutMs;
    while (this.sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await Promise.race([Promise.all(closed), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}

function limitsOf(config: Config): ClientLimits {
  return { name: 'mailbox', maxClients: config.mailboxMaxClients, maxPerAddress: config.mailboxMaxClientsPerIp, maxPerSubnet: config.mailboxMaxClientsPerSubnet };
}

function refusalText(r: Refusal): string {
  if (r.why === 'busy') return 'Too many open connections, try again later';
  return r.why === 'address' ? 'Too many connections from your address' : 'Too many connections from your network';
}

/** Open pop3_listen, imap_listen, pop3s_listen and imaps_listen; the daemon calls this. */
export async function startMailboxListeners(config: Config, opts: MailboxListenOptions = {}): Promise<MailboxListeners> {
  const wanted: Array<[MailboxProtocol, ListenAddress[]]> = [
    ['pop3', config.pop3Listen], ['imap', config.imapListen], ['pop3s', config.pop3sListen], ['imaps', config.imapsListen],
    ['managesieve', config.managesieveListen],
  ];
  if (wanted.some(([, list]) => list.length > 0)) ensureCertificate(config);
  const listeners = new Listeners(config, opts);
  try {
    for (const [kind, list] of wanted) for (const a of list) await listeners.open(kind, a);
  } catch (e) {
    await listeners.close(0);
    throw e;
  }
  return listeners;
}

/**
 * The worker's half of a handed-on session: the user's process gets a socket,
 * then the input not read yet, and from then on the worker only relays bytes
 * both ways (TLS stays here) until either side closes.
 */
async function relayTo(broker: SessionBroker, conn: Conn, login: LoginHandoff): Promise<string | undefined> {
  const got = await broker({ ...login, ip: conn.remoteAddress, secure: conn.secure });
  if (typeof got === 'string') return got;
  const client = conn.socket;
  const rest = conn.release();
  if (rest.length) got.write(rest);
  await new Promise<void>((resolve) => {
    let open = 2;
    const done = () => {
      if (--open === 0) resolve();
    };
    for (const [from, to] of [[client, got], [got, client]] as const) {
      from.on('error', () => to.destroy());
      from.on('close', () => {
        to.end();
        setTimeout(() => to.destroy(), 2000).unref();
        done();
      });
      from.pipe(to);
      from.resume();
    }
  });
  return undefined;
}
