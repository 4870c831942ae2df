import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { Anvil } from './anvil.ts';
import { ConnControl, subnetOf } from './conn-control.ts';

const P = { v4: 24, v6: 64 };

test('subnetOf: IPv4 /24 and IPv6 /64 by default, other lengths when configured', () => {
  assert.equal(subnetOf('192.0.2.77', P), '192.0.2.0/24');
  assert.equal(subnetOf('192.0.2.77', { v4: 16, v6: 64 }), '192.0.0.0/16');
  assert.equal(subnetOf('192.0.2.77', { v4: 32, v6: 64 }), '192.0.2.77/32');
  assert.equal(subnetOf('192.0.2.77', { v4: 0, v6: 64 }), '0.0.0.0/0');
  assert.equal(subnetOf('2001:db8:1:2:3:4:5:6', P), '2001:db8:1:2:0:0:0:0/64');
  assert.equal(subnetOf('2001:db8::1', P), '2001:db8:0:0:0:0:0:0/64');
  assert.equal(subnetOf('2001:db8:1:2::9', { v4: 24, v6: 56 }), '2001:db8:1:0:0:0:0:0/56');
  assert.equal(subnetOf('::ffff:1.2.3.4', { v4: 24, v6: 120 }), '0:0:0:0:0:ffff:102:300/120');
});

function config(over: Record<string, string> = {}) {
  return loadConfig({ file: '/dev/null', overrides: { relay_networks: '10.0.0.0/8', log_file: '/dev/null', ...over } });
}

test('per address, per subnet, in all; exceptions spared the per-client limits only', () => {
  const c = config({ client_limit_exceptions: '$relay_networks, 192.0.2.9' });
  const control = new ConnControl(c, { name: 'smtp', maxClients: 8, maxPerAddress: 2, maxPerSubnet: 3 });
  const ok = (ip: string) => !('why' in control.admit(ip));
  assert.ok(ok('198.51.100.1') && ok('198.51.100.1'));
  assert.deepEqual(control.admit('198.51.100.1'), { why: 'address', key: 'smtp_max_clients_per_ip' });
  assert.ok(ok('198.51.100.2'));
  assert.deepEqual(control.admit('198.51.100.3'), { why: 'subnet', key: 'smtp_max_clients_per_subnet' });
  assert.ok(ok('10.1.1.1') && ok('10.1.1.1') && ok('10.1.1.1'), 'relay_networks: no per-address limit');
  assert.ok(ok('192.0.2.9'), 'a listed address');
  // 7 taken: stress (from 6 of 8) halves the per-client limits for newcomers.
  assert.ok(control.stressed());
  assert.ok(ok('203.0.113.5'));
  assert.deepEqual(control.admit('203.0.113.5'), { why: 'address', key: 'smtp_max_clients_per_ip' });
  assert.deepEqual(control.admit('10.1.1.1'), { why: 'busy', key: 'smtp_max_clients' }, 'the limit in all spares nobody');
});

test('a full listener displaces the longest idle session that holds nothing, and only such a one', () => {
  const control = new ConnControl(config(), { name: 'mailbox', maxClients: 2, maxPerAddress: 5, maxPerSubnet: 5 });
  const displaced: string[] = [];
  const a = control.admit('198.51.101.1');
  const b = control.admit('198.51.102.1');
  assert.ok(!('why' in a) && !('why' in b));
  control.attach(a, { idleSince: () => 1000, displace: () => displaced.push('a'), rearmTimer: () => undefined });
  control.attach(b, { idleSince: () => undefined, displace: () => displaced.push('b'), rearmTimer: () => undefined });
  const c = control.admit('198.51.103.1');
  assert.ok(!('why' in c));
  assert.deepEqual(displaced, ['a']);
  control.attach(c, { idleSince: () => undefined, displace: () => displaced.push('c'), rearmTimer: () => undefined });
  assert.deepEqual(control.admit('198.51.104.1'), { why: 'busy', key: 'mailbox_max_clients' }, 'nobody left to displace');
  b.release();
  b.release();
  assert.equal(control.size, 1, 'release is idempotent');
});

test('a subnet outside the exceptions displaces three times in ten seconds; an excepted client whenever it needs', () => {
  const control = new ConnControl(config(), { name: 'smtp', maxClients: 3, maxPerAddress: 10, maxPerSubnet: 10 });
  const displaced: number[] = [];
  const fill = (ip: string, n: number) => {
    const slot = control.admit(ip);
    assert.ok(!('why' in slot), `${ip} admitted`);
    control.attach(slot, { idleSince: () => n, displace: () => displaced.push(n), rearmTimer: () => undefined });
  };
  fill('198.51.110.1', 1);
  fill('198.51.111.1', 2);
  fill('198.51.112.1', 3);
  fill('203.0.113.1', 4); // displaces 1
  fill('203.0.113.2', 5); // 2
  fill('203.0.113.3', 6); // 3
  assert.deepEqual(control.admit('203.0.113.4'), { why: 'busy', key: 'smtp_max_clients' }, 'a fourth time from the same /24');
  fill('10.0.0.1', 7); // relay_networks: displaces 4
  fill('10.0.0.2', 8); // and 5
  assert.deepEqual(displaced, [1, 2, 3, 4, 5]);
});

test('anvil: per address and per unit; 0 = no limit; exceptions never counted', () => {
  const c = config({ smtp_client_message_rate_limit: '2', smtp_client_recipient_rate_limit: '0' });
  const anvil = new Anvil(c, (ip) => ip.startsWith('10.'));
  assert.equal(anvil.hit('198.51.100.1', 'message'), undefined);
  assert.equal(anvil.hit('198.51.100.1', 'message'), undefined);
  assert.deepEqual(anvil.hit('198.51.100.1', 'message'), {
    code: 452, status: '4.7.0', lines: ['Error: too much mail from your address, try again later'],
  });
  assert.equal(anvil.hit('198.51.100.2', 'message'), undefined, 'another address has its own count');
  for (let i = 0; i < 5; i++) assert.equal(anvil.hit('10.0.0.1', 'message'), undefined);
  for (let i = 0; i < 500; i++) assert.equal(anvil.hit('198.51.100.1', 'recipient'), undefined);
});
