// Connected pairs of Unix sockets for the root master, which Node cannot make
// with socketpair(2): the master listens on a socket in a directory only root
// can enter (mkdtemp, 0700) and connects to itself. One end goes to the
// worker that holds the client's connection (and its TLS), the other to the
// user's agent, as Dovecot's login processes proxy to their imap processes.
// Both ends stop reading at once: bytes that arrive before the ends reach
// their processes wait in the kernel, and none is read by the master.

import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export class SocketPairs {
  private server: net.Server;
  private dir: string;
  private file: string;
  private waiting: Array<(s: net.Socket) => void> = [];

  private constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-master-'));
    fs.chmodSync(this.dir, 0o700);
    this.file = path.join(this.dir, 'pair');
    this.server = net.createServer({ pauseOnConnect: true }, (s) => {
      const w = this.waiting.shift();
      if (w) w(s);
      else s.destroy();
    });
  }

  static async open(): Promise<SocketPairs> {
    const p = new SocketPairs();
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(p.file, () => resolve());
    });
    return p;
  }

  /** Two connected sockets, neither of them reading. */
  async pair(): Promise<[net.Socket, net.Socket]> {
    const accepted = new Promise<net.Socket>((resolve) => this.waiting.push(resolve));
    const a = net.connect({ path: this.file });
    await new Promise<void>((resolve, reject) => {
      a.once('connect', resolve);
      a.once('error', reject);
    });
    stopReading(a);
    const b = await accepted;
    return [a, b];
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
