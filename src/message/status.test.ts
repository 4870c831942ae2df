import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EX, FAILURES, MailError } from './status.ts';

test('every row: reply class matches status class, exit is a sysexits code', () => {
  const exits = new Set<number>(Object.values(EX));
  for (const [name, row] of Object.entries(FAILURES)) {
    assert.match(row.status, /^[245]\.\d{1,3}\.\d{1,3}$/, name);
    assert.equal(String(row.reply)[0], row.status[0], `${name}: ${row.reply} vs ${row.status}`);
    assert.ok(exits.has(row.exit), `${name}: exit ${row.exit}`);
  }
});

test('MailError carries the row and names file:line', () => {
  const e = new MailError('user-unknown', 'bob... User unknown', { file: '/etc/mail/aliases', line: 3 });
  assert.equal(e.reply, 550);
  assert.equal(e.status, '5.1.1');
  assert.equal(e.exit, 67);
  assert.equal(e.temporary, false);
  assert.equal(e.message, '/etc/mail/aliases:3: bob... User unknown');
  assert.equal(new MailError('queue-write', 'x').temporary, true);
});
