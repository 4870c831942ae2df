// The access file: parsing (errors name file:line), and lookups in
// sendmail's order: full address, domain and parents, user@; IP, prefixes,
// CIDRs, host name and parents; tagged keys before untagged ones.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessTable, ruleName } from './access.ts';

const FILE = '/etc/mail/access';

function table(text: string): AccessTable {
  return AccessTable.parse(text, FILE);
}

test('From: and To: keys: address, domain and its parents, user@', () => {
  const t = table('From:bad@x.test REJECT\nFrom:spam.test REJECT\nFrom:postmaster@ OK\nTo:partner.test RELAY\n');
  assert.equal(t.from('Bad@X.test')?.action.kind, 'REJECT');
  assert.equal(t.from('a@deep.sub.spam.test')?.key, 'From:spam.test');
  assert.equal(t.from('postmaster@anywhere.test')?.action.kind, 'OK');
  assert.equal(t.from('good@x.test'), undefined);
  assert.equal(t.to('joe@partner.test')?.action.kind, 'RELAY');
  assert.equal(t.to('joe@notpartner.test'), undefined);
  assert.equal(t.from('')?.key, undefined);
});

test('the null sender is "<>"', () => {
  assert.equal(table('From:<> REJECT\n').from('')?.action.kind, 'REJECT');
});

test('Connect: exact IP, octet prefixes, CIDRs, IPv6 groups, host names', () => {
  const t = table(
    [
      'Connect:10.1 RELAY',
      'Connect:10.1.2.3 REJECT',
      'Connect:192.168.0.0/16 DISCARD',
      'Connect:IPv6:2001:db8 OK',
      'Connect:IPv6:2001:DB8::1 REJECT',
      'Connect:friendly.test RELAY',
    ].join('\n'),
  );
  assert.equal(t.connect('10.1.2.3')?.action.kind, 'REJECT');
  assert.equal(t.connect('10.1.9.9')?.action.kind, 'RELAY');
  assert.equal(t.connect('::ffff:10.1.9.9')?.action.kind, 'RELAY');
  assert.equal(t.connect('10.2.0.1'), undefined);
  assert.equal(t.connect('192.168.44.5')?.action.kind, 'DISCARD');
  assert.equal(t.connect('2001:db8::1')?.action.kind, 'REJECT');
  assert.equal(t.connect('2001:db8:0:0:0:0:0:2')?.action.kind, 'OK');
  assert.equal(t.connect('203.0.113.9', 'mx.friendly.test')?.action.kind, 'RELAY');
  assert.equal(t.connect('203.0.113.9'), undefined);
});

test('untagged keys apply to every kind, after the tagged ones', () => {
  const t = table('127.0.0.1 RELAY\nexample.test REJECT\nFrom:ok@example.test OK\n');
  assert.equal(t.connect('127.0.0.1')?.action.kind, 'RELAY');
  assert.equal(t.from('x@example.test')?.action.kind, 'REJECT');
  assert.equal(t.from('ok@example.test')?.action.kind, 'OK');
  assert.equal(t.to('y@example.test')?.action.kind, 'REJECT');
});

test('ERROR takes both codes, in either order, and checks they agree', () => {
  const t = table('From:a.test ERROR:5.7.26:550 Go away\nFrom:b.test ERROR:"451 4.7.1 Try later"\n');
  const a = t.from('x@a.test')?.action;
  assert.deepEqual(a, { kind: 'ERROR', reply: { code: 550, status: '5.7.26', lines: ['Go away'] } });
  const b = t.from('x@b.test')?.action;
  assert.deepEqual(b, { kind: 'ERROR', reply: { code: 451, status: '4.7.1', lines: ['Try later'] } });
});

test('errors name the file and line, and what to write instead', () => {
  assert.throws(() => table('# ok\nFrom:x.test ERROR:550 no enhanced code\n'), /\/etc\/mail\/access:2: ERROR needs a reply code and an enhanced status code/);
  assert.throws(() => table('From:x.test ERROR:5.7.1:450 mixed\n'), /access:1: ERROR: reply 450 and status 5.7.1 disagree/);
  assert.throws(() => table('\n\nFrom:x.test MAYBE\n'), /access:3: unknown action "MAYBE"/);
  assert.throws(() => table('Spam:x.test REJECT\n'), /access:1: unknown tag/);
  assert.throws(() => table('Connect:10.0.0.0/33 REJECT\n'), /access:1: bad network/);
  assert.throws(() => table('lonely\n'), /access:1: expected "key value"/);
});

test('a rule names where it came from', () => {
  const rule = table('\n# comment\nTo:x.test REJECT\n').to('a@x.test');
  assert.equal(rule && ruleName(rule), '/etc/mail/access:3');
});

test('no file: an empty table', () => {
  assert.equal(AccessTable.load('/nonexistent/access').from('a@b.test'), undefined);
});
