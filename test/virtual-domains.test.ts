// Virtual domains and quotas (issue 14) through the real binaries on
// loopback: `mailtk domain add a.test; mailtk domain add b.test; mailtk user
// add bob@a.test; mailtk user add bob@b.test` with the daemon running (it
// picks the tables up without a restart); mail over SMTP to each bob lands in
// its own mailbox and IMAP logins as each see only their own; a catch-all
// takes a.test's unknown users; an error: entry refuses with its text. Then
// quotas: a delivery that takes bob@a.test to about 95% brings exactly one
// warning; over the limit, defer keeps the message queued (and a full
// mailbox gets 452 4.2.2 at RCPT), bounce refuses with 552 5.2.2; after
// deleting mail over IMAP the next message is delivered.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RunningDaemon, type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';
import { startDaemon } from './helpers.ts';
import { ImapClient, LineClient } from './mailbox/harness.ts';

let sb: Sandbox;
let daemon: RunningDaemon;

const CONF = ['virtual_domains_file = virtual-domains', 'virtual_users_file = virtual-users', 'virtual_alias_file = virtusertable', 'quota_file = quotas'].join('\n');

function mailtk(args: string[], input = ''): string {
  const r = run(sb, 'mailtk', args, input);
  assert.equal(r.status, 0, `mailtk ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const box = (user: string, domain: string) => path.join(sb.spool, 'virtual', domain, user);
const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

/** One SMTP transaction; the reply to each RCPT, and to the final dot when any recipient was taken. */
async function smtp(port: number, rcpts: string[], subject: string, body = 'hello\n'): Promise<{ rcpt: string[]; data?: string }> {
  const c = await LineClient.connect(port);
  const reply = async () => {
    let l = (await c.line())!;
    while (/^\d{3}-/.test(l)) l = (await c.line())!;
    return l;
  };
  try {
    await reply();
    c.send('EHLO client.test');
    await reply();
    c.send('MAIL FROM:<sender@remote.test>');
    assert.match(await reply(), /^250/);
    const rcpt: string[] = [];
    for (const r of rcpts) {
      c.send(`RCPT TO:<${r}>`);
      rcpt.push(await reply());
    }
    if (!rcpt.some((r) => r.startsWith('250'))) return { rcpt };
    c.send('DATA');
    assert.match(await reply(), /^354/);
    c.socket.write(`From: sender@remote.test\r\nSubject: ${subject}\r\n\r\n${body.replace(/\n/g, '\r\n')}.\r\n`);
    const data = await reply();
    c.send('QUIT');
    return { rcpt, data };
  } finally {
    c.close();
  }
}

before(async () => {
  sb = makeSandbox({ extraConf: CONF });
  daemon = await startDaemon(sb, ['-bD', '-q1h']);
  // With the daemon running: it reads the tables as they change.
  mailtk(['domain', 'add', 'a.test']);
  mailtk(['domain', 'add', 'b.test']);
  mailtk(['user', 'add', 'bob@a.test'], 'pw-a\n');
  mailtk(['user', 'add', 'bob@b.test'], 'pw-b\n');
  mailtk(['user', 'add', 'catch@a.test'], 'pw-c\n');
  mailtk(['alias', 'add', '@a.test', 'catch@a.test']);
  mailtk(['alias', 'add', 'gone@a.test', 'error:5.1.1', 'This user has left the company']);
});

after(async () => {
  await daemon?.stop();
  sb?.cleanup();
});

describe('virtual domains', () => {
  test('the listings, as text and the same rows as JSON', () => {
    assert.match(mailtk(['domain', 'list']), /^a\.test\s+2\s+2\s/m);
    const users = JSON.parse(mailtk(['user', 'list', '--json'])) as Array<{ user: string }>;
    assert.deepEqual(users.map((u) => u.user), ['bob@a.test', 'bob@b.test', 'catch@a.test']);
    assert.deepEqual(mailtk(['user', 'list', 'b.test']).trim().split('\n').slice(1).map((l) => l.split(/\s+/)[0]), ['bob@b.test']);
    const aliases = JSON.parse(mailtk(['alias', 'list', '--json']));
    assert.deepEqual(aliases, [{ address: '@a.test', target: 'catch@a.test' }, { address: 'gone@a.test', target: 'error:5.1.1 This user has left the company' }]);
  });

  test('mail to each bob lands in its own mailbox; a catch-all takes the unknown; error: refuses with its text', async () => {
    const port = daemon.ports.smtp;
    const r = await smtp(port, ['bob@a.test', 'bob@b.test', 'nobody@a.test', 'gone@a.test', 'nobody@b.test'], 'first');
    assert.match(r.rcpt[0], /^250/);
    assert.match(r.rcpt[1], /^250/);
    assert.match(r.rcpt[2], /^250/);
    assert.match(r.rcpt[3], /^550 5\.1\.1 .*This user has left the company/);
    assert.match(r.rcpt[4], /^550 5\.1\.1 .*User unknown/);
    assert.match(r.data!, /^250/);
    await smtp(port, ['bob@b.test'], 'only for b');
    await waitFor(() => splitMbox(read(box('bob', 'b.test'))).length === 2 && read(box('bob', 'a.test')) !== '' && read(box('catch', 'a.test')) !== '', 30_000, 'the deliveries');
    assert.equal(splitMbox(read(box('bob', 'a.test'))).length, 1);
    assert.match(read(box('catch', 'a.test')), /Subject: first/);
    assert.match(read(box('catch', 'a.test')), /Delivered-To: catch@a\.test/);
    const st = fs.statSync(box('bob', 'a.test'));
    assert.equal(st.mode & 0o777, 0o600);
  });

  test('IMAP login as each bob sees only their own mailbox; a wrong password or a bare name is refused', async () => {
    const port = daemon.ports.imap;
    const a = await ImapClient.login(port, 'bob@a.test', 'pw-a');
    assert.equal(await a.messages('INBOX'), 1);
    const b = await ImapClient.login(port, 'bob@b.test', 'pw-b');
    assert.equal(await b.messages('INBOX'), 2);
    await b.ok('SELECT INBOX');
    const subjects = (await b.ok('FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).untagged.join('\n');
    assert.match(subjects, /only for b/);
    await a.ok('SELECT INBOX');
    assert.doesNotMatch((await a.ok('FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])')).untagged.join('\n'), /only for b/);
    await a.logout();
    await b.logout();
    // POP3 too: bob@b.test's two messages, not a.test's.
    const pop = await LineClient.connect(daemon.ports.pop3);
    assert.match((await pop.line())!, /^\+OK/);
    pop.send('USER bob@b.test');
    assert.match((await pop.line())!, /^\+OK/);
    pop.send('PASS pw-b');
    assert.match((await pop.line())!, /^\+OK/);
    pop.send('STAT');
    assert.match((await pop.line())!, /^\+OK 2 \d+/);
    pop.send('QUIT');
    pop.close();
    const wrong = await ImapClient.connect(port);
    assert.equal((await wrong.run('LOGIN bob@a.test pw-b')).status, 'NO');
    assert.equal((await wrong.run('LOGIN bob pw-a')).status, 'NO');
    wrong.close();
  });
});

describe('quotas', () => {
  test('one warning when a delivery takes usage to 95%; over the limit defer keeps it queued; deleting over IMAP makes room', async () => {
    const port = daemon.ports.smtp;
    const file = box('bob', 'a.test');
    const before = fs.statSync(file).size;
    await smtp(port, ['bob@a.test'], 'measure');
    await waitFor(() => splitMbox(read(file)).length === 2, 30_000, 'the second message');
    const one = fs.statSync(file).size - before;
    // The next message of the same size takes usage to about 95% of this.
    const quota = Math.floor((before + 2 * one) / 0.95);
    mailtk(['quota', 'set', 'bob@a.test', String(quota)]);
    await smtp(port, ['bob@a.test'], 'measure');
    await waitFor(() => /Subject: Your mailbox is 90% full/.test(read(file)), 30_000, 'the warning');
    const shown = JSON.parse(mailtk(['quota', 'show', 'bob@a.test', '--json']));
    assert.equal(shown.quotaBytes, quota);
    // Over the limit: 452 4.2.2 at RCPT when it is full already, else the message waits in the queue.
    mailtk(['quota', 'set', 'bob@a.test', String(fs.statSync(file).size + one - 1)]);
    const r = await smtp(port, ['bob@a.test'], 'too much');
    assert.match(r.data!, /^250/);
    await waitFor(() => /to=<bob@a\.test>.*dsn=4\.2\.2/.test(read(sb.log)), 30_000, 'the deferral');
    assert.match(run(sb, 'mailq', []).stdout, /bob@a\.test/);
    assert.doesNotMatch(read(file), /Subject: too much/);
    const limit = fs.statSync(file).size;
    mailtk(['quota', 'set', 'bob@a.test', String(limit)]);
    assert.match((await smtp(port, ['bob@a.test'], 'full')).rcpt[0], /^452 4\.2\.2 /);
    const bounce = run(sb, 'sendmail', ['-bs', '-O', 'quota_exceeded=bounce'], 'EHLO x\r\nMAIL FROM:<s@remote.test>\r\nRCPT TO:<bob@a.test>\r\nQUIT\r\n');
    assert.match(bounce.stdout, /^552 5\.2\.2 /m);
    assert.equal((read(file).match(/Subject: Your mailbox is 90% full/g) ?? []).length, 1, 'exactly one warning');
    // Deleting over IMAP frees the space at once; QUOTA (RFC 9208) reports the usage before and after.
    const c = await ImapClient.login(daemon.ports.imap, 'bob@a.test', 'pw-a');
    const storage = async () => {
      const r = await c.ok('GETQUOTAROOT INBOX');
      assert.equal(r.untagged[0], '* QUOTAROOT INBOX ""');
      const m = /^\* QUOTA "" \(STORAGE (\d+) (\d+)\)$/.exec(r.untagged[1])!;
      assert.ok(m, r.untagged[1]);
      assert.equal(Number(m[2]), Math.floor(limit / 1024));
      return Number(m[1]);
    };
    const full = await storage();
    assert.equal(full, Math.ceil(fs.statSync(file).size / 1024));
    await c.ok('SELECT INBOX');
    await c.ok('STORE 1:2 +FLAGS (\\Deleted)');
    await c.ok('EXPUNGE');
    assert.ok((await storage()) < full, 'the space is free at once');
    assert.equal((await c.run('SETQUOTA "" (STORAGE 1)')).status, 'NO');
    await c.logout();
    const next = await smtp(port, ['bob@a.test'], 'after the deletion');
    assert.match(next.rcpt[0], /^250/);
    await waitFor(() => /Subject: after the deletion/.test(read(file)), 30_000, 'the delivery after the deletion');
  });
});
