// deliverRemote against scripted SMTP sinks and a DNS server, all on
// loopback: routing (MX, implicit MX, transport_map, smart_host), MX
// fallback, one connection per destination, PIPELINING, STARTTLS, replies
// that defer or bounce, the bytes on the wire, ESMTP parameters, time-outs
// and the concurrency limit. No query or connection leaves 127.0.0.0/8.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Config, loadConfig } from '../config/index.ts';
import type { DeliveryStatus } from '../message/status.ts';
import { type DnsFixture, startDns } from './fixtures/dns-server.ts';
import { type Sink, type SinkOptions, startSink } from './fixtures/smtp-sink.ts';
import { makeCert } from './fixtures/tls-cert.ts';
import { type RemoteJob, type RemoteOutcome, type RemoteRecipient, deliverRemote } from './remote.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-remote-'));
let dns: DnsFixture;
const sinks: Sink[] = [];
let confN = 0;

before(async () => {
  dns = await startDns({
    mx: {
      'b.test': [[10, 'mx1.b.test'], [20, 'mx2.b.test']],
      'null.test': [[0, '.']],
    },
    a: { 'mx1.b.test': ['127.0.0.2'], 'mx2.b.test': ['127.0.0.3'], 'implicit.test': ['127.0.0.4'] },
    servfail: ['broken.test'],
  });
});
after(async () => {
  await Promise.all(sinks.map((s) => s.close()));
  await dns.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function sink(opts: SinkOptions = {}): Promise<Sink> {
  const s = await startSink(opts);
  sinks.push(s);
  return s;
}

/** A config whose transport_map holds `map`, DNS on our server, log in the temp dir. */
function config(map = '', extra: Record<string, string> = {}): Config {
  const n = ++confN;
  const tm = path.join(dir, `mailertable${n}`);
  fs.writeFileSync(tm, map);
  const conf = path.join(dir, `mailtk${n}.conf`);
  const keys: Record<string, string> = {
    hostname: 'mx.a.test',
    log_file: path.join(dir, 'maillog'),
    transport_map: tm,
    dns_servers: dns.server,
    dns_timeout: '2s',
    ...extra,
  };
  fs.writeFileSync(conf, Object.entries(keys).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n');
  return loadConfig({ file: conf, env: {} });
}

function job(recipients: Array<string | RemoteRecipient>, data = 'Subject: test\n\nhello\n', extra: Partial<RemoteJob> = {}): RemoteJob {
  return {
    id: 'TESTID',
    sender: 'alice@a.test',
    recipients: recipients.map((r) => (typeof r === 'string' ? { address: r } : r)),
    data: Buffer.from(data),
    ...extra,
  };
}

async function deliver(cfg: Config, jobs: RemoteJob[]): Promise<RemoteOutcome[][]> {
  const out = await deliverRemote(cfg, jobs);
  return jobs.map((j) => j.recipients.map((r) => out.get(r)!));
}

function status(o: RemoteOutcome): DeliveryStatus {
  assert.notEqual(o.result, 'ok', 'expected a failure');
  return o.result as DeliveryStatus;
}

/** Two sinks on 127.0.0.2 and 127.0.0.3 with one port, for b.test's two MXs. */
async function mxPair(first: SinkOptions = {}, second: SinkOptions = {}): Promise<[Sink, Sink]> {
  const one = await sink({ host: '127.0.0.2', ...first });
  const two = await sink({ host: '127.0.0.3', port: one.port, ...second });
  return [one, two];
}

test('MX lookup: mail goes to the best MX, on the port the route names', async () => {
  const [one, two] = await mxPair();
  const [[o]] = await deliver(config(`b.test smtp:b.test:${one.port}\n`), [job(['bob@b.test'])]);
  assert.equal(o.result, 'ok');
  assert.equal(o.relay, 'mx1.b.test. [127.0.0.2]');
  assert.equal(o.reply, 'Ok: queued as SINK1');
  assert.equal(one.messages.length, 1);
  assert.equal(two.messages.length, 0);
  assert.deepEqual(one.messages[0].recipients, ['bob@b.test']);
  assert.equal(one.messages[0].mailFrom, 'alice@a.test');
  assert.equal(one.messages[0].helo, 'mx.a.test');
});

test('MX fallback: a refused connection or a 4xx greeting moves on to the next MX', async () => {
  const [one, two] = await mxPair();
  await one.close();
  const [[o]] = await deliver(config(`b.test smtp:b.test:${one.port}\n`), [job(['bob@b.test'])]);
  assert.equal(o.result, 'ok');
  assert.equal(o.relay, 'mx2.b.test. [127.0.0.3]');
  assert.equal(two.messages.length, 1);
  assert.match(fs.readFileSync(path.join(dir, 'maillog'), 'utf8'), /TESTID: connect to mx1\.b\.test\[127\.0\.0\.2\]:\d+: Connection refused/);

  const [busy, spare] = await mxPair({ greeting: '421 4.3.2 busy, try later' });
  const [[p]] = await deliver(config(`b.test smtp:b.test:${busy.port}\n`), [job(['bob@b.test'])]);
  assert.equal(p.result, 'ok');
  assert.equal(busy.messages.length, 0);
  assert.equal(spare.messages.length, 1);
});

test('every MX failing defers, with the last temporary reason', async () => {
  const [one, two] = await mxPair({ greeting: '554 5.7.1 go away' }, { greeting: '421 4.3.2 busy' });
  const [[o]] = await deliver(config(`b.test smtp:b.test:${one.port}\n`), [job(['bob@b.test'])]);
  const s = status(o);
  assert.equal(s.status, '4.3.2');
  assert.equal(s.remote, '421 4.3.2 busy');
  assert.equal(s.remoteMta, 'mx2.b.test');
  assert.match(s.text, /host mx2\.b\.test\[127\.0\.0\.3\] said: 421 4\.3\.2 busy \(in reply to initial greeting command\)/);
  assert.equal(one.messages.length + two.messages.length, 0);
});

test('implicit MX: a domain without MX records is its own mail host', async () => {
  const s = await sink({ host: '127.0.0.4' });
  const [[o]] = await deliver(config(`implicit.test smtp:implicit.test:${s.port}\n`), [job(['carol@implicit.test'])]);
  assert.equal(o.result, 'ok');
  assert.equal(o.relay, 'implicit.test. [127.0.0.4]');
  assert.equal(s.messages.length, 1);
});

test('null MX bounces 5.1.10, NXDOMAIN 5.1.2, SERVFAIL defers 4.4.3, all without connecting', async () => {
  const [[nul], [nx], [fail]] = await deliver(config(), [job(['x@null.test']), job(['x@nowhere.test']), job(['x@broken.test'])]);
  assert.equal(status(nul).status, '5.1.10');
  assert.equal(status(nx).status, '5.1.2');
  assert.equal(status(fail).status, '4.4.3');
  assert.equal(nul.relay, undefined);
});

test('transport_map: [host]:port without DNS, .domain for subdomains, error: entries', async () => {
  const s = await sink();
  const cfg = config(`c.test smtp:${s.nexthop}\n.c.test smtp:${s.nexthop}\nbad.test error:5.7.1 we do not send there\n`);
  const queries = dns.queries.length;
  const [[a, b, c]] = await deliver(cfg, [job(['u@c.test', 'v@deep.sub.c.test', 'w@bad.test'])]);
  assert.equal(a.result, 'ok');
  assert.equal(a.relay, '[127.0.0.1] [127.0.0.1]');
  assert.equal(b.result, 'ok');
  assert.deepEqual(c.result, { status: '5.7.1', text: 'we do not send there' });
  assert.equal(dns.queries.length, queries, 'a bracketed host needs no DNS');
  assert.equal(s.connections, 1, 'c.test and its subdomain share the nexthop, so one connection');
  assert.deepEqual(s.messages[0].recipients, ['u@c.test', 'v@deep.sub.c.test']);
});

test('a broken transport_map defers every remote recipient, naming file:line', async () => {
  const cfg = config('ok.test smtp:[127.0.0.1]\njustonefield\n');
  const [[o]] = await deliver(cfg, [job(['u@ok.test'])]);
  const s = status(o);
  assert.equal(s.status, '4.3.5');
  assert.match(s.text, /mailertable\d+:2: expected "domain nexthop"/);
});

test('smart_host takes all remote mail, except what transport_map routes', async () => {
  const smart = await sink();
  const mapped = await sink();
  const cfg = config(`mapped.test smtp:${mapped.nexthop}\n`, { smart_host: smart.nexthop });
  const [[a, b]] = await deliver(cfg, [job(['u@anywhere.test', 'v@mapped.test'])]);
  assert.equal(a.result, 'ok');
  assert.equal(b.result, 'ok');
  assert.deepEqual(smart.messages.map((m) => m.recipients), [['u@anywhere.test']]);
  assert.deepEqual(mapped.messages.map((m) => m.recipients), [['v@mapped.test']]);
});

test('one connection per destination: all recipients in one transaction, messages one after another', async () => {
  const s = await sink();
  const cfg = config(`c.test smtp:${s.nexthop}\n`);
  const outs = await deliver(cfg, [job(['a@c.test', 'b@c.test', 'c@c.test']), job(['d@c.test'], 'Subject: two\n\nsecond\n')]);
  assert.ok(outs.flat().every((o) => o.result === 'ok'));
  assert.equal(s.connections, 1);
  assert.deepEqual(s.messages.map((m) => m.recipients), [['a@c.test', 'b@c.test', 'c@c.test'], ['d@c.test']]);
  assert.equal(s.transcripts[0].filter((l) => l === 'C: QUIT').length, 1);
});

test('PIPELINING: MAIL, every RCPT and DATA go before any reply; without it, one at a time', async () => {
  const piped = await sink();
  await deliver(config(`c.test smtp:${piped.nexthop}\n`), [job(['a@c.test', 'b@c.test'])]);
  const t = piped.transcripts[0];
  const mail = t.findIndex((l) => l.startsWith('C: MAIL FROM:'));
  assert.deepEqual(
    t.slice(mail, mail + 8).map((l) => l.slice(0, 12)),
    ['C: MAIL FROM', 'C: RCPT TO:<', 'C: RCPT TO:<', 'C: DATA', 'S: 250 2.1.0', 'S: 250 2.1.5', 'S: 250 2.1.5', 'S: 354 End d'],
  );
  const plain = await sink({ extensions: ['8BITMIME'] });
  await deliver(config(`c.test smtp:${plain.nexthop}\n`), [job(['a@c.test', 'b@c.test'])]);
  const u = plain.transcripts[0];
  const m = u.findIndex((l) => l.startsWith('C: MAIL FROM:'));
  assert.deepEqual(
    u.slice(m, m + 8).map((l) => l.slice(0, 7)),
    ['C: MAIL', 'S: 250 ', 'C: RCPT', 'S: 250 ', 'C: RCPT', 'S: 250 ', 'C: DATA', 'S: 354 '],
  );
});

test('STARTTLS when offered (certificate not checked at level may), logged like sendmail', async (t) => {
  const cert = makeCert('localhost');
  if (!cert) return t.skip('openssl is not installed');
  const s = await sink({ tls: cert });
  const [[o]] = await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['a@c.test'])]);
  assert.equal(o.result, 'ok');
  assert.equal(s.messages[0].tls, true);
  assert.equal(s.messages[0].helo, 'mx.a.test', 'EHLO again after STARTTLS');
  assert.match(fs.readFileSync(path.join(dir, 'maillog'), 'utf8'), /TESTID: STARTTLS=client, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], version=TLSv1\.\d, verify=NO, cipher=/);
});

test('TLS levels: encrypt defers when not offered (4.7.4); verify rejects a self-signed certificate (4.7.5); none never asks', async (t) => {
  const plain = await sink();
  const [[o]] = await deliver(config(`c.test smtp:${plain.nexthop}\n`, { smtp_tls_security_level: 'encrypt' }), [job(['a@c.test'])]);
  assert.equal(status(o).status, '4.7.4');
  assert.equal(plain.messages.length, 0);
  const cert = makeCert('localhost');
  if (!cert) return t.skip('openssl is not installed');
  const tlsSink = await sink({ tls: cert });
  const [[v]] = await deliver(config(`c.test smtp:${tlsSink.nexthop}\n`, { smtp_tls_security_level: 'verify' }), [job(['a@c.test'])]);
  assert.equal(status(v).status, '4.7.5');
  assert.equal(tlsSink.messages.length, 0);
  const [[n]] = await deliver(config(`c.test smtp:${tlsSink.nexthop}\n`, { smtp_tls_security_level: 'none' }), [job(['a@c.test'])]);
  assert.equal(n.result, 'ok');
  assert.equal(tlsSink.messages[0].tls, false);
});

test('TLS level may: a failed handshake is retried in the clear', async (t) => {
  const cert = makeCert('localhost');
  if (!cert) return t.skip('openssl is not installed');
  const s = await sink({ tls: cert, brokenTls: true });
  const [[o]] = await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['a@c.test'])]);
  assert.equal(o.result, 'ok');
  assert.equal(s.connections, 2);
  assert.equal(s.messages[0].tls, false);
});

test('replies sent in the clear after the 220 to STARTTLS are never taken into the TLS session', async (t) => {
  const cert = makeCert('localhost');
  if (!cert) return t.skip('openssl is not installed');
  const s = await sink({ tls: cert, starttlsReply: '220 2.0.0 Ready\r\n250-injected\r\n250 SIZE 1' });
  const [[o]] = await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['a@c.test'])]);
  assert.equal(status(o).status, '4.5.0');
  assert.match(status(o).text, /data after the reply to STARTTLS/);
  assert.equal(s.messages.length, 0);
});

test('4xx to a recipient defers it, 5xx bounces it, the reply quoted; the others are delivered', async () => {
  const s = await sink({
    rcpt: (a) => (a.startsWith('busy') ? '450 4.2.1 Mailbox busy' : a.startsWith('nobody') ? '550 5.1.1 <nobody@c.test>... User unknown' : a.startsWith('plain') ? '550 no such user' : undefined),
  });
  const [[busy, nobody, plain, ok]] = await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['busy@c.test', 'nobody@c.test', 'plain@c.test', 'ok@c.test'])]);
  assert.deepEqual(busy.result, {
    status: '4.2.1',
    text: 'host 127.0.0.1[127.0.0.1] said: 450 4.2.1 Mailbox busy (in reply to RCPT TO command)',
    remote: '450 4.2.1 Mailbox busy',
    remoteMta: '127.0.0.1',
  });
  assert.equal(status(nobody).status, '5.1.1');
  assert.equal(status(nobody).remote, '550 5.1.1 <nobody@c.test>... User unknown');
  assert.equal(status(plain).status, '5.0.0', 'no enhanced code: the class alone, never a guess');
  assert.equal(ok.result, 'ok');
  assert.deepEqual(s.messages[0].recipients, ['ok@c.test']);
});

test('a refused MAIL FROM or end of data applies to every recipient', async () => {
  const s = await sink({ mail: () => '553 5.1.8 sender domain does not exist' });
  const [[a, b]] = await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['a@c.test', 'b@c.test'])]);
  assert.equal(status(a).status, '5.1.8');
  assert.match(status(b).text, /in reply to MAIL FROM command/);
  const t = await sink({ dataDone: () => '451 4.3.0 queue file write error' });
  const [[c, d]] = await deliver(config(`c.test smtp:${t.nexthop}\n`), [job(['c@c.test', 'd@c.test'])]);
  assert.equal(status(c).status, '4.3.0');
  assert.match(status(d).text, /in reply to end of DATA command/);
});

test('the data on the wire: CRLF line ends, dot-stuffed, exactly', async () => {
  const s = await sink();
  const body = 'Subject: dots\n\n.leading dot\n..two dots\nplain . middle\n.\n\nlast line without newline';
  await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['a@c.test'], body)]);
  assert.equal(
    s.messages[0].wire.toString('latin1'),
    'Subject: dots\r\n\r\n..leading dot\r\n...two dots\r\nplain . middle\r\n..\r\n\r\nlast line without newline\r\n',
  );
});

test('ESMTP parameters: SIZE, BODY=8BITMIME, DSN RET/ENVID and each recipient\'s NOTIFY/ORCPT', async () => {
  const s = await sink();
  const data = 'Subject: caf\u00e9\n\n\u00e9t\u00e9\n';
  const j = job(
    [
      { address: 'a@c.test', notify: 'success,failure', orcpt: 'rfc822;A+list@c.test' },
      { address: 'b@c.test', notify: 'NEVER' },
      { address: 'c@c.test' },
    ],
    data,
    { envid: 'QID 42', ret: 'hdrs' },
  );
  await deliver(config(`c.test smtp:${s.nexthop}\n`), [j]);
  const t = s.transcripts[0];
  const size = Buffer.byteLength(data) + 3;
  assert.ok(t.includes(`C: MAIL FROM:<alice@a.test> SIZE=${size} BODY=8BITMIME RET=HDRS ENVID=QID+2042`), t.join('\n'));
  assert.ok(t.includes('C: RCPT TO:<a@c.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A+2Blist@c.test'));
  assert.ok(t.includes('C: RCPT TO:<b@c.test> NOTIFY=NEVER'));
  assert.ok(t.includes('C: RCPT TO:<c@c.test>'));
  const bare = await sink({ extensions: ['PIPELINING'] });
  await deliver(config(`c.test smtp:${bare.nexthop}\n`), [j]);
  assert.ok(bare.transcripts[0].includes('C: MAIL FROM:<alice@a.test>'), 'nothing the server did not offer');
});

test('what the server cannot take fails before MAIL: SIZE over its limit 5.3.4, SMTPUTF8 missing 5.6.7', async () => {
  const small = await sink({ extensions: ['SIZE 100'] });
  const [[big]] = await deliver(config(`c.test smtp:${small.nexthop}\n`), [job(['a@c.test'], 'x'.repeat(200))]);
  assert.equal(status(big).status, '5.3.4');
  const ascii = await sink({ extensions: ['8BITMIME'] });
  const [[utf]] = await deliver(config(`c.test smtp:${ascii.nexthop}\n`), [job(['j\u00f6rg@c.test'])]);
  assert.equal(status(utf).status, '5.6.7');
  assert.ok(!small.transcripts[0].some((l) => l.startsWith('C: MAIL')));
  const utf8 = await sink();
  const [[ok]] = await deliver(config(`c.test smtp:${utf8.nexthop}\n`), [job(['j\u00f6rg@c.test'])]);
  assert.equal(ok.result, 'ok');
  assert.ok(utf8.transcripts[0].some((l) => l.startsWith('C: MAIL') && l.endsWith(' SMTPUTF8')));
});

test('a server that refuses EHLO gets HELO and plain SMTP', async () => {
  const s = await sink({ noEhlo: true });
  const [[o]] = await deliver(config(`c.test smtp:${s.nexthop}\n`), [job(['a@c.test'])]);
  assert.equal(o.result, 'ok');
  assert.ok(s.transcripts[0].includes('C: HELO mx.a.test'));
  assert.ok(s.transcripts[0].includes('C: MAIL FROM:<alice@a.test>'));
});

test('time limits per stage: a silent greeting defers 4.4.2 within smtp_helo_timeout', async () => {
  const s = await sink({ delayMs: 3000 });
  const started = Date.now();
  const [[o]] = await deliver(config(`c.test smtp:${s.nexthop}\n`, { smtp_helo_timeout: '1s' }), [job(['a@c.test'])]);
  assert.equal(status(o).status, '4.4.2');
  assert.match(status(o).text, /timed out while receiving the initial server greeting/);
  assert.ok(Date.now() - started < 2500);
});

test('a connection lost after the final dot defers without trying the next MX (no duplicate)', async () => {
  const [one, two] = await mxPair({ dropAfterData: true });
  const [[o]] = await deliver(config(`b.test smtp:b.test:${one.port}\n`), [job(['bob@b.test'])]);
  assert.equal(status(o).status, '4.4.2');
  assert.equal(one.messages.length, 1);
  assert.equal(two.messages.length, 0);
});

test('destinations run in parallel, at most remote_concurrency at once', async () => {
  const gauge = { active: 0, max: 0 };
  const list = await Promise.all(Array.from({ length: 5 }, () => sink({ gauge, delayMs: 100 })));
  const map = list.map((s, i) => `d${i}.test smtp:${s.nexthop}`).join('\n') + '\n';
  const jobs = list.map((_, i) => job([`u@d${i}.test`]));
  const started = Date.now();
  const outs = await deliver(config(map, { remote_concurrency: '2' }), jobs);
  const took = Date.now() - started;
  assert.ok(outs.flat().every((o) => o.result === 'ok'));
  assert.equal(gauge.max, 2);
  // Each session takes about 8 replies x 100 ms; five of them two at a time take three rounds.
  assert.ok(took > 2000, `took ${took} ms`);
});
