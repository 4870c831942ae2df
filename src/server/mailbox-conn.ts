// The byte stream under a POP3 or IMAP session: lines and literals read on
// demand (await conn.line()), writes that wait when the socket's buffer is
// full (so a 50 MB message never piles up in memory), the switch to TLS for
// STLS/STARTTLS (input the client sent before the handshake is thrown away,
// RFC 2595 section 4), and the idle timer of the autologout, which the
// listener may shorten (before login, under stress: limitIdle).

import type net from 'node:net';
import tls from 'node:tls';

const LF = 0x0a;

export class Conn {
  socket: net.Socket;
  closed = false;
  /** Handed to another process: closing is no longer ours to do. */
  released = false;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private idleAsked: { ms: number; fn: () => void } | undefined;
  /** When the session last asked for a command (idle() was called): how long it has been idle. */
  lastActive = Date.now();
  /** The listener's say on the idle limit the session asks for (mailbox_login_timeout, stress). */
  limitIdle: ((ms: number) => number) | undefined;
  private onData = (d: Buffer) => this.push(d);
  private onEnd = () => this.end();

  constructor(socket: net.Socket, readonly remoteAddress: string, public secure: boolean) {
    this.socket = socket;
    this.attach();
  }

  private attach(): void {
    this.socket.on('data', this.onData);
    this.socket.on('end', this.onEnd);
    this.socket.on('close', this.onEnd);
    this.socket.on('error', () => undefined); // a reset ends the session through 'close'
  }

  private detach(): void {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onEnd);
  }

  private push(d: Buffer): void {
    this.chunks.push(d);
    this.buffered += d.length;
    // Far more than any command needs and not inside a literal we asked for: stop reading.
    if (this.buffered > 1 << 20) this.socket.pause();
    this.poke();
  }

  private end(): void {
    this.closed = true;
    this.poke();
  }

  private poke(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private waitInput(): Promise<void> {
    this.socket.resume();
    return new Promise((resolve) => (this.wake = resolve));
  }

  /** The next line without its CRLF (or LF); undefined when the client has gone. 'too-long' past max bytes. */
  async line(max: number): Promise<Buffer | 'too-long' | undefined> {
    for (;;) {
      const at = this.findLf();
      if (at >= 0) {
        const raw = this.take(at + 1);
        const end = raw.length >= 2 && raw[raw.length - 2] === 0x0d ? raw.length - 2 : raw.length - 1;
        return raw.length > max ? 'too-long' : raw.subarray(0, end);
      }
      if (this.buffered > max) {
        this.discardLine();
        return 'too-long';
      }
      if (this.closed) return undefined;
      await this.waitInput();
    }
  }

  /** Exactly n bytes (an IMAP literal); undefined when the client has gone first. */
  async bytes(n: number): Promise<Buffer | undefined> {
    while (this.buffered < n) {
      if (this.closed) return undefined;
      await this.waitInput();
    }
    return this.take(n);
  }

  private findLf(): number {
    let base = 0;
    for (const c of this.chunks) {
      const i = c.indexOf(LF);
      if (i >= 0) return base + i;
      base += c.length;
    }
    return -1;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** Throw away the rest of an over-long line, up to its LF. */
  private discardLine(): void {
    const at = this.findLf();
    if (at >= 0) this.take(at + 1);
    else {
      this.chunks = [];
      this.buffered = 0;
    }
  }

  /** Whether the client sent more after the command just read (pipelining). */
  get hasInput(): boolean {
    return this.buffered > 0;
  }

  /** Write, waiting while the socket's buffer is full. */
  async write(data: string | Buffer): Promise<void> {
    if (this.closed || this.socket.destroyed) return;
    if (this.socket.write(data)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** (Re)start the idle timer; fn runs when it fires. */
  idle(ms: number, fn: () => void): void {
    this.idleAsked = { ms, fn };
    this.lastActive = Date.now();
    this.arm();
  }

  /** The limit that applies may have changed (stress began): start the idle timer again with it. */
  rearm(): void {
    if (this.idleAsked && !this.closed) this.arm();
  }

  private arm(): void {
    const { ms, fn } = this.idleAsked!;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(fn, this.limitIdle ? this.limitIdle(ms) : ms);
    this.timer.unref();
  }

  /** Switch to TLS as the server; buffered input from before the handshake is dropped. */
  async startTls(context: tls.SecureContext): Promise<void> {
    this.detach();
    this.chunks = [];
    this.buffered = 0;
    const secure = new tls.TLSSocket(this.socket, { isServer: true, secureContext: context });
    await new Promise<void>((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('connection closed during the TLS handshake')));
    });
    this.socket = secure;
    this.secure = true;
    this.attach();
  }

  /**
   * Let go of the socket (a login handed to the user's agent): nothing more is
   * read here; what the client sent and was not read yet is returned.
   */
  release(): Buffer {
    if (this.timer) clearTimeout(this.timer);
    this.detach();
    this.released = true;
    this.closed = true;
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    this.poke();
    return rest;
  }

  close(): void {
    if (this.released) return;
    if (this.timer) clearTimeout(this.timer);
    this.closed = true;
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }
}
