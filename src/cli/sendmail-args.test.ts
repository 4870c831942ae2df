import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSendmailArgs, splitRecipientArg } from './sendmail-args.ts';

test('Debian cron: -FCronDaemon -i -B8BITMIME -oem root', () => {
  const o = parseSendmailArgs(['-FCronDaemon', '-i', '-B8BITMIME', '-oem', 'root']);
  assert.equal(o.fullName, 'CronDaemon');
  assert.equal(o.ignoreDots, true);
  assert.equal(o.bodyType, '8BITMIME');
  assert.deepEqual(o.recipients, ['root']);
  assert.equal(o.mode, 'deliver');
});

test('PHP mail(): -t -i', () => {
  const o = parseSendmailArgs(['-t', '-i']);
  assert.equal(o.extractRecipients, true);
  assert.equal(o.ignoreDots, true);
  assert.deepEqual(o.recipients, []);
});

test('mutt: -oem -oi -- addr', () => {
  const o = parseSendmailArgs(['-oem', '-oi', '--', '-weird@x.test', 'b@x.test']);
  assert.equal(o.ignoreDots, true);
  assert.deepEqual(o.recipients, ['-weird@x.test', 'b@x.test']);
});

test('clustered and separate arguments', () => {
  assert.equal(parseSendmailArgs(['-fme@x.test', 'u']).sender, 'me@x.test');
  assert.equal(parseSendmailArgs(['-f', 'me@x.test', 'u']).sender, 'me@x.test');
  assert.equal(parseSendmailArgs(['-f', '<>', 'u']).sender, '');
  assert.equal(parseSendmailArgs(['-r', '<me@x.test>', 'u']).sender, 'me@x.test');
  assert.equal(parseSendmailArgs(['-tiv']).verbose, true);
  assert.equal(parseSendmailArgs(['-odq', 'u']).deliveryMode, 'queue');
  assert.equal(parseSendmailArgs(['-odi', 'u']).deliveryMode, 'interactive');
  assert.equal(parseSendmailArgs(['-odb', 'u']).deliveryMode, 'background');
});

test('modes and queue flags', () => {
  assert.equal(parseSendmailArgs(['-bp']).mode, 'print-queue');
  assert.equal(parseSendmailArgs([], 'mailq').mode, 'print-queue');
  assert.equal(parseSendmailArgs([], 'newaliases').mode, 'init-aliases');
  const d = parseSendmailArgs(['-bd', '-q20m']);
  assert.equal(d.mode, 'daemon');
  assert.equal(d.queueInterval, '20m');
  const q = parseSendmailArgs(['-q']);
  assert.equal(q.queueRun, true);
  assert.equal(q.queueInterval, undefined);
  const f = parseSendmailArgs(['-qRbob', '-q!Sroot', '-qIabc']);
  assert.deepEqual(f.queueFilters, [
    { kind: 'R', negate: false, substr: 'bob' },
    { kind: 'S', negate: true, substr: 'root' },
    { kind: 'I', negate: false, substr: 'abc' },
  ]);
  assert.equal(parseSendmailArgs(['-q1h30m']).queueInterval, '1h30m');
});

test('DSN options and overrides', () => {
  const o = parseSendmailArgs(['-N', 'success,failure', '-R', 'hdrs', '-V', 'env1', '-O', 'queue_dir=/tmp/q', '-C', '/x.conf', 'u']);
  assert.equal(o.notify, 'SUCCESS,FAILURE');
  assert.equal(o.ret, 'hdrs');
  assert.equal(o.envid, 'env1');
  assert.deepEqual(o.overrides, { queue_dir: '/tmp/q' });
  assert.equal(o.configFile, '/x.conf');
  assert.equal(parseSendmailArgs(['-O', 'DeliveryMode=q', 'u']).deliveryMode, 'queue');
});

test('ignored sendmail flags are accepted; unknown ones are usage errors', () => {
  assert.doesNotThrow(() => parseSendmailArgs(['-m', '-s', '-G', '-c', '-Ac', '-d0.1', '-L', 'tag', '-X', '/dev/null', 'u']));
  assert.throws(() => parseSendmailArgs(['-Z', 'u']), /illegal option -- Z/);
  assert.throws(() => parseSendmailArgs(['-f']), /requires an argument -- f/);
  assert.throws(() => parseSendmailArgs(['-bz']), /-bz: mode not supported/);
});

test('getopt stops at the first non-option, as Postfix on Linux', () => {
  const o = parseSendmailArgs(['bob', '-f', 'x']);
  assert.equal(o.sender, undefined);
  assert.deepEqual(o.recipients, ['bob', '-f', 'x']);
});

test('recipient arguments split on commas outside quotes', () => {
  assert.deepEqual(splitRecipientArg('a@x, b@y'), ['a@x', 'b@y']);
  assert.deepEqual(splitRecipientArg('"Doe, J" <j@x>'), ['"Doe, J" <j@x>']);
});
