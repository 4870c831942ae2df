// Command parsing: paths as sendmail accepts them, ESMTP parameters of
// SIZE, BODY, SMTPUTF8 and DSN (RFC 3461 xtext), and their refusals.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeXtext, isError, mailParams, parseCommand, parsePathArg, rcptParams } from './command.ts';

test('verbs are case-insensitive; the argument keeps its case', () => {
  assert.deepEqual(parseCommand('mail from:<A@B>'), { verb: 'MAIL', arg: 'from:<A@B>' });
  assert.deepEqual(parseCommand('  NOOP  '), { verb: 'NOOP', arg: '' });
});

test('paths with and without <>, a space after the colon, a source route', () => {
  const ok = (arg: string, kw: 'FROM' | 'TO' = 'FROM') => {
    const p = parsePathArg(arg, kw);
    assert.ok(!isError(p), JSON.stringify(p));
    return p;
  };
  assert.equal(ok('FROM:tsnien@linux-1.cu.edu.tw').address, 'tsnien@linux-1.cu.edu.tw');
  assert.equal(ok('FROM: <a@b.test>').given, '<a@b.test>');
  assert.equal(ok('FROM:<>').address, '');
  assert.equal(ok('TO:<@relay.test:u@c.test>', 'TO').address, 'u@c.test');
  assert.equal(ok('TO:<"a>b"@c.test>', 'TO').address, '"a>b"@c.test');
  assert.deepEqual([...ok('FROM:<a@b.test> size=10 SMTPUTF8').params], [['SIZE', '10'], ['SMTPUTF8', true]]);
});

test('bad paths', () => {
  for (const arg of ['FROM <a@b>', 'FROM:', 'FROM:<a@b', 'FROM:<a\x01@b>', 'FROM:<a@b> X=1 X=2']) {
    assert.ok(isError(parsePathArg(arg, 'FROM')), arg);
  }
});

test('xtext', () => {
  assert.equal(decodeXtext('a+2Bb+3Dc'), 'a+b=c');
  assert.equal(decodeXtext('a+2b'), undefined);
  assert.equal(decodeXtext('a=b'), undefined);
});

test('MAIL parameters', () => {
  const p = (s: Record<string, string | true>, max = 1000) => mailParams(new Map(Object.entries(s)), max);
  assert.deepEqual(p({ SIZE: '10', BODY: '8bitmime', RET: 'hdrs', ENVID: 'QQ+2B1', SMTPUTF8: true }), {
    smtputf8: true,
    size: 10,
    body: '8BITMIME',
    ret: 'hdrs',
    envid: 'QQ+1',
  });
  const big = p({ SIZE: '1001' });
  assert.ok(isError(big) && big.error.code === 552 && big.error.status === '5.3.4');
  assert.ok(isError(p({ SIZE: 'x' })));
  assert.ok(isError(p({ ENVID: 'x'.repeat(101) })));
  assert.ok(isError(p({ ENVID: 'a+0Ab' })), 'a control character in ENVID');
  const unknown = p({ XFOO: true });
  assert.ok(isError(unknown) && unknown.error.code === 555);
});

test('RCPT parameters', () => {
  const p = (s: Record<string, string | true>) => rcptParams(new Map(Object.entries(s)));
  assert.deepEqual(p({ NOTIFY: 'success,delay', ORCPT: 'rfc822;Bob+40x.test' }), { notify: 'SUCCESS,DELAY', orcpt: 'rfc822;Bob@x.test' });
  assert.deepEqual(p({ NOTIFY: 'NEVER' }), { notify: 'NEVER' });
  const bads: Array<Record<string, string>> = [{ NOTIFY: 'NEVER,DELAY' }, { NOTIFY: 'SUCCESS,SUCCESS' }, { NOTIFY: 'SOMETIMES' }, { ORCPT: 'x' }, { ORCPT: 'rfc822;a+0Db' }];
  for (const bad of bads) {
    assert.ok(isError(p(bad)), JSON.stringify(bad));
  }
});
