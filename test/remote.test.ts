// Remote delivery end to end through the real binaries: `sendmail -odi`
// queues a message for a remote domain, the queue runner routes it through
// transport_map to an SMTP sink on 127.0.0.1, and the maillog, mailq and
// bounces say what happened (sent, deferred then sent by `sendmail -q`,
// bounced with the remote reply quoted). DNS goes to a server of the test's
// own on loopback, so no query leaves the machine. The sink and the DNS
// server live in this process: the binaries must run asynchronously.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type DnsFixture, startDns } from '../src/deliver/fixtures/dns-server.ts';
import { type Sink, startSink } from '../src/deliver/fixtures/smtp-sink.ts';
import { type Sandbox, makeSandbox, runAsync, splitMbox } from './helpers.ts';

let sb: Sandbox;
let dns: DnsFixture;
let sink: Sink;
// What the sink says to RCPT TO, changed by the tests as they go.
const answers = new Map<string, string>();

before(async () => {
  dns = await startDns({ a: {} });
  sink = await startSink({ rcpt: (a) => answers.get(a) });
  sb = makeSandbox({
    hostname: 'a.test',
    users: ['alice', 'bob'],
    extraConf: [`transport_map = MAP`, `dns_servers = ${dns.server}`, `min_backoff = 1s`].join('\n'),
  });
  const map = path.join(sb.dir, 'etc/mailertable');
  fs.writeFileSync(map, `# test routes\nb.test smtp:${sink.nexthop}\n`);
  fs.writeFileSync(sb.conf, fs.readFileSync(sb.conf, 'utf8').replace('transport_map = MAP', `transport_map = ${map}`));
  sb.writeAliases('postmaster: root\nMAILER-DAEMON: postmaster\n');
});
after(async () => {
  if (process.env.MAILTK_KEEP) console.log(fs.readFileSync(sb.log, 'utf8'), sb.readMbox('alice'));
  sb.cleanup();
  await sink.close();
  await dns.close();
});

function maillog(): string {
  return fs.readFileSync(sb.log, 'utf8');
}

test('sendmail -odi user@b.test: sent over SMTP to the transport_map nexthop, logged like sendmail', async () => {
  const r = await runAsync(sb, 'sendmail', ['-odi', '-i', '-f', 'alice@a.test', 'bob@b.test'], 'Subject: e2e\n\nhello\n.dot line\n');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(sink.messages.length, 1);
  const m = sink.messages[0];
  assert.equal(m.mailFrom, 'alice@a.test');
  assert.deepEqual(m.recipients, ['bob@b.test']);
  assert.equal(m.helo, 'a.test');
  const wire = m.wire.toString('utf8');
  assert.match(wire, /\r\nSubject: e2e\r\n/);
  assert.ok(wire.endsWith('\r\n\r\nhello\r\n..dot line\r\n'), JSON.stringify(wire.slice(-40)));
  assert.match(
    maillog(),
    /: to=<bob@b\.test>, delay=\d\d:\d\d:\d\d, xdelay=\d\d:\d\d:\d\d, mailer=esmtp, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], dsn=2\.0\.0, stat=Sent \(Ok: queued as SINK1\)\n/,
  );
  assert.equal(dns.queries.length, 0, 'a bracketed nexthop needs no DNS');
});

test('a 4xx defers: the message waits, mailq says why, sendmail -q sends it later', async () => {
  answers.set('carol@b.test', '450 4.2.1 Mailbox busy, try later');
  const r = await runAsync(sb, 'sendmail', ['-odi', '-i', '-f', 'alice@a.test', 'carol@b.test'], 'Subject: later\n\nwait\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(maillog(), /to=<carol@b\.test>, .*mailer=esmtp, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], dsn=4\.2\.1, stat=Deferred: host 127\.0\.0\.1\[127\.0\.0\.1\] said: 450 4\.2\.1 Mailbox busy, try later \(in reply to RCPT TO command\)/);
  const q = await runAsync(sb, 'mailq', []);
  assert.match(q.stdout, /carol@b\.test/);
  assert.match(q.stdout, /Mailbox busy/);
  answers.delete('carol@b.test');
  const before = sink.messages.length;
  const again = await runAsync(sb, 'sendmail', ['-qf']);
  assert.equal(again.status, 0, again.stderr);
  assert.equal(sink.messages.length, before + 1);
  assert.deepEqual(sink.messages.at(-1)!.recipients, ['carol@b.test']);
  assert.doesNotMatch((await runAsync(sb, 'mailq', [])).stdout, /carol@b\.test/);
});

test('a 5xx bounces to the sender with the remote reply quoted in the DSN', async () => {
  answers.set('nobody@b.test', '550 5.1.1 <nobody@b.test>... User unknown');
  const r = await runAsync(sb, 'sendmail', ['-odi', '-i', '-f', 'alice@a.test', 'nobody@b.test'], 'Subject: lost\n\nnobody home\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(maillog(), /to=<nobody@b\.test>, .*dsn=5\.1\.1, stat=host 127\.0\.0\.1\[127\.0\.0\.1\] said: 550 5\.1\.1/);
  await runAsync(sb, 'sendmail', ['-q']);
  const bounces = splitMbox(sb.readMbox('alice'));
  const dsn = bounces.find((b) => b.includes('nobody@b.test'));
  assert.ok(dsn, `a bounce in alice's mailbox: ${bounces.length} messages`);
  assert.match(dsn, /Status: 5\.1\.1/);
  assert.match(dsn, /Remote-MTA: dns; 127\.0\.0\.1/);
  assert.match(dsn, /Diagnostic-Code: smtp; 550 5\.1\.1 <nobody@b\.test>\.\.\. User unknown/);
});

test('an unknown domain with no route bounces 5.1.2 after asking only our DNS server', async () => {
  const r = await runAsync(sb, 'sendmail', ['-odi', '-i', '-f', 'alice@a.test', 'x@nowhere.test'], 'Subject: nowhere\n\nx\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(maillog(), /to=<x@nowhere\.test>, .*dsn=5\.1\.2, stat=Host unknown/);
  assert.ok(dns.queries.some((q) => q.name === 'nowhere.test' && q.type === 'MX'));
});
