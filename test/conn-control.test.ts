// Connection control against a real daemon (issue 13, item 2): sockets held
// open by hostile clients, first 1,000 from one address, then 1,000 more
// from 200 addresses in 200 subnets (5 each, under every per-client cap),
// never read and never closed. Each time, a legitimate client from another
// address must get the SMTP greeting, the POP3 +OK greeting and the answer
// to an IMAP LOGIN within a second. relay_networks is moved off loopback so
// that client_limit_exceptions spares none of the 127/8 addresses used.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setPassword } from '../src/server/index.ts';
import { type RunningDaemon, type Sandbox, makeSandbox, startDaemon } from './helpers.ts';
import { LineClient, PASSWORD } from './mailbox/harness.ts';
import { serverConf } from './transcripts/harness.ts';

const HOSTILE = 1000;
const ANSWER_MS = 1000;
/** The legitimate client: a subnet no hostile socket comes from. */
const LEGIT = '127.9.9.9';

function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Open `count` sockets from the addresses given in turn; hold them, read nothing. */
async function flood(port: number, addresses: string[], count: number, held: net.Socket[]): Promise<void> {
  const BATCH = 200;
  for (let i = 0; i < count; i += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, count - i) }, (_, j) => addresses[(i + j) % addresses.length]);
    const sockets = await Promise.all(batch.map((a) => connectFrom(port, a).catch(() => undefined)));
    for (const s of sockets) {
      if (!s) continue;
      s.on('error', () => undefined);
      s.pause(); // never read: the server's writes must not wait for us
      held.push(s);
    }
  }
}

/**
 * Wait until the daemon has taken in what the kernel queued for it (its log
 * quiet for 300 ms): the client's connect completes in the kernel, before the
 * daemon accepts, and the legitimate client is timed against sockets held
 * open, not against the tail of the flood still waiting in the backlog.
 */
async function settled(log: string): Promise<void> {
  let size = -1;
  for (let i = 0; i < 100 && fs.statSync(log).size !== size; i++) {
    size = fs.statSync(log).size;
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** Milliseconds from connect to the first line matching `want`, after `send` (if any) was sent on the greeting. */
async function timeTo(port: number, want: RegExp, send?: string): Promise<{ ms: number; lines: string[] }> {
  const start = Date.now();
  const c = new LineClient(await connectFrom(port, LEGIT));
  const lines: string[] = [];
  try {
    const greeting = (await c.line(5000)) ?? '(closed)';
    lines.push(greeting);
    if (send !== undefined && !/^(421|-ERR|\* BYE)/.test(greeting)) {
      c.send(send);
      for (;;) {
        const l = (await c.line(5000)) ?? '(closed)';
        lines.push(l);
        if (!l.startsWith('* ')) break;
      }
    }
    assert.match(lines[lines.length - 1], want, lines.join(' | '));
    return { ms: Date.now() - start, lines };
  } finally {
    c.close();
  }
}

describe('hostile sockets held open on SMTP, POP3 and IMAP', () => {
  let sb: Sandbox;
  let d: RunningDaemon;
  const held: net.Socket[] = [];

  before(async () => {
    sb = makeSandbox({ users: ['bob'] });
    fs.appendFileSync(sb.conf, [
      serverConf(sb),
      'pop3_listen = 127.0.0.1:0',
      'imap_listen = 127.0.0.1:0',
      'relay_networks = 10.0.0.0/8',
      '',
    ].join('\n'));
    await setPassword(path.join(sb.dir, 'etc/smtp-passwd'), 'bob', PASSWORD);
    d = await startDaemon(sb, ['-bD', '-q1h'], ['smtp', 'pop3', 'imap']);
  });
  after(async () => {
    for (const s of held) s.destroy();
    await d?.stop();
    sb?.cleanup();
  });

  const checks: Array<[string, () => Promise<{ ms: number }>]> = [
    ['SMTP greeting', () => timeTo(d.ports.smtp, /^220 /)],
    ['POP3 greeting', () => timeTo(d.ports.pop3, /^\+OK/)],
    ['IMAP LOGIN answer', () => timeTo(d.ports.imap, /^a1 OK/, `a1 LOGIN bob ${PASSWORD}`)],
  ];

  /** Each check three times; the slowest answer of each, for the test's diagnostics. */
  async function legitimate(phase: string): Promise<string> {
    const slowest: string[] = [];
    for (const [what, check] of checks) {
      let worst = 0;
      for (let i = 0; i < 3; i++) {
        const { ms } = await check();
        assert.ok(ms < ANSWER_MS, `${phase}: ${what} took ${ms} ms`);
        worst = Math.max(worst, ms);
      }
      slowest.push(`${what} ${worst} ms`);
    }
    return `${phase}: slowest ${slowest.join(', ')}`;
  }

  test('1,000 sockets from one address on each listener: the others are still served at once', async (t) => {
    for (const port of [d.ports.smtp, d.ports.pop3, d.ports.imap]) await flood(port, ['127.0.0.2'], HOSTILE, held);
    await settled(sb.log);
    t.diagnostic(await legitimate('one address'));
    const log = fs.readFileSync(sb.log, 'utf8');
    assert.match(log, /rejecting connection from \[127\.0\.0\.2\]: too many sessions from it \(smtp_max_clients_per_ip\)/);
    assert.match(log, /rejecting connection from \[127\.0\.0\.2\]: too many sessions from it \(mailbox_max_clients_per_ip\)/);
  });

  test('1,000 more from 200 addresses in 200 subnets (5 each): still served at once', async (t) => {
    const addresses = Array.from({ length: 200 }, (_, k) => `127.1.${k}.1`);
    for (const port of [d.ports.smtp, d.ports.pop3, d.ports.imap]) await flood(port, addresses, HOSTILE, held);
    await settled(sb.log);
    t.diagnostic(await legitimate('200 addresses'));
    assert.match(fs.readFileSync(sb.log, 'utf8'), /closing idle session from \[127\.1\.\d+\.1\]/);
  });

  test('refused sockets hold no descriptor in the daemon', async (t) => {
    // 6,000 sockets are open on this side; the daemon holds at most its slots and what it always has.
    const fds = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;
    const pids = [d.child.pid!, ...fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && isChildOf(Number(p), d.child.pid!)).map(Number)];
    const total = pids.reduce((n, p) => n + safe(() => fds(p), 0), 0);
    t.diagnostic(`the daemon's processes hold ${total} descriptors for ${held.length} client sockets`);
    assert.ok(total < 1000, `the daemon's processes hold ${total} descriptors for ${held.length} client sockets`);
  });
});

function isChildOf(pid: number, parent: number): boolean {
  return safe(() => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]) === parent, false);
}

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback;
  }
}
