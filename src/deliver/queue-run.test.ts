// The queue runner with a clock the test moves (RunOptions.clock): retries
// after min_backoff doubling to max_backoff, one delay warning after
// queue_warn, the return after queue_return, DSNs delivered by the run that
// made them, a dead destination tried once a run, arrival order, and a
// damaged entry set aside with postmaster told. Days pass in milliseconds:
// nothing here sleeps. Remote mail goes to an SMTP sink on loopback through
// transport_map; DNS to a server of the test's own.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Config, loadConfig } from '../config/index.ts';
import { enqueue, listQueue, listQueueIds } from '../queue/index.ts';
import { type DnsFixture, startDns } from './fixtures/dns-server.ts';
import { type Sink, startSink } from './fixtures/smtp-sink.ts';
import { runQueue } from './queue-run.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-run-'));
let dns: DnsFixture;
let sink: Sink;
/** What the sink says to RCPT TO, by address. */
const answers = new Map<string, string>();
let n = 0;

before(async () => {
  dns = await startDns({ a: {} });
  sink = await startSink({ rcpt: (a) => answers.get(a) });
});
after(async () => {
  await sink.close();
  await dns.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const H = 3_600_000;

function config(extra = ''): Config {
  const d = path.join(dir, `c${++n}`);
  fs.mkdirSync(d);
  fs.writeFileSync(path.join(d, 'mailertable'), `b.test smtp:${sink.nexthop}\ndead.test smtp:[127.0.0.1]:9\n`);
  fs.writeFileSync(path.join(d, 'aliases'), 'postmaster: pm@b.test\n');
  fs.writeFileSync(
    path.join(d, 'c.conf'),
    [
      'hostname = a.test',
      `queue_dir = ${d}/q`,
      `mail_spool_dir = ${d}/mail`,
      `alias_file = ${d}/aliases`,
      `alias_db = ${d}/aliases.cdb`,
      `log_file = ${d}/log`,
      `transport_map = ${d}/mailertable`,
      `dns_servers = ${dns.server}`,
      'min_backoff = 15m',
      'max_backoff = 1h',
      'queue_warn = 4h',
      'queue_return = 5d',
      extra,
    ].join('\n'),
  );
  return loadConfig({ file: path.join(d, 'c.conf') });
}

const received = (rcpt: string) => sink.messages.filter((m) => m.recipients.includes(rcpt));

test('retries back off from min_backoff to max_backoff; one warning after queue_warn; returned after queue_return', async () => {
  const cfg = config();
  answers.set('carol@b.test', '450 4.2.1 Mailbox busy, try later');
  const arrival = Date.now();
  await enqueue(cfg, { sender: 'alice@b.test', submitter: 'alice', recipients: [{ address: 'carol@b.test' }], data: Buffer.from('Subject: stuck\n\nx\n'), arrival });
  let now = Date.now();
  const clock = () => now;
  const run = (force = false) => runQueue(cfg, { force, verbose: false, clock });
  const tries = () => listQueue(cfg)[0]?.control?.attempts;

  assert.equal((await run()).deferred, 1);
  assert.equal(tries(), 1);
  now += 14 * 60_000;
  assert.equal((await run()).tried, 0, 'not due before min_backoff');
  now += 60_000;
  assert.equal((await run()).tried, 1, 'due after 15 minutes');
  assert.equal(tries(), 2);
  now += 29 * 60_000;
  assert.equal((await run()).tried, 0, 'the second wait doubles');
  now += 60_000;
  await run();
  assert.equal(tries(), 3);
  for (let i = 0; i < 6; i++) {
    now += H;
    assert.equal((await run()).deferred, 1, 'capped at max_backoff: due every hour');
  }
  const warnings = received('alice@b.test');
  assert.equal(warnings.length, 1, 'one delay warning, delivered by the run that made it');
  assert.match(warnings[0].wire.toString(), /Action: delayed/);
  assert.ok(now - arrival > 4 * H);
  now += H;
  await run();
  assert.equal(received('alice@b.test').length, 1, 'still one warning');

  now = arrival + 5 * 24 * H + 60_000;
  await run();
  const back = received('alice@b.test');
  assert.equal(back.length, 2, 'returned once queue_return passed, in the same run');
  assert.match(back[1].wire.toString(), /Action: failed/);
  assert.match(back[1].wire.toString(), /Status: 5\.4\.7/);
  assert.deepEqual(listQueueIds(cfg), [], 'nothing left');
  answers.delete('carol@b.test');
});

test('a dead destination is tried once a run; a flush tries what is not due', async () => {
  const cfg = config();
  for (let i = 0; i < 200; i++) {
    await enqueue(cfg, { sender: 'alice@b.test', submitter: 'alice', recipients: [{ address: `u${i}@dead.test` }], data: Buffer.from(`Subject: ${i}\n\nx\n`) });
  }
  let now = Date.now();
  const clock = () => now;
  const s = await runQueue(cfg, { force: false, verbose: false, clock });
  assert.equal(s.deferred, 200);
  const log = fs.readFileSync(cfg.logFile, 'utf8');
  assert.equal(log.match(/\w{14}: connect to 127\.0\.0\.1\[127\.0\.0\.1\]:9: Connection refused\n/g)?.length, 1, 'one connection tried in the run');
  assert.equal(log.match(/stat=Deferred: delivery temporarily suspended: connect to/g)?.length, 200 - 64, 'the later batches of the run wait without trying');
  now += 60_000;
  assert.equal((await runQueue(cfg, { force: false, verbose: false, clock })).tried, 0);
  assert.equal((await runQueue(cfg, { force: true, verbose: false, clock })).tried, 200, '-qf');
});

test('a run removes what a writer that died left uncommitted an hour ago, and nothing younger', async () => {
  const cfg = config();
  await enqueue(cfg, { sender: 'alice@b.test', submitter: 'alice', recipients: [{ address: 'x@b.test' }], data: Buffer.from('x\n') });
  const old = path.join(cfg.queueDir, 'tf6B67aaaa000001');
  const young = path.join(cfg.queueDir, 'tf6B67aaab000001');
  fs.writeFileSync(old, 'V1\nhalf');
  fs.writeFileSync(young, 'V1\nhalf');
  const hourAgo = new Date(Date.now() - 3_700_000);
  fs.utimesSync(old, hourAgo, hourAgo);
  await runQueue(cfg, { force: false, verbose: false });
  assert.ok(!fs.existsSync(old));
  assert.ok(fs.existsSync(young), 'perhaps still being written');
  assert.match(fs.readFileSync(cfg.logFile, 'utf8'), /6B67aaaa000001: removed tf6B67aaaa000001, left uncommitted/);
});

test('entries are delivered in the order they arrived', async () => {
  const cfg = config();
  for (let i = 1; i <= 6; i++) await enqueue(cfg, { sender: 'alice@b.test', submitter: 'alice', recipients: [{ address: 'order@b.test' }], data: Buffer.from(`Subject: m${i}\n\nx\n`) });
  await runQueue(cfg, { force: false, verbose: false });
  const got = received('order@b.test').map((m) => /Subject: (m\d)/.exec(m.wire.toString())![1]);
  assert.deepEqual(got, ['m1', 'm2', 'm3', 'm4', 'm5', 'm6']);
});

test('a damaged entry is never delivered: set aside in corrupt/, postmaster told in the same run', async () => {
  const cfg = config();
  await enqueue(cfg, { sender: 'alice@b.test', submitter: 'alice', recipients: [{ address: 'victim@b.test' }], data: Buffer.from('Subject: whole\n\n' + 'z'.repeat(5000) + '\n') });
  const [id] = listQueueIds(cfg);
  const file = path.join(cfg.queueDir, `qf${id}`);
  fs.truncateSync(file, fs.statSync(file).size - 2000); // what a full disk or a bad sector leaves
  await runQueue(cfg, { force: false, verbose: false });
  assert.equal(received('victim@b.test').length, 0, 'no stub delivered');
  assert.ok(fs.existsSync(path.join(cfg.queueDir, 'corrupt', `qf${id}`)), 'kept for a human');
  const notice = received('pm@b.test');
  assert.equal(notice.length, 1, 'postmaster told');
  assert.match(notice[0].wire.toString(), new RegExp(`Subject: Damaged queue entry ${id} set aside`));
  assert.match(notice[0].wire.toString(), /Recipient: <victim@b\.test>/);
  assert.match(fs.readFileSync(cfg.logFile, 'utf8'), new RegExp(`${id}: SYSERR: .*damaged.*corrupt/qf${id}`));
  assert.deepEqual(listQueueIds(cfg), []);
});
