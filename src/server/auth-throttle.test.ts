// The login throttle on a fake clock: delays that double and stop at the
// maximum, the address block answered without a check, the account block
// that spares addresses which never failed, the cap on checks in flight from
// one address, expiry after auth_block_time, IPv6 by /64, and the log lines.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { makeSandbox } from '../../test/helpers.ts';
import { AuthThrottle, type AuthAttempt, BLOCKED_TEXT, type Clock, clientKey, isBlocked } from './auth-throttle.ts';

const sb = makeSandbox();
fs.appendFileSync(sb.conf, 'auth_failure_delay = 1s\nauth_failure_delay_max = 8s\nauth_client_failures = 5\nauth_account_failures = 8\nauth_block_time = 10m\n');
const config = loadConfig({ file: sb.conf });
after(() => sb.cleanup());

/** Time moves only when someone sleeps; every sleep is recorded. */
function fakeClock(): Clock & { slept: number[]; t: number } {
  const c = {
    t: 1_000_000,
    slept: [] as number[],
    now: () => c.t,
    sleep: async (ms: number) => {
      c.slept.push(ms);
    },
  };
  return c;
}

const from = (client: string, user = 'bob'): AuthAttempt => ({ service: 'imap', client, user, method: 'LOGIN' });
const wrong = async () => undefined;
const right = async () => 'user' as const;

test('failures are answered after doubling delays, then the address is blocked without a check', async () => {
  const clock = fakeClock();
  const t = new AuthThrottle(clock);
  for (let i = 0; i < 5; i++) assert.equal(await t.attempt(config, from('192.0.2.1'), wrong), undefined);
  assert.deepEqual(clock.slept, [1000, 2000, 4000, 8000, 8000]);
  let checked = false;
  const r = await t.attempt(config, from('192.0.2.1', 'alice'), async () => ((checked = true), 'user'));
  assert.ok(isBlocked(r) && r.blocked === BLOCKED_TEXT);
  assert.equal(checked, false, 'a blocked address gets no password check, not even a right one');
  assert.equal(await t.attempt(config, from('192.0.2.2'), right), 'user', 'another address logs in');
  clock.t += 10 * 60_000 + 1;
  assert.equal(await t.attempt(config, from('192.0.2.1'), right), 'user', 'the block ends after auth_block_time');
  const log = fs.readFileSync(sb.log, 'utf8');
  assert.match(log, /auth failure: service=imap client=\[192\.0\.2\.1\] user=bob method=LOGIN reason=bad credentials, failures=1, delay=1s/);
  assert.match(log, /auth block: client=\[192\.0\.2\.1\] for=10m reason=5 failures/);
  assert.match(log, /auth failure: service=imap client=\[192\.0\.2\.1\] user=alice method=LOGIN reason=blocked \(address blocked/);
});

test('an account under attack is blocked only from the addresses that failed on it', async () => {
  const t = new AuthThrottle(fakeClock());
  // Eight addresses, one guess each: the account reaches auth_account_failures.
  for (let i = 1; i <= 8; i++) assert.equal(await t.attempt(config, from(`198.51.100.${i}`), wrong), undefined);
  const attacker = await t.attempt(config, from('198.51.100.3'), right);
  assert.ok(isBlocked(attacker), 'an address that failed on the account is refused, right password or not');
  assert.equal(await t.attempt(config, from('203.0.113.9'), right), 'user', 'the owner, from a clean address, gets in at once');
  assert.equal(await t.attempt(config, from('198.51.100.3', 'carol'), right), 'user', 'other accounts from that address are not blocked');
  assert.equal(await t.attempt(config, from('203.0.113.10'), wrong), undefined, 'a new address still gets its one guess');
  assert.ok(isBlocked(await t.attempt(config, from('203.0.113.10'), right)), 'and is blocked after it');
});

test('parallel attempts from one address are checked at most auth_client_failures at a time', async () => {
  const t = new AuthThrottle(fakeClock());
  let running = 0;
  let most = 0;
  let checks = 0;
  const slowWrong = async () => {
    checks++;
    most = Math.max(most, ++running);
    await new Promise((r) => setTimeout(r, 5));
    running--;
    return undefined;
  };
  const results = await Promise.all(Array.from({ length: 30 }, () => t.attempt(config, from('192.0.2.50'), slowWrong)));
  assert.ok(most <= 5, `at most 5 checks at once (saw ${most})`);
  assert.equal(checks, 5, 'no guess is checked past the block');
  assert.equal(results.filter(isBlocked).length, 25);
});

test('IPv6 clients are counted by /64; IPv4-mapped addresses as IPv4', async () => {
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2:0:0:0:0/64');
  assert.equal(clientKey('2001:db8::1'), '2001:db8:0:0:0:0:0:0/64');
  assert.equal(clientKey('2001:0db8:0000:0002::9'), clientKey('2001:db8:0:2:ffff::1'));
  const t = new AuthThrottle(fakeClock());
  for (let i = 0; i < 5; i++) await t.attempt(config, from(`2001:db8:1:2::${i + 1}`), wrong);
  assert.ok(isBlocked(await t.attempt(config, from('2001:db8:1:2:ffff::1'), right)));
  assert.equal(await t.attempt(config, from('2001:db8:1:3::1'), right), 'user');
  for (let i = 0; i < 5; i++) await t.attempt(config, from('::ffff:192.0.2.77'), wrong);
  assert.ok(isBlocked(await t.attempt(config, from('192.0.2.77'), right)));
});

test('a name cannot put spaces or a fake client= into the log line', async () => {
  const t = new AuthThrottle(fakeClock());
  await t.attempt(config, from('192.0.2.99', 'x client=[10.9.9.9]\r\nfoo'), wrong);
  const line = fs.readFileSync(sb.log, 'utf8').split('\n').find((l) => l.includes('client=[192.0.2.99]')) ?? '';
  assert.match(line, /user=x\?client=\[10\.9\.9\.9\]\?\?foo method=LOGIN/);
  assert.equal(line.match(/ client=\[/g)?.length, 1);
});
