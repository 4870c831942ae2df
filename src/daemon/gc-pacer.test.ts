// The pacer collects once memory has grown 8 MB past what the last
// collection kept, follows a collection V8 made on its own, and checks often
// only while memory grows.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GcPacer } from './gc-pacer.ts';

const MB = 1 << 20;

test('a collection once memory grew 8 MB past the last one, checks every 50 ms while it grows and every second otherwise', () => {
  let mem = 50 * MB;
  let kept = 50 * MB;
  let collections = 0;
  const pacer = new GcPacer(() => {
    collections++;
    mem = kept;
  }, () => mem);
  assert.equal(pacer.step(), 1000, 'nothing grew');
  mem += 5 * MB;
  assert.equal(pacer.step(), 50, 'growing: check again soon');
  assert.equal(collections, 0, '5 MB is not worth a collection');
  mem += 4 * MB;
  kept = 52 * MB;
  pacer.step();
  assert.equal(collections, 1, '9 MB past the floor');
  assert.equal(pacer.step(), 1000, 'what the collection kept is the new floor, not growth');
  mem += 7 * MB;
  pacer.step();
  assert.equal(collections, 1, '7 MB past the new floor');
  // V8 collected on its own: the floor follows it down.
  mem = 45 * MB;
  pacer.step();
  mem += 9 * MB;
  pacer.step();
  assert.equal(collections, 2, '9 MB past the lower floor');
});
