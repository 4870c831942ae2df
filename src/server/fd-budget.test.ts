import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FdBudget, openFileLimit } from './fd-budget.ts';

test('tight once a new session would eat into the reserve; counted again, not guessed, near the limit', () => {
  let open = 50;
  let counts = 0;
  const b = new FdBudget(200, () => (counts++, open));
  assert.equal(b.reserve, 25);
  assert.equal(b.tight(), false);
  assert.equal(counts, 1);
  // Far from the limit: admissions are added up without reading /proc each time.
  for (let i = 0; i < 100; i++) assert.equal(b.tight(), false);
  assert.equal(counts, 1);
  assert.equal(b.inUse, 151);
});

test('near the limit each admission counts again; the reserve (an eighth, 16 to 128) is kept', () => {
  let open = 174;
  let counts = 0;
  const b = new FdBudget(200, () => (counts++, open));
  assert.equal(b.tight(), false, '174 open: one more leaves the 25 kept back');
  assert.equal(b.tight(), false, 'counted again: the session admitted before has closed meanwhile');
  assert.equal(counts, 2);
  open = 175;
  assert.equal(b.tight(), true, '175 open of 200 with 25 kept back');
  open = 100;
  assert.equal(b.tight(), true, 'a tight count is trusted for a moment: a flood is refused without a count each');
  assert.equal(counts, 3);
  assert.equal(new FdBudget(64).reserve, 16);
  assert.equal(new FdBudget(1 << 20).reserve, 128);
});

test('out of descriptors for the count itself: tight; no limit known: never tight', () => {
  assert.equal(new FdBudget(100, () => Infinity).tight(), true);
  assert.equal(new FdBudget(undefined, () => 1e9).tight(), false);
  assert.equal(new FdBudget(100, () => undefined).tight(), false, 'no /proc: no guess');
});

test('the limit of this process is read from /proc/self/limits', { skip: process.platform !== 'linux' && 'Linux only' }, () => {
  const n = openFileLimit();
  assert.ok(n === undefined || n > 0);
});
