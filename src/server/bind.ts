// Binding one listening socket, shared by the SMTP and the mailbox listeners:
// the listen() call, IPv6 addresses skipped on hosts without IPv6, a clear
// error naming the key, and the log line with the port actually bound (tests
// listen on port 0 and read it from the log). A Binder is where a listener
// gets its socket: bound here (bindHere), or bound by the root master and
// passed to its unprivileged worker (src/daemon/master-link.ts).

import net from 'node:net';
import type { Config, ListenAddress } from '../config/index.ts';
import { log, logStartup } from '../log/index.ts';
import { MailError } from '../message/status.ts';

export function showAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Listen on `a`; the bound port, or undefined when an IPv6 address cannot exist here. */
export async function bindServer(config: Config, server: net.Server, kind: string, a: ListenAddress, announce = true): Promise<number | undefined> {
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: a.host, port: a.port, ipv6Only: net.isIPv6(a.host), backlog: 511 }, () => resolve());
    });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (net.isIPv6(a.host) && (code === 'EAFNOSUPPORT' || code === 'EADDRNOTAVAIL')) {
      log(config, '', `${kind} listener ${showAddress(a.host, a.port)} skipped: no IPv6 on this host (${code})`);
      return undefined;
    }
    throw new MailError('listen-failed', `cannot listen on ${showAddress(a.host, a.port)} (${kind}_listen): ${(e as Error).message}`);
  }
  server.on('error', (e) => log(config, '', `SYSERR: ${kind} listener: ${e.message}`));
  const port = (server.address() as net.AddressInfo).port;
  if (announce) announceListener(config, server, kind, a);
  return port;
}

/** The log line that says a listener serves (tests read the port the system chose from it). */
export function announceListener(config: Config, server: net.Server, kind: string, a: ListenAddress): void {
  logStartup(config, `${kind} listener on ${showAddress(a.host, (server.address() as net.AddressInfo).port)}`);
}

/** A listening server for one address of a *_listen key, or undefined when it cannot exist here. */
export type Binder = (kind: string, a: ListenAddress) => Promise<net.Server | undefined>;

export function bindHere(config: Config): Binder {
  return async (kind, a) => {
    const server = net.createServer();
    return (await bindServer(config, server, kind, a)) === undefined ? undefined : server;
  };
}
