// The wire form of a message body: CRLF, dot-stuffing, bare CR, chunking,
// and the size computed without building the copy.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hasEightBit, wireChunks, wireSize } from './smtp-client-data.ts';

const wire = (s: string, chunk?: number) => Buffer.concat([...wireChunks(Buffer.from(s, 'latin1'), chunk)]).toString('latin1');

test('LF becomes CRLF; existing CRLF is kept; a missing last newline is added', () => {
  assert.equal(wire('a\nb\n'), 'a\r\nb\r\n');
  assert.equal(wire('a\r\nb'), 'a\r\nb\r\n');
  assert.equal(wire(''), '');
  assert.equal(wire('\n\n'), '\r\n\r\n');
});

test('a leading dot is doubled on every line, only at line start', () => {
  assert.equal(wire('.\n..\n.x\na.b\n'), '..\r\n...\r\n..x\r\na.b\r\n');
  assert.equal(wire('x\r\n.\r\n'), 'x\r\n..\r\n', 'a line holding only a dot never ends the data early');
});

test('a bare CR is a line end, so "\\r.\\r" can never end the data (SMTP smuggling)', () => {
  assert.equal(wire('a\rb\n'), 'a\r\nb\r\n');
  assert.equal(wire('x\r.\r\ny\n'), 'x\r\n..\r\ny\r\n');
  assert.equal(wire('end\r'), 'end\r\n');
  assert.ok(!wire('a\r.\rb\n.\n').includes('\r\n.\r\n'));
});

test('chunking does not change the bytes; wireSize agrees', () => {
  const text = Array.from({ length: 500 }, (_, i) => (i % 7 === 0 ? '.dot line ' : 'line ') + 'x'.repeat(i % 90)).join('\n');
  const whole = wire(text, 1 << 20);
  for (const size of [1, 7, 100, 4096]) assert.equal(wire(text, size), whole);
  assert.equal(wireSize(Buffer.from(text)), Buffer.byteLength(whole, 'latin1'));
});

test('8-bit detection', () => {
  assert.equal(hasEightBit(Buffer.from('plain\n')), false);
  assert.equal(hasEightBit(Buffer.from('caf\u00e9\n', 'utf8')), true);
});
