// transport_map parsing and route lookup: exact domain, ".parent" entries,
// the "." catch-all, smart_host's place in the order, error entries, and
// errors that name file:line.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MailError } from '../message/status.ts';
import { parseNexthop, parseTransportMap, routeFor } from './transport-map.ts';

const FILE = '/etc/mail/mailertable';

test('entries: [host]:port, host, host:port, smtp: alone, esmtp/relay, error', () => {
  const map = parseTransportMap(
    [
      '# routes',
      'b.test       smtp:[127.0.0.1]:2525',
      '.b.test      smtp:mx.b.test',
      'c.test       esmtp:relay.c.test:587  # trailing comment',
      'd.test       relay:[::1]:26',
      'e.test       smtp:',
      'bad.test     error:5.7.1 we do not send there',
      'old.test     error:5.1.2:550 Host unknown',
      'later.test   error:4.3.0',
      '',
    ].join('\n'),
    FILE,
  );
  assert.deepEqual(routeFor(map, undefined, 'b.test'), { kind: 'smtp', host: '127.0.0.1', port: 2525, mx: false });
  assert.deepEqual(routeFor(map, undefined, 'x.y.b.test'), { kind: 'smtp', host: 'mx.b.test', port: 25, mx: true });
  assert.deepEqual(routeFor(map, undefined, 'C.TEST.'), { kind: 'smtp', host: 'relay.c.test', port: 587, mx: true });
  assert.deepEqual(routeFor(map, undefined, 'd.test'), { kind: 'smtp', host: '::1', port: 26, mx: false });
  assert.deepEqual(routeFor(map, undefined, 'e.test'), { kind: 'smtp', host: 'e.test', port: 25, mx: true });
  assert.deepEqual(routeFor(map, undefined, 'bad.test'), { kind: 'error', status: { status: '5.7.1', text: 'we do not send there' } });
  assert.deepEqual(routeFor(map, undefined, 'old.test'), { kind: 'error', status: { status: '5.1.2', text: 'Host unknown' } });
  assert.equal(routeFor(map, undefined, 'later.test').kind, 'error');
});

test('order: exact, most specific .parent, ".", smart_host, then the domain itself', () => {
  const map = parseTransportMap('.test smtp:[10.0.0.1]\n.a.test smtp:[10.0.0.2]\nb.a.test smtp:[10.0.0.3]\n', FILE);
  const host = (d: string, m = map) => {
    const r = routeFor(m, parseNexthop('[10.9.9.9]:2525'), d);
    return r.kind === 'smtp' ? r.host : r.kind;
  };
  assert.equal(host('b.a.test'), '10.0.0.3');
  assert.equal(host('c.b.a.test'), '10.0.0.2');
  assert.equal(host('x.a.test'), '10.0.0.2');
  assert.equal(host('a.test'), '10.0.0.1', '".a.test" matches subdomains only; ".test" covers a.test');
  assert.equal(host('other.org'), '10.9.9.9', 'smart_host after the map');
  const withDot = parseTransportMap('. smtp:[10.0.0.9]\n', FILE);
  assert.equal(host('other.org', withDot), '10.0.0.9', '"." before smart_host');
  assert.deepEqual(routeFor(new Map(), undefined, 'Other.ORG'), { kind: 'smtp', host: 'other.org', port: 25, mx: true });
  assert.deepEqual(routeFor(new Map(), undefined, '[192.0.2.1]'), { kind: 'smtp', host: '192.0.2.1', port: 25, mx: false });
});

test('bad lines are errors naming file:line', () => {
  const bad = (text: string, line: number, what: RegExp) =>
    assert.throws(() => parseTransportMap(text, FILE), (e: unknown) => {
      assert.ok(e instanceof MailError);
      assert.equal(e.exit, 78);
      assert.match(e.message, new RegExp(`^${FILE}:${line}: `));
      assert.match(e.message, what);
      return true;
    });
  bad('b.test smtp:[127.0.0.1]:2525\nc.test\n', 2, /expected "domain nexthop"/);
  bad('\n\nb.test uucp:host\n', 3, /expected smtp:\[host\]:port/);
  bad('b.test smtp:[127.0.0.1]:99999\n', 1, /bad host or port/);
  bad('b.test error:550 no\n', 1, /expected error:5.x.x text/);
  bad('b.test error:2.0.0 fine\n', 1, /expected error:5.x.x text/);
  bad('b/test smtp:x\n', 1, /not a domain/);
});

test('smart_host forms', () => {
  assert.deepEqual(parseNexthop('[127.0.0.1]:2525'), { kind: 'smtp', host: '127.0.0.1', port: 2525, mx: false });
  assert.deepEqual(parseNexthop('[relay.test]'), { kind: 'smtp', host: 'relay.test', port: 25, mx: false });
  assert.deepEqual(parseNexthop('relay.test'), { kind: 'smtp', host: 'relay.test', port: 25, mx: true });
  assert.deepEqual(parseNexthop('[IPv6:::1]:25'), { kind: 'smtp', host: '::1', port: 25, mx: false });
  assert.equal(parseNexthop('relay test'), undefined);
  assert.equal(parseNexthop('[::1'), undefined);
});
