// LMTP hand-off (RFC 2033), Postfix's mailbox_transport: with
// mailbox_transport = lmtp:[host]:port or lmtp:unix:/path, the mailbox
// deliveries of a queue run (what is left for a user's mailbox after aliases
// and .forward; |programs and /files stay local) go to a mail store's LMTP
// server, such as Dovecot's, instead of the mbox under /var/spool/mail. The
// SMTP client does the talking in its LMTP mode (LHLO; after the data one
// reply per accepted recipient), so each recipient gets its own answer: a 4xx
// defers that recipient only, a 5xx bounces it. A connection that cannot be
// made or is lost defers whatever it was carrying.
// Known limits: one connection a run, no connection cache between runs; the
// session is in the clear (keep the store on a UNIX socket or a private
// network); the server's first address that answers is used, no others.

import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { FAILURES } from '../message/status.ts';
import { makeResolver } from './dns.ts';
import { SmtpClientError, SmtpWire } from './smtp-client.ts';
import { hasEightBit, wireSize } from './smtp-client-data.ts';
import { type Envelope, type Session, SessionRefused, TransactionLost, openSession, sendTransaction } from './smtp-client-session.ts';
import {
  type DeadRoutes,
  type HostFailure,
  MAX_RCPTS,
  type RemoteJob,
  type RemoteOutcome,
  type RemoteRecipient,
  type Target,
  chunk,
  hostFailure,
  outcomeOf,
} from './remote.ts';

/** IANA's port for LMTP over TCP. */
export const LMTP_PORT = 24;

/** Where the LMTP server listens. */
export type LmtpPlace = { kind: 'unix'; path: string } | { kind: 'inet'; host: string; port: number };

/** "lmtp:unix:/path", "lmtp:[host]:port", "lmtp:host:port" (port 24 when left out); undefined when malformed. */
export function parseMailboxTransport(v: string): LmtpPlace | undefined {
  const m = /^lmtp:(.+)$/i.exec(v.trim());
  if (!m) return undefined;
  if (/^unix:/i.test(m[1])) {
    const p = m[1].slice(5);
    return p.startsWith('/') ? { kind: 'unix', path: p } : undefined;
  }
  const hop = /^\[([^\]\s]+)\](?::(\d{1,5}))?$/.exec(m[1]) ?? /^([A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(m[1]);
  if (!hop) return undefined;
  const port = hop[2] === undefined ? LMTP_PORT : Number(hop[2]);
  return port >= 1 && port <= 65535 ? { kind: 'inet', host: hop[1].replace(/^ipv6:/i, ''), port } : undefined;
}

/** The address given to RCPT TO: user@hostname as queued, or the bare user (lmtp_recipient = local). */
function lmtpAddress(config: Config, address: string): string {
  const at = address.lastIndexOf('@');
  return config.lmtpRecipient === 'local' && at > 0 ? address.slice(0, at) : address;
}

/** Hand every job's recipients (mailbox deliveries) to the LMTP server; one outcome per recipient object. */
export async function deliverLmtp(config: Config, jobs: RemoteJob[], dead: DeadRoutes = new Map()): Promise<Map<RemoteRecipient, RemoteOutcome>> {
  const out = new Map<RemoteRecipient, RemoteOutcome>();
  const all = (f: RemoteOutcome) => jobs.forEach((j) => j.recipients.forEach((r) => out.has(r) || out.set(r, f)));
  const key = `lmtp:${config.mailboxTransport}`;
  const known = dead.get(key);
  if (known) {
    all({ result: { ...known.status, text: `delivery temporarily suspended: ${known.status.text}` }, relay: known.relay, suspended: true });
    return out;
  }
  const target = await targetOf(config);
  if ('failure' in target) {
    all({ result: target.failure.status, relay: target.failure.relay });
    return out;
  }
  let session: Session | undefined;
  try {
    for (const job of jobs) {
      for (const recipients of chunk(job.recipients, MAX_RCPTS)) {
        const opened = session ?? (await connect(config, target, job.id));
        if ('failure' in opened) {
          dead.set(key, opened.failure);
          all({ result: opened.failure.status, relay: opened.failure.relay });
          return out;
        }
        session = opened;
        if (!(await transact(config, session, target, job, recipients, out))) {
          session.wire.close();
          session = undefined;
        }
      }
    }
  } finally {
    if (session) await session.wire.quit(config.smtpTimeouts.quit);
  }
  return out;
}

/** The server as a Target: a UNIX socket, or the first address of [host] (an IP literal needs no DNS). */
async function targetOf(config: Config): Promise<Target | { failure: HostFailure }> {
  const place = parseMailboxTransport(config.mailboxTransport);
  if (!place) {
    const text = `mailbox_transport = ${config.mailboxTransport}: expected lmtp:[host]:port or lmtp:unix:/path`;
    return { failure: { status: { status: FAILURES.config.status, text }, relay: '' } };
  }
  if (place.kind === 'unix') return { name: place.path, address: '', port: 0 };
  const lookup = await makeResolver(config).directHost(place.host);
  if ('failure' in lookup) return { failure: { status: lookup.failure, relay: '' } };
  return { name: place.host, address: lookup.hosts[0].addresses[0], port: place.port };
}

async function connect(config: Config, target: Target, id: string): Promise<Session | { failure: HostFailure }> {
  const t = config.smtpTimeouts;
  try {
    const wire = target.address ? await SmtpWire.connect(target.address, target.port, target.name, t.connect) : await SmtpWire.connectUnix(target.name, t.connect);
    try {
      return await openSession(wire, { helo: config.hostname, tls: 'none', timeouts: t, lmtp: true });
    } catch (e) {
      wire.close();
      throw e;
    }
  } catch (e) {
    if (!(e instanceof SmtpClientError || e instanceof SessionRefused)) throw e;
    const failure = hostFailure(target, e);
    log(config, id, `LMTP ${failure.status.text}`);
    return { failure };
  }
}

/** One transaction; false when the session is no longer fit for another. */
async function transact(config: Config, s: Session, target: Target, job: RemoteJob, recipients: RemoteRecipient[], out: Map<RemoteRecipient, RemoteOutcome>): Promise<boolean> {
  const env: Envelope = {
    sender: job.sender,
    recipients: recipients.map((r) => ({ ...r, address: lmtpAddress(config, r.address) })),
    data: job.data,
    wireSize: wireSize(job.data),
    eightBit: hasEightBit(job.data),
    bodyType: job.bodyType,
    envid: job.envid,
    ret: job.ret,
  };
  try {
    const results = await sendTransaction(s, env, config.smtpTimeouts);
    recipients.forEach((r, i) => out.set(r, outcomeOf(results[i], target)));
    return s.usable;
  } catch (e) {
    if (!(e instanceof TransactionLost)) throw e;
    const failure = hostFailure(target, e.error);
    log(config, job.id, `LMTP ${failure.status.text}`);
    for (const r of recipients) out.set(r, { result: failure.status, relay: failure.relay });
    return false;
  }
}
