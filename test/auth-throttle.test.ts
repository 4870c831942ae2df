// Login throttling across the daemon's listeners (src/server/auth-throttle.ts):
// 50 wrong POP3 passwords from one address over parallel connections are
// met by growing delays, then by a block answered at once, which IMAP and
// SMTP AUTH share; the right password from another address still logs in at
// once; an address that failed on a blocked account is refused for it. The
// log lines are checked with the shipped fail2ban filter (fail2ban-regex).
// Clients come from 127.0.0.2, .3, ...: loopback gives many source addresses.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setPassword } from '../src/server/index.ts';
import { ROOT, type RunningDaemon, type Sandbox, makeSandbox, startDaemon } from './helpers.ts';
import { LineClient, PASSWORD } from './mailbox/harness.ts';
import { SmtpClient, serverConf } from './transcripts/harness.ts';

const DELAY_MS = 2000;

function connectFrom(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.once('error', reject);
  });
}

async function pop3(port: number, from: string): Promise<LineClient> {
  const c = new LineClient(await connectFrom(port, from));
  assert.match((await c.line()) ?? '', /^\+OK/);
  return c;
}

/** USER/PASS on an open POP3 session: the reply to PASS and how long it took. */
async function pop3Login(c: LineClient, user: string, password: string): Promise<{ reply: string; ms: number }> {
  c.send(`USER ${user}`);
  assert.match((await c.line()) ?? '', /^\+OK/);
  const start = Date.now();
  c.send(`PASS ${password}`);
  const reply = (await c.line(30_000)) ?? '(closed)';
  return { reply, ms: Date.now() - start };
}

async function imapLogin(port: number, from: string, user: string, password: string): Promise<{ reply: string; ms: number }> {
  const c = new LineClient(await connectFrom(port, from));
  try {
    assert.match((await c.line()) ?? '', /^\* OK/);
    const start = Date.now();
    c.send(`a1 LOGIN ${user} ${password}`);
    for (;;) {
      const l = (await c.line(30_000)) ?? '(closed)';
      if (!l.startsWith('* ')) return { reply: l, ms: Date.now() - start };
    }
  } finally {
    c.close();
  }
}

async function smtpAuth(port: number, from: string, user: string, password: string): Promise<{ reply: string; ms: number }> {
  const c = SmtpClient.wrap(await connectFrom(port, from));
  try {
    await c.reply();
    await c.command('EHLO client.test');
    const start = Date.now();
    const r = await c.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString('base64')}`);
    return { reply: r.join('\n'), ms: Date.now() - start };
  } finally {
    c.end();
  }
}

describe('login throttling shared by POP3, IMAP and SMTP AUTH', () => {
  let sb: Sandbox;
  let d: RunningDaemon;

  before(async () => {
    sb = makeSandbox({ users: ['bob', 'alice'] });
    fs.appendFileSync(sb.conf, [
      serverConf(sb, { submission: true }),
      'pop3_listen = 127.0.0.1:0',
      'imap_listen = 127.0.0.1:0',
      'auth_failure_delay = 2s',
      'auth_failure_delay_max = 4s',
      'auth_client_failures = 10',
      'auth_account_failures = 6',
      'auth_block_time = 10m',
      '',
    ].join('\n'));
    for (const u of ['bob', 'alice']) await setPassword(path.join(sb.dir, 'etc/smtp-passwd'), u, PASSWORD);
    d = await startDaemon(sb, ['-bD', '-q1h'], ['smtp', 'submission', 'pop3', 'imap']);
  });
  after(async () => {
    await d?.stop();
    sb?.cleanup();
  });

  test('50 wrong passwords from one address over 10 connections: delays, then a block answered at once', async () => {
    const clients = await Promise.all(Array.from({ length: 10 }, () => pop3(d.ports.pop3, '127.0.0.2')));
    const answers = (await Promise.all(clients.map(async (c) => {
      const mine: Array<{ reply: string; ms: number }> = [];
      for (let i = 0; i < 5; i++) mine.push(await pop3Login(c, 'bob', `guess-${i}`));
      c.close();
      return mine;
    }))).flat();
    const failed = answers.filter((a) => a.reply.startsWith('-ERR [AUTH]'));
    const blocked = answers.filter((a) => a.reply.startsWith('-ERR [SYS/TEMP] Too many authentication failures'));
    assert.equal(failed.length + blocked.length, 50, JSON.stringify(answers.map((a) => a.reply)));
    assert.ok(failed.length >= 1 && failed.length <= 10, `at most auth_client_failures guesses checked (${failed.length})`);
    for (const a of failed) assert.ok(a.ms >= DELAY_MS - 100, `a failure is answered after its delay (${a.ms} ms)`);
    for (const a of blocked) assert.ok(a.ms < DELAY_MS / 2, `a blocked attempt is answered at once (${a.ms} ms)`);
  });

  test('the right password from another address logs in at once, over POP3, IMAP and SMTP AUTH', async () => {
    const c = await pop3(d.ports.pop3, '127.0.0.3');
    const r = await pop3Login(c, 'bob', PASSWORD);
    c.close();
    assert.match(r.reply, /^\+OK/);
    assert.ok(r.ms < DELAY_MS, `at once (${r.ms} ms)`);
    const i = await imapLogin(d.ports.imap, '127.0.0.4', 'bob', PASSWORD);
    assert.match(i.reply, /^a1 OK/);
    assert.ok(i.ms < DELAY_MS, `at once (${i.ms} ms)`);
    const s = await smtpAuth(d.ports.submission, '127.0.0.3', 'bob', PASSWORD);
    assert.match(s.reply, /^235 2\.7\.0/);
  });

  test('the blocked address is refused by every listener, even with the right password', async () => {
    const c = await pop3(d.ports.pop3, '127.0.0.2');
    assert.match((await pop3Login(c, 'alice', PASSWORD)).reply, /^-ERR \[SYS\/TEMP\] Too many authentication failures/);
    c.close();
    const i = await imapLogin(d.ports.imap, '127.0.0.2', 'alice', PASSWORD);
    assert.match(i.reply, /^a1 NO \[UNAVAILABLE\] Too many authentication failures/);
    assert.ok(i.ms < DELAY_MS / 2);
    const s = await smtpAuth(d.ports.submission, '127.0.0.2', 'alice', PASSWORD);
    assert.match(s.reply, /^454 4\.7\.0 Too many authentication failures/);
  });

  test('an account past auth_account_failures is refused to the addresses that failed on it, not to others', async () => {
    // bob has 10 failures (> 6): 127.0.0.5's first wrong guess is answered after the delay...
    const wrong = await imapLogin(d.ports.imap, '127.0.0.5', 'bob', 'nope');
    assert.match(wrong.reply, /^a1 NO \[AUTHENTICATIONFAILED\]/);
    assert.ok(wrong.ms >= DELAY_MS - 100);
    // ...and then bob is refused there at once, right password or not; alice is not.
    const smtp = await smtpAuth(d.ports.submission, '127.0.0.5', 'bob', PASSWORD);
    assert.match(smtp.reply, /^454 4\.7\.0/);
    assert.match((await imapLogin(d.ports.imap, '127.0.0.5', 'alice', PASSWORD)).reply, /^a1 OK/);
    const wrongSmtp = await smtpAuth(d.ports.submission, '127.0.0.6', 'alice', 'nope');
    assert.match(wrongSmtp.reply, /^535 5\.7\.8/);
    assert.ok(wrongSmtp.ms >= DELAY_MS - 100);
  });

  test('each failure is one log line that the shipped fail2ban filter matches', async (t) => {
    const log = fs.readFileSync(sb.log, 'utf8');
    assert.match(log, /auth failure: service=pop3 client=\[127\.0\.0\.2\] user=bob method=USER reason=bad credentials, failures=1, delay=2s/);
    assert.match(log, /auth failure: service=imap client=\[127\.0\.0\.5\] user=bob method=LOGIN reason=bad credentials/);
    assert.match(log, /auth failure: service=smtp client=\[127\.0\.0\.6\] user=alice method=AUTH-PLAIN reason=bad credentials/);
    assert.match(log, /auth block: client=\[127\.0\.0\.2\] for=10m/);
    const failures = log.split('\n').filter((l) => l.includes(': auth failure: ')).length;
    if (spawnSync('sh', ['-c', 'command -v fail2ban-regex']).status !== 0) return t.skip('fail2ban-regex is not installed (apt package fail2ban)');
    // The filter as installed: beside fail2ban's own common.conf, which it includes.
    const dir = path.join(sb.dir, 'fail2ban/filter.d');
    fs.mkdirSync(dir, { recursive: true });
    fs.copyFileSync('/etc/fail2ban/filter.d/common.conf', path.join(dir, 'common.conf'));
    fs.copyFileSync(path.join(ROOT, 'packaging/fail2ban/filter.d/mailtk.conf'), path.join(dir, 'mailtk.conf'));
    const r = spawnSync('fail2ban-regex', ['-o', 'ip', sb.log, path.join(dir, 'mailtk.conf')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const hosts = r.stdout.split('\n').filter((l) => /^\d+\.\d+\.\d+\.\d+$/.test(l));
    assert.equal(hosts.length, failures, r.stdout);
    assert.deepEqual([...new Set(hosts)].sort(), ['127.0.0.2', '127.0.0.5', '127.0.0.6']);
  });
});
