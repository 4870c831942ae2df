// Issue 11: no dotlock is held while a client drains. A 50 MB message sits in
// a user's INBOX; a POP3 client sends RETR for it (an IMAP client FETCH
// BODY[]), takes the first reply line and then stops reading, so the
// daemon's socket fills and its writes wait. A delivery to the same mailbox
// with the real `sendmail -odi` must land within seconds meanwhile (while the
// lock was held through the send it waited 20 s for the lock and deferred).
// Then the client reads on, and gets every byte the size it was promised
// says, the message's end included. The daemon is the real one (-bD, -C, on
// loopback ports); as root it runs privilege-separated with a real account.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, test } from 'node:test';
import {
  IS_ROOT, type RunningDaemon, type Sandbox, addSystemUsers, makeSandbox, setMailPassword, removeSystemUsers, runAsync, startDaemon,
} from './helpers.ts';

const PASSWORD = 'Drain-s3cret';
const LINES = 50 * 1024 * 1024 / 77; // lines of 76 characters: about 50 MB
const DOT_EVERY = 10_000; // a line starting with '.' (stuffed by POP3) this often
const END = 'END-OF-THE-BIG-MESSAGE';
/**
 * Below the 20 s a delivery waits for the lock before it defers. `sendmail
 * -odi` alone takes 1 to 4 s on a busy machine of 2 CPUs (its time without a
 * stalled client is printed beside), so the bound leaves it room.
 */
const LANDS_WITHIN_MS = 15_000;

let sb: Sandbox;
let daemon: RunningDaemon | undefined;
let user = '';
let dotLines = 0;

before(async () => {
  sb = makeSandbox({ users: IS_ROOT ? [] : ['drain'] });
  user = IS_ROOT ? addSystemUsers(sb, ['drain'])[0].name : 'drain';
  setMailPassword(sb, user, PASSWORD);
  // The first message makes the mbox as delivery does (owner, mode); the big one is appended to it.
  console.log(`# the first delivery, with no client: ${await deliver('small first message')} ms`);
  dotLines = appendBigMessage(sb.mbox(user));
  daemon = await startDaemon(sb, ['-bD', '-q1h'], ['pop3', 'imap']);
});

after(async () => {
  await daemon?.stop();
  const left = IS_ROOT ? removeSystemUsers() : [];
  sb?.cleanup();
  assert.deepEqual(left, [], 'every account made for the test is removed');
});

/** Append a 50 MB message, a piece at a time; the number of its lines that begin with '.'. */
function appendBigMessage(file: string): number {
  const fd = fs.openSync(file, 'a');
  let dots = 0;
  try {
    fs.writeSync(fd, `From big@else.test Thu Jan  1 00:00:00 2026\nFrom: big@else.test\nTo: ${user}\nSubject: the big one\n\n`);
    const line = 'x'.repeat(75) + '\n';
    let piece = '';
    for (let i = 0; i < LINES; i++) {
      if (i % DOT_EVERY === 1) {
        piece += `.a line POP3 stuffs ${i}\n`;
        dots++;
      } else if (i % DOT_EVERY === 2) piece += `>From a line mboxrd quotes ${i}\n`;
      else piece += line;
      if (piece.length > 1 << 20) {
        fs.writeSync(fd, piece);
        piece = '';
      }
    }
    fs.writeSync(fd, `${piece}${END}\n\n`);
  } finally {
    fs.closeSync(fd);
  }
  return dots;
}

/** `sendmail -odi` to the user, asynchronously (the test's clients keep running); its time in ms. */
async function deliver(subject: string): Promise<number> {
  const t0 = Date.now();
  const r = await runAsync(sb, 'sendmail', ['-odi', '-i', user], `From: friend@else.test\nTo: ${user}\nSubject: ${subject}\n\nbody of ${subject}\n`);
  assert.equal(r.status, 0, `sendmail: ${r.stderr}`);
  return Date.now() - t0;
}

/** The last bytes of the mbox, without reading 50 MB. */
function mboxTail(): string {
  const file = sb.mbox(user);
  const size = fs.statSync(file).size;
  const n = Math.min(size, 64 << 10);
  const buf = Buffer.alloc(n);
  const fd = fs.openSync(file, 'r');
  try {
    fs.readSync(fd, buf, 0, n, size - n);
  } finally {
    fs.closeSync(fd);
  }
  return buf.toString('latin1');
}

/** A client that reads raw bytes, and can stop reading as a slow client does. */
class SlowClient {
  private pending: Buffer[] = [];
  private carry: Buffer = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.pending.push(d);
      this.wake?.();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<SlowClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new SlowClient(s)));
      s.once('error', reject);
    });
  }

  private async next(ms: number): Promise<Buffer> {
    const end = Date.now() + ms;
    while (this.pending.length === 0) {
      if (this.closed) throw new Error('connection closed');
      if (Date.now() > end) throw new Error('timed out waiting for data');
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 200);
      });
    }
    return this.pending.shift()!;
  }

  send(line: string): void {
    this.socket.write(`${line}\r\n`);
  }

  async line(ms = 30_000): Promise<string> {
    for (;;) {
      const i = this.carry.indexOf('\r\n');
      if (i >= 0) {
        const l = this.carry.subarray(0, i).toString('latin1');
        this.carry = this.carry.subarray(i + 2);
        return l;
      }
      this.carry = Buffer.concat([this.carry, await this.next(ms)]);
    }
  }

  /** Feed what arrives to `take` until it says it has all it wants; what it leaves is kept for line(). */
  async consume(take: (chunk: Buffer) => number | undefined, ms = 120_000): Promise<void> {
    let chunk: Buffer = this.carry;
    this.carry = Buffer.alloc(0);
    for (;;) {
      if (chunk.length) {
        const used = take(chunk);
        if (used !== undefined) {
          this.carry = chunk.subarray(used);
          return;
        }
      }
      chunk = await this.next(ms);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

/** With the client stalled in the middle of the message, a delivery lands at once. */
async function deliverWhileStalled(c: SlowClient, subject: string): Promise<void> {
  c.socket.pause();
  await new Promise((r) => setTimeout(r, 1000)); // the daemon's socket buffer fills; its writes wait
  const ms = await deliver(subject);
  console.log(`# delivered in ${ms} ms while a client stalled in a 50 MB message`);
  assert.ok(ms < LANDS_WITHIN_MS, `the delivery took ${ms} ms`);
  assert.ok(mboxTail().includes(`Subject: ${subject}\n`), 'the delivery is in the mailbox, not deferred');
  c.socket.resume();
}

test('a POP3 client that stops reading in the middle of a 50 MB RETR does not delay a delivery', { timeout: 180_000 }, async () => {
  const c = await SlowClient.connect(daemon!.ports.pop3);
  assert.match(await c.line(), /^\+OK/);
  c.send(`USER ${user}`);
  assert.match(await c.line(), /^\+OK/);
  c.send(`PASS ${PASSWORD}`);
  assert.match(await c.line(), /^\+OK .* 2 messages/);
  c.send('RETR 2');
  const first = await c.line();
  const octets = Number(/^\+OK (\d+) octets$/.exec(first)?.[1]);
  assert.ok(octets > 50_000_000, first);
  await deliverWhileStalled(c, 'delivered during RETR');
  // Then the rest: exactly the promised octets, plus one '.' for each stuffed line, then ".\r\n".
  let got = 0;
  let tail = '';
  await c.consume((chunk) => {
    got += chunk.length;
    tail = (tail + chunk.subarray(-64).toString('latin1')).slice(-64);
    return tail.endsWith('\r\n.\r\n') ? chunk.length : undefined;
  });
  assert.ok(tail.endsWith(`\r\n${END}\r\n.\r\n`), JSON.stringify(tail));
  assert.equal(got, octets + dotLines + 3, 'bytes sent = octets promised + dot-stuffing + terminator');
  c.send('QUIT');
  assert.match(await c.line(), /^\+OK/);
  c.close();
});

test('an IMAP client that stops reading in the middle of a 50 MB FETCH BODY[] does not delay a delivery', { timeout: 180_000 }, async () => {
  const c = await SlowClient.connect(daemon!.ports.imap);
  assert.match(await c.line(), /^\* OK/);
  const command = async (tag: string, line: string): Promise<string[]> => {
    c.send(`${tag} ${line}`);
    const out: string[] = [];
    for (let l = await c.line(); !l.startsWith(`${tag} `); l = await c.line()) out.push(l);
    return out;
  };
  await command('a1', `LOGIN ${user} ${PASSWORD}`);
  await command('a2', 'SELECT INBOX');
  const size = Number(/RFC822\.SIZE (\d+)/.exec((await command('a3', 'FETCH 2 RFC822.SIZE')).join(' '))?.[1]);
  assert.ok(size > 50_000_000, `RFC822.SIZE ${size}`);
  c.send('a4 FETCH 2 BODY[]');
  const head = await c.line();
  const literal = Number(/^\* 2 FETCH \(BODY\[\] \{(\d+)\}$/.exec(head)?.[1]);
  assert.equal(literal, size, `${head}: the literal is as long as RFC822.SIZE says`);
  await deliverWhileStalled(c, 'delivered during FETCH');
  let left = literal;
  let tail = '';
  await c.consume((chunk) => {
    const take = Math.min(left, chunk.length);
    left -= take;
    tail = (tail + chunk.subarray(0, take).subarray(-64).toString('latin1')).slice(-64);
    return left === 0 ? take : undefined;
  });
  assert.ok(tail.endsWith(`\r\n${END}\r\n`), JSON.stringify(tail));
  const rest: string[] = [];
  for (let l = await c.line(); !l.startsWith('a4 '); l = await c.line()) rest.push(l);
  assert.match(rest[0], /^( FLAGS \(.*\))?\)$/, rest.join('\n'));
  await command('a5', 'LOGOUT');
  c.close();
});
