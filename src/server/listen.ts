// The network side of the SMTP listener: one TCP server per address of
// smtp_listen and submission_listen, the limits on sessions (in all, per
// client address and subnet, with Postfix's stress mode: idle clients get
// smtp_stress_timeout once three quarters of smtp_max_clients are in use;
// conn-control.ts), rate limits per client address (anvil.ts), reverse names through the resolvers of dns_servers (loopback answered
// locally), SIGHUP reloads that keep sessions going, and the shutdown that
// lets sessions finish before it says 421. The protocol itself is in
// smtp-connection.ts.

import net from 'node:net';
import type { Config, ListenAddress } from '../config/index.ts';
import { makeResolver, type MailResolver } from '../deliver/index.ts';
import { log } from '../log/index.ts';
import type { QueueId } from '../queue/index.ts';
import { unmapped } from './access.ts';
import { Anvil } from './anvil.ts';
import { type ClientLimits, ConnControl, type Refusal, refuseSocket, watchAcceptErrors } from './conn-control.ts';
import { AuthThrottle } from './auth-throttle.ts';
import { Policy } from './policy.ts';
import { type Reply, fail, formatReply } from './replies.ts';
import { type ListenerKind, SmtpSession } from './smtp-connection.ts';
import { ensureCertificate } from './tls.ts';
import { type Binder, bindHere } from './bind.ts';

export interface BoundAddress {
  kind: 'smtp' | 'submission';
  host: string;
  /** The port bound (the system's choice when the config said 0). */
  port: number;
}

export interface SmtpListeners {
  addresses: BoundAddress[];
  /** SIGHUP: a new config, access file, aliases, passwords and certificate; sessions carry on. */
  reload(config: Config): void;
  /** Stop accepting; let sessions end by themselves for up to timeoutMs; then 421 and close the rest. */
  close(timeoutMs: number): Promise<void>;
}

export interface ListenOptions {
  /** Called after each message is committed to the queue (the daemon starts its delivery). */
  onAccepted?(id: QueueId): void;
  /** Where the listening sockets come from (default: bound here). */
  binder?: Binder;
  /** The login throttle, one a daemon, shared with its mailbox listeners (default: one of their own). */
  throttle?: AuthThrottle;
}

/** Sessions a shut-down listener still waits for after telling them 421. */
const CLOSE_GRACE_MS = 5000;

export function isLoopback(ip: string): boolean {
  const plain = unmapped(ip);
  return net.isIPv4(plain) ? plain.startsWith('127.') : plain === '::1';
}

class Listeners implements SmtpListeners {
  addresses: BoundAddress[] = [];
  private readonly servers: net.Server[] = [];
  private readonly sessions = new Set<SmtpSession>();
  private readonly control: ConnControl;
  private readonly anvil: Anvil;
  private resolver: MailResolver;

  constructor(private config: Config, private policy: Policy, private readonly opts: ListenOptions) {
    this.resolver = makeResolver(config);
    this.control = new ConnControl(config, limitsOf(config));
    this.anvil = new Anvil(config, (ip) => this.control.exempt(ip));
  }

  async open(kind: 'smtp' | 'submission', a: ListenAddress): Promise<void> {
    const server = await (this.opts.binder ?? bindHere(this.config))(kind, a);
    if (!server) return;
    server.on('connection', (socket: net.Socket) => this.onConnection(socket, kind));
    // No server.maxConnections: a refused socket is closed at once (conn-control.ts), so what is open is ours to count.
    watchAcceptErrors(server, () => this.config, kind);
    this.servers.push(server);
    this.addresses.push({ kind, host: a.host, port: (server.address() as net.AddressInfo).port });
  }

  private onConnection(socket: net.Socket, kind: ListenerKind): void {
    const ip = unmapped(socket.remoteAddress ?? '');
    socket.on('error', () => undefined); // a reset mid-session ends it through 'close'
    const rated = this.anvil.hit(ip, 'connection');
    if (rated) return refuseSocket(socket, formatReply(rated));
    const slot = this.control.admit(ip);
    if ('why' in slot) return refuseSocket(socket, formatReply(this.refusal(slot)));
    socket.setNoDelay(true);
    const session = new SmtpSession(
      {
        kind,
        policy: () => this.policy,
        client: { address: ip, name: undefined, localAddress: unmapped(socket.localAddress ?? '').toLowerCase() },
        login: '',
        loopback: isLoopback(ip),
        reverse: (addr) => this.reverse(addr),
        stressed: () => this.control.stressed(),
        limit: (event, id) => this.anvil.hit(ip, event, id),
        onAccepted: this.opts.onAccepted,
      },
      socket,
      socket,
    );
    this.sessions.add(session);
    this.control.attach(slot, {
      idleSince: () => session.idleSince(),
      rearmTimer: () => session.rearmTimer(),
      // Told 421 and closed: the descriptor goes as soon as the reply is written, whatever the client does.
      displace: () => {
        session.displace();
        socket.destroySoon();
        setTimeout(() => socket.destroy(), 1000).unref();
      },
    });
    void session.finished.then(() => {
      this.sessions.delete(session);
      slot.release();
    });
    void session.start();
  }

  private refusal(r: Refusal): Reply {
    const host = this.config.hostname;
    if (r.why === 'busy') return fail('server-busy', `${host} Too many open connections, try again later`);
    if (r.why === 'address') return fail('too-many-connections', `${host} Too many connections from your host`);
    return fail('too-many-connections', `${host} Too many connections from your network`);
  }

  /** The forward-confirmed name, or undefined: an unconfirmed PTR is not worth repeating. */
  private async reverse(ip: string): Promise<string | undefined> {
    if (isLoopback(ip)) return 'localhost';
    const r = await this.resolver.reverse(ip);
    return r.confirmed ? r.name : undefined;
  }

  reload(config: Config): void {
    let policy: Policy;
    try {
      policy = new Policy(config, { network: true, throttle: this.opts.throttle });
    } catch (e) {
      log(this.config, '', `SIGHUP: SMTP policy not reloaded, the old one stays: ${(e as Error).message}`);
      return;
    }
    const listen = (c: Config) => JSON.stringify([c.smtpListen, c.submissionListen]);
    if (listen(config) !== listen(this.config)) log(config, '', 'SIGHUP: listen addresses changed; restart the daemon to listen on them');
    const old = this.policy;
    this.policy = policy;
    this.config = config;
    this.resolver = makeResolver(config);
    this.control.reload(config, limitsOf(config));
    this.anvil.reload(config);
    // Lookups are synchronous, so no session is inside the old policy at this point.
    old.close();
    log(config, '', 'SMTP listeners: configuration, access rules, aliases and passwords reloaded');
  }

  async close(timeoutMs: number): Promise<void> {
    // server.close() calls back only once every connection is gone: start it, await it last.
    const closed = this.servers.map((s) => new Promise((resolve) => s.close(resolve)));
    const all = () => Promise.all([...this.sessions].map((s) => s.finished));
    await Promise.race([all(), sleep(timeoutMs)]);
    for (const s of this.sessions) s.shutdown();
    await Promise.race([all(), sleep(CLOSE_GRACE_MS)]);
    await Promise.race([Promise.all(closed), sleep(CLOSE_GRACE_MS)]);
    this.policy.close();
  }
}

function limitsOf(config: Config): ClientLimits {
  return { name: 'smtp', maxClients: config.smtpMaxClients, maxPerAddress: config.smtpMaxClientsPerIp, maxPerSubnet: config.smtpMaxClientsPerSubnet };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

export async function startSmtpListeners(config: Config, opts: ListenOptions = {}): Promise<SmtpListeners> {
  ensureCertificate(config);
  const throttled = { ...opts, throttle: opts.throttle ?? new AuthThrottle() };
  const listeners = new Listeners(config, new Policy(config, { network: true, throttle: throttled.throttle }), throttled);
  try {
    for (const a of config.smtpListen) await listeners.open('smtp', a);
    for (const a of config.submissionListen) await listeners.open('submission', a);
  } catch (e) {
    await listeners.close(0);
    throw e;
  }
  return listeners;
}
