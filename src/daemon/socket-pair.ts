// Connected pairs of Unix sockets for the root master, which Node cannot make
// with socketpair(2): the master listens on a socket in a directory only root
// can enter (mkdtemp, 0700) and connects to itself. One end goes to the
// worker that holds the client's connection (and its TLS), the other to the
// user's agent, as Dovecot's login processes proxy to their imap processes.
// Both ends stop reading at once (the accepted one after a token that tells
// which pair it belongs to): bytes that arrive before the ends reach their
// processes wait in the kernel, and none is read by the master.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const TOKEN_BYTES = 4;
/** A pair not made by then is given up (the login it was for is refused). */
const PAIR_TIMEOUT_MS = 5000;

export class SocketPairs {
  private server: net.Server;
  private dir: string;
  private file: string;
  private seq = 0;
  /** Who waits for the accepted end of each pair, by the token its connecting end sends. */
  private waiting = new Map<string, (s: net.Socket) => void>();

  private constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-master-'));
    fs.chmodSync(this.dir, 0o700);
    this.file = path.join(this.dir, 'pair');
    this.server = net.createServer({ pauseOnConnect: true }, (s) => this.accepted(s));
    // Out of descriptors, accept(2) fails: that pair() times out, the master goes on.
    this.server.on('error', () => undefined);
  }

  static async open(): Promise<SocketPairs> {
    const p = new SocketPairs();
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(p.file, () => resolve());
    });
    return p;
  }

  /**
   * Two connected sockets, neither of them reading. The connecting end sends
   * a token first and the accepted end reads exactly that, so a pair whose
   * connect or accept failed (out of descriptors) cannot leave the next
   * pair matched with the wrong end.
   */
  async pair(): Promise<[net.Socket, net.Socket]> {
    const token = Buffer.alloc(TOKEN_BYTES);
    token.writeUInt32BE(++this.seq % 2 ** 32);
    const key = token.toString('hex');
    let timer: NodeJS.Timeout | undefined;
    const accepted = new Promise<net.Socket>((resolve, reject) => {
      this.waiting.set(key, resolve);
      timer = setTimeout(() => reject(new Error('no answer from its own socket (out of file descriptors?)')), PAIR_TIMEOUT_MS);
    });
    accepted.catch(() => undefined);
    const a = net.connect({ path: this.file });
    try {
      await new Promise<void>((resolve, reject) => {
        a.once('connect', resolve);
        a.once('error', reject);
      });
      stopReading(a);
      a.write(token);
      return [a, await accepted];
    } catch (e) {
      a.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
      this.waiting.delete(key);
    }
  }

  private accepted(s: net.Socket): void {
    let got = Buffer.alloc(0);
    s.on('error', () => s.destroy());
    const onData = (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (got.length < TOKEN_BYTES) return;
      s.off('data', onData);
      stopReading(s);
      const take = this.waiting.get(got.subarray(0, TOKEN_BYTES).toString('hex'));
      // Nothing but the token can have come: the other end is still the master's.
      if (take && got.length === TOKEN_BYTES) take(s);
      else s.destroy();
    };
    s.on('data', onData);
    s.resume();
  }

  close(): void {
    this.server.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A socket the master only passes on must not read: whatever it read would be
 * lost when its descriptor goes to another process.
 */
export function stopReading(s: net.Socket): void {
  s.pause();
  (s as unknown as { _handle?: { readStop?(): void; reading?: boolean } })._handle?.readStop?.();
}
