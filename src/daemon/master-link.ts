// The worker's side of its root master (master.ts): the listening sockets the
// master bound, connections the master happened to accept, queue runs the
// master's runner makes, and the hand-over of logged-in POP3/IMAP sessions to
// the users' agents. The worker runs as mail_owner and asks; it cannot bind a
// privileged port, start a process as anyone else, or open a user's mailbox.

import type net from 'node:net';
import type { Config, ListenAddress } from '../config/index.ts';
import { type Binder, announceListener } from '../server/bind.ts';
import type { SessionBroker } from '../server/mailbox-listen.ts';
import type { MasterToWorker, WorkerToMaster } from './master.ts';

export class MasterLink {
  private servers = new Map<string, net.Server>();
  private seq = 0;
  private runs = new Map<number, { resolve(): void; reject(e: Error): void }>();
  private sessions = new Map<number, (r: net.Socket | string) => void>();
  private handlers: { reload?(): void; stop?(): void } = {};

  private constructor() {}

  /** Wait for the master's listening sockets; resolves once they have all come. */
  static connect(): Promise<MasterLink> {
    const link = new MasterLink();
    return new Promise((resolve) => {
      process.on('message', (m: MasterToWorker, handle?: net.Server | net.Socket) => {
        if (m?.type === 'listeners-done') resolve(link);
        else link.onMessage(m, handle);
      });
      process.on('disconnect', () => link.handlers.stop?.());
    });
  }

  private onMessage(m: MasterToWorker, handle?: net.Server | net.Socket): void {
    switch (m?.type) {
      case 'listener':
        if (handle) this.servers.set(key(m.kind, m), holdConnections(handle as net.Server));
        break;
      case 'conn': {
        const server = this.servers.get(key(m.kind, m));
        if (server && handle) server.emit('connection', handle);
        else (handle as net.Socket | undefined)?.destroy();
        break;
      }
      case 'run-done': {
        const w = this.runs.get(m.n);
        this.runs.delete(m.n);
        if (m.error) w?.reject(new Error(m.error));
        else w?.resolve();
        break;
      }
      case 'session-ok': {
        const take = this.sessions.get(m.n);
        if (take && handle) take(handle as net.Socket);
        else if (take) take('internal error (the session did not arrive)');
        else (handle as net.Socket | undefined)?.destroy(); // given up already
        break;
      }
      case 'session-refused':
        this.sessions.get(m.n)?.(m.why);
        this.sessions.delete(m.n);
        break;
      case 'reload':
        this.handlers.reload?.();
        break;
      case 'stop':
        this.handlers.stop?.();
        break;
    }
  }

  on(event: 'reload' | 'stop', fn: () => void): void {
    this.handlers[event] = fn;
  }

  /** The listeners take the master's sockets instead of binding; connections held meanwhile follow. */
  binder(config: Config): Binder {
    return async (kind, a) => {
      const server = this.servers.get(key(kind, a));
      if (!server) return undefined;
      announceListener(config, server, kind, a);
      // After the caller's own 'connection' listener is on (it is added when this resolves).
      setImmediate(() => server.emit(RELEASE));
      return server;
    };
  }

  /** A queue run by the master's runner. */
  run(): Promise<void> {
    const n = ++this.seq;
    return new Promise((resolve, reject) => {
      this.runs.set(n, { resolve, reject });
      this.send({ type: 'run', n });
    });
  }

  readonly broker: SessionBroker = (info) =>
    new Promise((resolve) => {
      const n = ++this.seq;
      // The answer's socket can be lost on its way (this process out of descriptors): the login is refused, not left hanging.
      const timer = setTimeout(() => this.sessions.get(n)?.('internal error (no answer from the master)'), SESSION_ANSWER_MS);
      this.sessions.set(n, (r) => {
        clearTimeout(timer);
        this.sessions.delete(n);
        resolve(r);
      });
      this.send({ type: 'session', n, info });
    });

  private send(m: WorkerToMaster): void {
    if (process.connected) process.send!(m);
  }
}

function key(kind: string, a: Pick<ListenAddress, 'host' | 'port'>): string {
  return `${kind} ${a.host} ${a.port}`;
}

const RELEASE = 'mailtk:release-held';
/** How long a login waits for the master to hand it to the user's agent. */
const SESSION_ANSWER_MS = 30_000;

/**
 * A server received from the master accepts at once; until the worker's
 * listener takes it (after the commit log's recovery), connections wait here
 * unread, then go to that listener in order.
 */
function holdConnections(server: net.Server): net.Server {
  const held: net.Socket[] = [];
  const hold = (s: net.Socket) => {
    s.pause();
    held.push(s);
  };
  server.on('connection', hold);
  server.once(RELEASE, () => {
    server.off('connection', hold);
    for (const s of held.splice(0)) server.emit('connection', s);
  });
  return server;
}
