// mailbox_transport = lmtp:...: the queue runner hands mailbox deliveries to
// a scripted LMTP server (the SMTP sink in LMTP mode) on loopback or on a
// UNIX socket, and honours its reply for each recipient: a 4xx defers that
// recipient only (the other is crossed off and not sent again), a 5xx
// bounces it, a refused connection defers all, a connection lost between two
// replies keeps the first; a /file of an alias is still written locally. Dovecot itself is test/lmtp.test.ts's.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { type Config, loadConfig } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { enqueue, listQueue, listQueueIds } from '../queue/index.ts';
import { type Sink, type SinkOptions, startSink } from './fixtures/smtp-sink.ts';
import { parseMailboxTransport } from './lmtp.ts';
import { runQueue } from './queue-run.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-lmtp-'));
fs.chmodSync(dir, 0o755); // default_privs finds its way to a /file
const sinks: Sink[] = [];
after(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});
let n = 0;

function config(transport: string, extra = ''): Config {
  const d = path.join(dir, `c${++n}`);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'passwd'), ['alice', 'bob'].map((u, i) => `${u}:x:${30001 + i}:${30001 + i}::${d}/home/${u}:/bin/sh`).join('\n') + '\n');
  fs.writeFileSync(path.join(d, 'aliases'), 'postmaster: alice\nteam: alice, bob\n');
  fs.writeFileSync(
    path.join(d, 'c.conf'),
    [
      'hostname = a.test',
      `queue_dir = ${d}/q`,
      `mail_spool_dir = ${d}/mail`,
      `alias_file = ${d}/aliases`,
      `alias_db = ${d}/aliases.cdb`,
      `log_file = ${d}/log`,
      `user_db = ${d}/passwd`,
      `transport_map = ${d}/mailertable`,
      'dns_servers = 127.0.0.1:9',
      'min_backoff = 15m',
      `mailbox_transport = ${transport}`,
      extra,
    ].join('\n'),
  );
  return loadConfig({ file: path.join(d, 'c.conf'), env: {} });
}

async function lmtpSink(opts: SinkOptions = {}): Promise<Sink> {
  const s = await startSink({ lmtp: true, ...opts });
  sinks.push(s);
  return s;
}

const maillog = (c: Config) => fs.readFileSync(c.logFile, 'utf8');

async function send(c: Config, recipients: string[], sender = 'zed@b.test'): Promise<void> {
  await enqueue(c, { sender, submitter: 'zed', recipients: recipients.map((address) => ({ address })), data: Buffer.from('Subject: lmtp\n\n.dot\nbody\n') });
}

test('mailbox_transport forms: [host]:port, host, unix:/path; others refused by the config', () => {
  assert.deepEqual(parseMailboxTransport('lmtp:[127.0.0.1]:2424'), { kind: 'inet', host: '127.0.0.1', port: 2424 });
  assert.deepEqual(parseMailboxTransport('lmtp:store.example'), { kind: 'inet', host: 'store.example', port: 24 });
  assert.deepEqual(parseMailboxTransport('lmtp:unix:/run/dovecot/lmtp'), { kind: 'unix', path: '/run/dovecot/lmtp' });
  assert.equal(parseMailboxTransport('lmtp:unix:relative'), undefined);
  assert.equal(parseMailboxTransport('smtp:[127.0.0.1]:25'), undefined);
  assert.throws(() => config('smtp:[127.0.0.1]:25'), (e) => e instanceof MailError && /mailbox_transport/.test(e.message));
  assert.throws(() => config('lmtp:[127.0.0.1]:24', 'lmtp_recipient = domain'), /lmtp_recipient/);
  assert.equal(config('').mailboxTransport, '');
});

test('a 4xx after the data defers that recipient only; the other is sent once', async () => {
  let busy = true;
  const sink = await lmtpSink({ rcptDone: (a) => (a === 'bob@a.test' && busy ? '452 4.2.2 <bob@a.test> Mailbox is full' : undefined) });
  const c = config(`lmtp:${sink.nexthop}`);
  await send(c, ['team']);
  let now = Date.now();
  const clock = () => now;
  const first = await runQueue(c, { force: false, verbose: false, clock });
  assert.deepEqual([first.delivered, first.deferred, first.bounced], [1, 1, 0]);
  assert.deepEqual(sink.messages[0].recipients, ['alice@a.test', 'bob@a.test']);
  assert.ok(sink.messages[0].wire.toString().endsWith('\r\n\r\n..dot\r\nbody\r\n'));
  assert.equal(sink.messages[0].helo, 'a.test');
  const log = maillog(c);
  assert.match(log, /to=<alice@a\.test>, ctladdr=<team>, .*mailer=lmtp, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], dsn=2\.0\.0, stat=Sent \(<alice@a\.test> Ok: saved as SINK1\)/);
  assert.match(log, /to=<bob@a\.test>, .*mailer=lmtp, .*dsn=4\.2\.2, stat=Deferred: host 127\.0\.0\.1\[127\.0\.0\.1\] said: 452 4\.2\.2 <bob@a\.test> Mailbox is full \(in reply to end of DATA command\)/);
  assert.match(listQueue(c)[0].control!.reason ?? '', /452 4\.2\.2/);
  assert.equal(fs.existsSync(path.join(c.mailSpoolDir, 'alice')), false, 'nothing in the local mbox');

  busy = false;
  now += 16 * 60_000;
  const second = await runQueue(c, { force: false, verbose: false, clock });
  assert.equal(second.delivered, 1);
  assert.deepEqual(sink.messages[1].recipients, ['bob@a.test'], 'alice is not sent again');
  assert.deepEqual(listQueueIds(c), []);
});

test('a 5xx bounces that recipient with the server\'s words; the bounce goes to the sender', async () => {
  const sink = await lmtpSink({ rcptDone: (a) => (a === 'bob@a.test' ? '550 5.1.1 <bob@a.test> User doesn\'t exist' : undefined) });
  const c = config(`lmtp:${sink.nexthop}`);
  fs.writeFileSync(c.transportMap, `b.test smtp:${sink.nexthop}\n`);
  await send(c, ['alice', 'bob'], 'alice@a.test');
  const s = await runQueue(c, { force: false, verbose: false });
  assert.deepEqual([s.delivered, s.bounced], [2, 1], 'alice, then her bounce');
  const dsn = sink.messages.find((m) => m.mailFrom === '')!;
  assert.deepEqual(dsn.recipients, ['alice@a.test'], 'the DSN is a mailbox delivery too');
  assert.match(dsn.wire.toString(), /Diagnostic-Code: smtp; 550 5\.1\.1 <bob@a\.test> User doesn't exist/);
  assert.deepEqual(listQueueIds(c), []);
});

test('only mailbox deliveries go over LMTP: a /file of an alias is still written here', async () => {
  const sink = await lmtpSink();
  const c = config(`lmtp:${sink.nexthop}`);
  const files = path.join(path.dirname(c.aliasFile), 'files');
  fs.mkdirSync(files, { mode: 0o777 });
  fs.chmodSync(files, 0o777); // written as default_privs when run as root
  fs.writeFileSync(c.aliasFile, `keep: alice, ${files}/archive\n`);
  await send(c, ['keep']);
  const s = await runQueue(c, { force: false, verbose: false });
  assert.equal(s.delivered, 2, maillog(c));
  assert.deepEqual(sink.messages.map((m) => m.recipients), [['alice@a.test']]);
  assert.match(fs.readFileSync(path.join(files, 'archive'), 'utf8'), /^From zed@b\.test .*\nSubject: lmtp\n/s);
  assert.match(maillog(c), /to=\/.*\/archive, ctladdr=<keep>, .*mailer=\*file\*, .*stat=Sent/);
});

test('no server: every mailbox delivery deferred, nothing written locally', async () => {
  const c = config('lmtp:[127.0.0.1]:9');
  await send(c, ['alice', 'bob']);
  const s = await runQueue(c, { force: false, verbose: false });
  assert.deepEqual([s.delivered, s.deferred], [0, 2]);
  assert.match(maillog(c), /to=<alice@a\.test>, .*mailer=lmtp, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], dsn=4\.4\.1, stat=Deferred: connect to 127\.0\.0\.1\[127\.0\.0\.1\]:9: Connection refused/);
  assert.equal(fs.existsSync(path.join(c.mailSpoolDir, 'alice')), false);
});

test('lmtp:unix:/path with lmtp_recipient = local: RCPT TO the bare user over a UNIX socket', async () => {
  const sock = path.join(dir, 'lmtp.sock');
  const sink = await lmtpSink({ path: sock });
  const c = config(`lmtp:unix:${sock}`, 'lmtp_recipient = local');
  await send(c, ['alice']);
  const s = await runQueue(c, { force: false, verbose: false });
  assert.equal(s.delivered, 1);
  assert.deepEqual(sink.messages[0].recipients, ['alice']);
  assert.match(maillog(c), new RegExp(`to=<alice@a\\.test>, .*mailer=lmtp, relay=${sock.replace(/[.]/g, '\\.')}, dsn=2\\.0\\.0, stat=Sent`));
});

test('a connection lost between the replies keeps the replies read: the first sent, the second deferred', async () => {
  const sink = await lmtpSink({ rcptDone: (a) => (a === 'bob@a.test' ? 'close' : undefined) });
  const c = config(`lmtp:${sink.nexthop}`);
  await send(c, ['alice', 'bob']);
  const s = await runQueue(c, { force: false, verbose: false });
  assert.deepEqual([s.delivered, s.deferred], [1, 1]);
  assert.match(maillog(c), /to=<bob@a\.test>, .*dsn=4\.4\.2, stat=Deferred: lost connection with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ while receiving the final replies after sending the message; the message may have been delivered/);
  const left = listQueue(c)[0].control!;
  assert.deepEqual(left.recipients.map((r) => r.address), ['alice', 'bob']);
  assert.ok(left.journal.done.get(0)?.has('local:alice'), 'alice crossed off');
});
