// DNS block lists over a real listener, with a DNS server on loopback (the
// dns2 fixture) as dns_servers: a listed client address (127.0.0.2) gets
// 554 5.7.1 with the list's TXT text at RCPT, others pass; a listed sender
// domain likewise (rhsbl_zones); an access OK entry skips the lookups; a
// list that fails or does not answer counts as not listed; an authenticated
// client is never refused. And a null sender's second recipient gets 452 4.5.3.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type DnsFixture, startDns } from '../src/deliver/fixtures/dns-server.ts';
import { dnsblName } from '../src/server/dnsbl.ts';
import { PASSWORD } from './mailbox/harness.ts';
import { SmtpClient, type TestServer, startServer } from './transcripts/harness.ts';

function connectFrom(port: number, localAddress: string): Promise<SmtpClient> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(SmtpClient.wrap(s)));
    s.once('error', reject);
  });
}

/** EHLO, MAIL FROM:<sender>, then the replies to RCPT TO:<each>. */
async function transaction(port: number, from: string, sender: string, recipients: string[]): Promise<string[]> {
  const c = await connectFrom(port, from);
  try {
    await c.reply();
    await c.command('EHLO client.test');
    assert.match((await c.command(`MAIL FROM:<${sender}>`))[0], /^250 /);
    const out: string[] = [];
    for (const r of recipients) out.push((await c.command(`RCPT TO:<${r}>`)).join('\n'));
    await c.command('QUIT');
    return out;
  } finally {
    c.end();
  }
}

test('the names a list is asked: reversed octets, reversed nibbles', () => {
  assert.equal(dnsblName('192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
  assert.equal(dnsblName('::ffff:192.0.2.99', 'bl.test'), '99.2.0.192.bl.test');
  assert.equal(dnsblName('2001:db8::567:89ab', 'bl.test'), 'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test');
  assert.equal(dnsblName('not an address', 'bl.test'), undefined);
});

describe('dnsbl_zones and rhsbl_zones through a loopback DNS server', () => {
  let dns: DnsFixture;
  let s: TestServer;
  const log = () => fs.readFileSync(s.sb.log, 'utf8');

  before(async () => {
    dns = await startDns({
      a: {
        '2.0.0.127.bl.test': ['127.0.0.2'],
        '9.0.0.127.bl.test': ['127.0.0.2'],
        '6.0.0.127.bl.test': ['192.0.2.1'],
        '7.0.0.127.bl.test': ['127.255.255.254'],
        'spammer.test.rhs.test': ['127.0.0.2'],
      },
      txt: {
        '2.0.0.127.bl.test': ['Listed by bl.test, see https://bl.test/q?127.0.0.2'],
        'spammer.test.rhs.test': ['Domain listed by rhs.test'],
      },
      servfail: ['4.0.0.127.bl.test'],
      silent: ['5.0.0.127.bl.test'],
    });
    s = await startServer({
      submission: true,
      passwords: { bob: PASSWORD },
      access: 'Connect:127.0.0.9\tOK\n',
      extraConf: [
        `dns_servers = ${dns.server}`,
        'dns_timeout = 1s',
        'dnsbl_zones = bl.test',
        'rhsbl_zones = rhs.test',
        'relay_networks = 10.0.0.0/8',
      ].join('\n'),
    });
  });
  after(async () => {
    await s?.close();
    await dns?.close();
  });

  test('a listed client gets 554 5.7.1 with the TXT text at RCPT; the refusal and the listing are logged', async () => {
    const [r] = await transaction(s.smtpPort, '127.0.0.2', 'someone@sender.test', ['bob@mail.test']);
    assert.equal(r, '554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using bl.test; Listed by bl.test, see https://bl.test/q?127.0.0.2');
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.2\] zone=bl\.test: listed \(127\.0\.0\.2\): Listed by bl\.test/);
    assert.match(log(), /ruleset=check_rcpt, arg1=<bob@mail\.test>, relay=.*\[127\.0\.0\.2\], reject=554 5\.7\.1 .*, rule=dnsbl_zones bl\.test/);
  });

  test('a client that is not listed passes, and that is logged', async () => {
    const [r] = await transaction(s.smtpPort, '127.0.0.3', 'someone@sender.test', ['bob@mail.test']);
    assert.match(r, /^250 2\.1\.5/);
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.3\] not listed \(bl\.test\)/);
    assert.match(log(), /dnsbl: sender_domain=sender\.test not listed \(rhs\.test\)/);
    assert.ok(dns.queries.some((q) => q.name === '3.0.0.127.bl.test' && q.type === 'A'));
  });

  test('a listed sender domain gets 554 5.7.1 (rhsbl_zones)', async () => {
    const [r] = await transaction(s.smtpPort, '127.0.0.3', 'x@spammer.test', ['bob@mail.test']);
    assert.equal(r, '554 5.7.1 Service unavailable; Sender address [x@spammer.test] blocked using rhs.test; Domain listed by rhs.test');
  });

  test('an access file OK for the client skips the lookups', async () => {
    const before = dns.queries.length;
    const [r] = await transaction(s.smtpPort, '127.0.0.9', 'x@spammer.test', ['bob@mail.test']);
    assert.match(r, /^250 /);
    assert.ok(!dns.queries.slice(before).some((q) => q.name.startsWith('9.0.0.127.')));
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.9\] not looked up: .*access:1 Connect:127\.0\.0\.9 OK/);
  });

  test('a failed lookup, a time-out and an answer that is not a listing all count as not listed', async () => {
    for (const from of ['127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7']) {
      const [r] = await transaction(s.smtpPort, from, 'someone@sender.test', ['bob@mail.test']);
      assert.match(r, /^250 /, from);
    }
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.4\] zone=bl\.test: lookup of 4\.0\.0\.127\.bl\.test failed \(\w+\); treated as not listed/);
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.5\] zone=bl\.test: lookup of 5\.0\.0\.127\.bl\.test failed \(ETIMEOUT\); treated as not listed/);
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.6\] zone=bl\.test: answer 192\.0\.2\.1 is not a listing/);
    assert.match(log(), /dnsbl: client=\[127\.0\.0\.7\] zone=bl\.test: answer 127\.255\.255\.254 is not a listing/);
  });

  test('an authenticated client on a listed address is not refused; submission asks no list', async () => {
    const before = dns.queries.length;
    const c = await connectFrom(s.submissionPort as number, '127.0.0.2');
    try {
      await c.reply();
      await c.command('EHLO client.test');
      assert.match((await c.command(`AUTH PLAIN ${Buffer.from(`\0bob\0${PASSWORD}`).toString('base64')}`))[0], /^235 /);
      assert.match((await c.command('MAIL FROM:<bob@mail.test>'))[0], /^250 /);
      assert.match((await c.command('RCPT TO:<alice@mail.test>'))[0], /^250 /);
    } finally {
      c.end();
    }
    assert.equal(dns.queries.length, before);
  });

  test('a null sender has one recipient: the second gets 452 4.5.3', async () => {
    const [first, second, third] = await transaction(s.smtpPort, '127.0.0.3', '', ['bob@mail.test', 'alice@mail.test', 'bob@mail.test']);
    assert.match(first, /^250 2\.1\.5/);
    assert.equal(second, '452 4.5.3 <alice@mail.test>... A null sender (a bounce) has one recipient; send the others separately');
    assert.match(third, /^452 4\.5\.3/);
    assert.match(log(), /ruleset=check_rcpt, arg1=<alice@mail\.test>, .*reject=452 4\.5\.3 .*, rule=null sender/);
  });
});
