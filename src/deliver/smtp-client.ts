// The wire of one outbound SMTP connection: connect with a time limit, read
// replies (multi-line, RFC 5321 4.2) each within its own time limit, write
// commands, upgrade to TLS, stream the message body; over TCP, or over a
// UNIX-domain socket for LMTP. What the commands mean and in which order
// they go is smtp-client-session.ts's job.
// Why not nodemailer's SMTPConnection: it sends one NOTIFY/ORCPT for every
// recipient of an envelope (we must pass each recipient's own on) and has
// only connection, greeting and idle time limits (we keep Postfix's one per
// stage); the rest of what we need is this small file.

import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { END_OF_DATA, wireChunks } from './smtp-client-data.ts';

export interface SmtpReply {
  code: number;
  /** RFC 3463 code from the first line ("5.1.1"), when the server gave one. */
  enhanced?: string;
  /** Each line's text after "250-" / "250 ". */
  lines: string[];
}

/** connect: no connection; timeout, lost: it broke; tls: handshake failed; no-tls: TLS required but not to be had. */
export type SmtpErrorKind = 'connect' | 'timeout' | 'lost' | 'protocol' | 'tls' | 'no-tls';

/** A failure of the connection itself, as opposed to a reply the server chose. */
export class SmtpClientError extends Error {
  constructor(
    readonly kind: SmtpErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SmtpClientError';
  }
}

// RFC 5321 4.5.3.1.5 allows 512 octets a reply line; servers send longer ones, but not this long.
const MAX_LINE = 64 * 1024;
const MAX_LINES = 1000;

/** "550 5.1.1 <x>... User unknown", lines joined by spaces: the reply as quoted in logs and DSNs. */
export function replyText(r: SmtpReply): string {
  return `${r.code} ${r.lines.join(' ')}`.trim();
}

/** The text after the codes, for sendmail's "stat=Sent (...)": "Ok: queued as X". */
export function replyMessage(r: SmtpReply): string {
  const first = r.enhanced ? r.lines[0].slice(r.enhanced.length).trim() : r.lines[0];
  return [first, ...r.lines.slice(1)].join(' ').trim();
}

export class SmtpWire {
  private socket: net.Socket;
  private pending: Buffer = Buffer.alloc(0);
  private lines: string[] = [];
  private replies: SmtpReply[] = [];
  private waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  private failure: SmtpClientError | undefined;
  /** A name for error texts: "mx.b.test[127.0.0.1]:25". */
  readonly peer: string;

  private constructor(socket: net.Socket, peer: string) {
    this.socket = socket;
    this.peer = peer;
    this.attach(socket);
  }

  /** Open a TCP connection to an IP address within `timeoutMs`. */
  static async connect(address: string, port: number, name: string, timeoutMs: number): Promise<SmtpWire> {
    const socket = net.connect({ host: address, port });
    socket.setNoDelay(true);
    return SmtpWire.opened(socket, `${name}[${address}]:${port}`, timeoutMs);
  }

  /** Open a UNIX-domain socket (an LMTP server's, such as Dovecot's) within `timeoutMs`. */
  static async connectUnix(socketPath: string, timeoutMs: number): Promise<SmtpWire> {
    return SmtpWire.opened(net.connect({ path: socketPath }), socketPath, timeoutMs);
  }

  private static async opened(socket: net.Socket, peer: string, timeoutMs: number): Promise<SmtpWire> {
    // A second error after the first (which `once` reports) must not crash the process.
    socket.on('error', () => undefined);
    try {
      await withTimeout(once(socket, 'connect'), timeoutMs, () => socket.destroy());
    } catch (e) {
      socket.destroy();
      const why = e instanceof TimeoutError ? 'Connection timed out' : describe(e);
      throw new SmtpClientError('connect', `connect to ${peer}: ${why}`);
    }
    return new SmtpWire(socket, peer);
  }

  private attach(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e) => this.fail(new SmtpClientError('lost', `lost connection with ${this.peer}: ${describe(e)}`)));
    socket.on('close', () => this.fail(new SmtpClientError('lost', `lost connection with ${this.peer}`)));
  }

  private onData(chunk: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let nl: number;
    while ((nl = this.pending.indexOf(0x0a)) >= 0) {
      const line = this.pending.subarray(0, nl).toString('utf8').replace(/\r$/, '');
      this.pending = this.pending.subarray(nl + 1);
      this.onLine(line);
      if (this.failure) return;
    }
    if (this.pending.length > MAX_LINE) this.protocolError('reply line too long');
  }

  private onLine(line: string): void {
    const m = /^(\d{3})([ -]|$)(.*)$/.exec(line);
    if (!m || (this.lines.length && !line.startsWith(this.lines[0].slice(0, 3)))) {
      return this.protocolError(`malformed reply "${line.slice(0, 100)}"`);
    }
    this.lines.push(line);
    if (m[2] === '-') {
      if (this.lines.length > MAX_LINES) this.protocolError('reply too long');
      return;
    }
    const reply = parseReply(this.lines);
    this.lines = [];
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve(reply);
    } else this.replies.push(reply);
  }

  private protocolError(what: string): void {
    this.fail(new SmtpClientError('protocol', `protocol error talking to ${this.peer}: ${what}`));
    this.socket.destroy();
  }

  private fail(e: SmtpClientError): void {
    this.failure ??= e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.reject(this.failure);
    }
  }

  /** The next reply, within `timeoutMs`; `stage` names what we waited for in the error. */
  async read(timeoutMs: number, stage: string): Promise<SmtpReply> {
    const ready = this.replies.shift();
    if (ready) return ready;
    if (this.failure) throw this.retag(this.failure, stage);
    const next = new Promise<SmtpReply>((resolve, reject) => (this.waiter = { resolve, reject }));
    try {
      return await withTimeout(next, timeoutMs, () => (this.waiter = undefined));
    } catch (e) {
      if (!(e instanceof TimeoutError)) throw this.retag(e as SmtpClientError, stage);
      // A late reply would answer the wrong command: the connection is done for.
      this.close();
      throw new SmtpClientError('timeout', `conversation with ${this.peer} timed out while ${stage}`);
    }
  }

  private retag(e: SmtpClientError, stage: string): SmtpClientError {
    return e.kind === 'lost' ? new SmtpClientError('lost', `${e.message} while ${stage}`) : e;
  }

  /** Write command lines as one segment (a PIPELINING group is several). */
  write(...commands: string[]): void {
    if (!this.failure) this.socket.write(commands.map((c) => c + '\r\n').join(''));
  }

  /** Send the body in wire form and the final dot; each chunk must drain within `timeoutMs`. */
  async sendData(data: Buffer, timeoutMs: number): Promise<void> {
    for (const chunk of wireChunks(data)) await this.writeChunk(chunk, timeoutMs);
    await this.writeChunk(END_OF_DATA, timeoutMs);
  }

  private async writeChunk(chunk: Buffer, timeoutMs: number): Promise<void> {
    if (this.failure) throw this.retag(this.failure, 'sending message body');
    if (this.socket.write(chunk)) return;
    const drained = Promise.race([once(this.socket, 'drain'), once(this.socket, 'close')]);
    try {
      await withTimeout(drained, timeoutMs, () => undefined);
    } catch {
      this.close();
      throw new SmtpClientError('timeout', `conversation with ${this.peer} timed out while sending message body`);
    }
    if (this.failure) throw this.retag(this.failure, 'sending message body');
  }

  /**
   * Switch to TLS after the server's 220 to STARTTLS. Anything the server sent
   * after that reply was sent in the clear and is dropped unread, or an
   * attacker could inject replies into the TLS session (CVE-2011-0411's kind).
   */
  async startTls(opts: { servername?: string; verify: boolean; timeoutMs: number }): Promise<void> {
    if (this.replies.length || this.lines.length || this.pending.length) {
      this.protocolError('data after the reply to STARTTLS');
      throw this.failure!;
    }
    const plain = this.socket;
    plain.removeAllListeners('data').removeAllListeners('error').removeAllListeners('close');
    // The TLS socket reports the failures that matter; the plain one must not throw unheard.
    plain.on('error', () => undefined);
    const secure = tls.connect({ socket: plain, servername: opts.servername, rejectUnauthorized: opts.verify });
    this.socket = secure;
    try {
      await withTimeout(once(secure, 'secureConnect'), opts.timeoutMs, () => secure.destroy());
    } catch (e) {
      secure.destroy();
      const why = e instanceof TimeoutError ? 'timed out' : describe(e);
      this.failure = new SmtpClientError('tls', `TLS handshake with ${this.peer} failed: ${why}`);
      throw this.failure;
    }
    this.attach(secure);
  }

  /** Protocol version and cipher of the TLS session, for the log; undefined in the clear. */
  tlsInfo(): { version: string; cipher: string } | undefined {
    if (!(this.socket instanceof tls.TLSSocket)) return undefined;
    return { version: this.socket.getProtocol() ?? 'unknown', cipher: this.socket.getCipher().standardName };
  }

  close(): void {
    this.socket.destroy();
  }

  /** Send QUIT, wait up to `timeoutMs` for its reply, then close whatever came back. */
  async quit(timeoutMs: number): Promise<void> {
    if (!this.failure) {
      this.write('QUIT');
      await this.read(timeoutMs, 'sending QUIT').catch(() => undefined);
    }
    this.close();
  }
}

function parseReply(lines: string[]): SmtpReply {
  const texts = lines.map((l) => l.slice(4));
  const enhanced = /^([245]\.\d{1,3}\.\d{1,3})(?:\s|$)/.exec(texts[0])?.[1];
  // Only a status of the reply's own class counts (RFC 2034: "5.x.x" goes with 5yz).
  const ok = enhanced !== undefined && enhanced[0] === lines[0][0];
  return { code: Number(lines[0].slice(0, 3)), enhanced: ok ? enhanced : undefined, lines: texts };
}

class TimeoutError extends Error {}

/** `p`, or a TimeoutError after `ms` (calling `onTimeout` first). */
async function withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new TimeoutError());
    }, ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

function describe(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ECONNREFUSED: 'Connection refused',
    ECONNRESET: 'Connection reset by peer',
    EHOSTUNREACH: 'No route to host',
    ENETUNREACH: 'Network is unreachable',
    EPIPE: 'Broken pipe',
    ENOENT: 'No such file or directory',
    EACCES: 'Permission denied',
  };
  return (err?.code && known[err.code]) || err?.message || String(e);
}
