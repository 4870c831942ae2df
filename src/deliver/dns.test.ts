// MX and address lookups against a DNS server of our own on 127.0.0.1:
// preference order and shuffling, implicit MX, null MX, NXDOMAIN, SERVFAIL,
// time-outs, our own name among the MXs, and reverse names (loopback answered
// without a query).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MailResolver, orderMx } from './dns.ts';
import { type DnsFixture, startDns } from './fixtures/dns-server.ts';

let dns: DnsFixture;
let resolver: MailResolver;

before(async () => {
  dns = await startDns({
    mx: {
      'b.test': [[20, 'mx2.b.test'], [10, 'mx1.b.test'], [30, 'gone.b.test']],
      'null.test': [[0, '.']],
      'self.test': [[10, 'mx.a.test'], [5, 'better.self.test'], [20, 'worse.self.test']],
      'loop.test': [[10, 'mx.a.test']],
      'noaddr.test': [[10, 'gone.b.test']],
    },
    a: {
      'mx1.b.test': ['127.0.0.2'],
      'mx2.b.test': ['127.0.0.3', '127.0.0.4'],
      'implicit.test': ['127.0.0.5'],
      'better.self.test': ['127.0.0.6'],
      'worse.self.test': ['127.0.0.7'],
      'host.c.test': ['192.0.2.7'],
      'liar.c.test': ['192.0.2.99'],
      'bare.test': [],
    },
    aaaa: { 'mx2.b.test': ['::1'] },
    ptr: { '7.2.0.192.in-addr.arpa': 'host.c.test', '8.2.0.192.in-addr.arpa': 'liar.c.test' },
    servfail: ['broken.test'],
    silent: ['slow.test'],
  });
  resolver = new MailResolver([dns.server], 900);
});
after(() => dns.close());

test('MX hosts by preference, with their A then AAAA addresses; hosts without addresses skipped', async () => {
  const r = await resolver.mailHosts('b.test');
  assert.ok('hosts' in r);
  assert.deepEqual(r.hosts, [
    { name: 'mx1.b.test', preference: 10, addresses: ['127.0.0.2'] },
    { name: 'mx2.b.test', preference: 20, addresses: ['127.0.0.3', '127.0.0.4', '::1'] },
  ]);
});

test('equal preferences come in random order, never ahead of a better one', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const order = orderMx([
      { exchange: 'c', priority: 10 },
      { exchange: 'z', priority: 5 },
      { exchange: 'a', priority: 10 },
      { exchange: 'b', priority: 10 },
    ]).map((h) => h.name);
    assert.equal(order[0], 'z');
    seen.add(order.join(''));
  }
  assert.equal(seen.size, 6, `all orders of the three equal hosts appear: ${[...seen]}`);
});

test('no MX: the domain itself is the mail host (implicit MX)', async () => {
  assert.deepEqual(await resolver.mailHosts('implicit.test'), { hosts: [{ name: 'implicit.test', preference: 0, addresses: ['127.0.0.5'] }] });
});

test('null MX is a permanent 5.1.10; NXDOMAIN 5.1.2; no address anywhere 5.4.4', async () => {
  const status = async (d: string) => {
    const r = await resolver.mailHosts(d);
    return 'failure' in r ? r.failure.status : 'hosts';
  };
  assert.equal(await status('null.test'), '5.1.10');
  assert.equal(await status('nowhere.test'), '5.1.2');
  assert.equal(await status('noaddr.test'), '5.4.4');
  assert.equal(await status('bare.test'), '5.4.4');
});

test('SERVFAIL and time-outs are temporary 4.4.3', async () => {
  const r = await resolver.mailHosts('broken.test');
  assert.ok('failure' in r && r.failure.status === '4.4.3', JSON.stringify(r));
  const started = Date.now();
  const s = await resolver.mailHosts('slow.test');
  assert.ok('failure' in s && s.failure.status === '4.4.3', JSON.stringify(s));
  assert.ok(Date.now() - started < 5000, 'dns_timeout bounds the wait');
});

test('when we are an MX, only better MXs are tried; when we are the best, 5.4.6', async () => {
  const r = await resolver.mailHosts('self.test', 'MX.A.TEST');
  assert.ok('hosts' in r);
  assert.deepEqual(r.hosts.map((h) => h.name), ['better.self.test']);
  const loop = await resolver.mailHosts('loop.test', 'mx.a.test');
  assert.ok('failure' in loop && loop.failure.status === '5.4.6');
});

test('reverse names: forward-confirmed or not; loopback answered without a query', async () => {
  assert.deepEqual(await resolver.reverse('192.0.2.7'), { name: 'host.c.test', confirmed: true });
  assert.deepEqual(await resolver.reverse('192.0.2.8'), { name: 'liar.c.test', confirmed: false });
  assert.deepEqual(await resolver.reverse('192.0.2.200'), { confirmed: false });
  const before = dns.queries.length;
  assert.deepEqual(await resolver.reverse('127.0.0.1'), { name: 'localhost', confirmed: true });
  assert.deepEqual(await resolver.reverse('::ffff:127.0.0.9'), { name: 'localhost', confirmed: true });
  assert.deepEqual(await resolver.reverse('::1'), { name: 'localhost', confirmed: true });
  assert.equal(dns.queries.length, before, 'no query for loopback');
});

test('an IP or localhost as a host name needs no query', async () => {
  const before = dns.queries.length;
  assert.deepEqual(await resolver.directHost('127.0.0.1'), { hosts: [{ name: '127.0.0.1', preference: 0, addresses: ['127.0.0.1'] }] });
  assert.deepEqual(await resolver.addresses('localhost'), { addresses: ['127.0.0.1'] });
  assert.equal(dns.queries.length, before);
});
