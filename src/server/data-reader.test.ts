// DataReader: unstuffing, the one true end of DATA, and the faults that
// refuse a message, checked for every way the input can be cut into
// chunks (a network may deliver any byte boundary).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataReader } from './data-reader.ts';

interface Outcome {
  message: string;
  fault: string | undefined;
  rest: string | undefined;
}

/** Feed the input cut at the given positions. */
function feed(input: string, cuts: number[], max = 1_000_000): Outcome {
  const r = new DataReader(max);
  const buf = Buffer.from(input, 'latin1');
  let rest: Buffer | undefined;
  let from = 0;
  for (const at of [...cuts, buf.length]) {
    if (rest === undefined) rest = r.push(buf.subarray(from, at));
    else rest = Buffer.concat([rest, buf.subarray(from, at)]);
    from = at;
  }
  return { message: r.fault ? '' : r.message().toString('latin1'), fault: r.fault, rest: rest?.toString('latin1') };
}

/** The outcome is the same whole, cut once anywhere, and cut at every byte. */
function sameEverywhere(input: string, max?: number): Outcome {
  const whole = feed(input, [], max);
  for (let i = 1; i < input.length; i++) assert.deepEqual(feed(input, [i], max), whole, `cut at ${i}`);
  const bytes = Array.from({ length: input.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(feed(input, bytes, max), whole, 'cut at every byte');
  return whole;
}

test('a plain message ends at CRLF.CRLF; what follows is handed back', () => {
  const o = sameEverywhere('Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n');
  assert.deepEqual(o, { message: 'Subject: x\r\n\r\nbody\r\n', fault: undefined, rest: 'QUIT\r\n' });
});

test('an empty message: "." CRLF first', () => {
  assert.deepEqual(sameEverywhere('.\r\n'), { message: '', fault: undefined, rest: '' });
});

test('stuffing dots are removed, once, at line starts only', () => {
  const o = sameEverywhere('..\r\n...x\r\na.b\r\n.\r\n');
  assert.equal(o.message, '.\r\n..x\r\na.b\r\n');
  assert.equal(o.fault, undefined);
});

test('no end yet: undefined until the terminator comes', () => {
  const r = new DataReader(1000);
  assert.equal(r.push(Buffer.from('a\r\n.')), undefined);
  assert.equal(r.push(Buffer.from('\r')), undefined);
  assert.equal(r.push(Buffer.from('\nX'))?.toString(), 'X');
  assert.equal(r.message().toString(), 'a\r\n');
});

// The end-of-data look-alikes of the SMTP smuggling paper (SEC Consult, 2023).
const SMUGGLING = ['\n.\n', '\n.\r', '\r.\n', '\r.\r', '\n.\r\n', '\r.\r\n', '\r\n\x00.\r\n'];

for (const variant of SMUGGLING) {
  test(`smuggling ${JSON.stringify(variant)} does not end the message, and refuses it`, () => {
    const second = 'MAIL FROM:<evil@x.test>\r\nRCPT TO:<bob@mail.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n';
    const o = sameEverywhere(`Subject: first\r\n\r\nfirst${variant}${second}.\r\nQUIT\r\n`);
    assert.equal(o.rest, 'QUIT\r\n', 'only the real CRLF.CRLF ends it');
    assert.ok(o.fault === 'bare-newline' || o.fault === 'nul', `fault ${o.fault}`);
  });
}

test('bare LF and bare CR inside lines are faults', () => {
  assert.equal(sameEverywhere('a\nb\r\n.\r\n').fault, 'bare-newline');
  assert.equal(sameEverywhere('a\rb\r\n.\r\n').fault, 'bare-newline');
  assert.equal(sameEverywhere('a\r\r\n.\r\n').fault, 'bare-newline');
  assert.equal(sameEverywhere('a\r\n\r\r\n.\r\n').fault, 'bare-newline');
});

test('NUL is a fault', () => {
  assert.equal(sameEverywhere('a\x00b\r\n.\r\n').fault, 'nul');
});

test('a text line of 1000 octets with CRLF passes; 1001 is a fault; a stuffing dot is not counted', () => {
  assert.equal(sameEverywhere(`${'x'.repeat(998)}\r\n.\r\n`).fault, undefined);
  assert.equal(sameEverywhere(`${'x'.repeat(999)}\r\n.\r\n`).fault, 'long-line');
  assert.equal(sameEverywhere(`.${'.'.repeat(997)}x\r\n.\r\n`).fault, undefined);
});

test('past max_message_size: a fault, and nothing is kept', () => {
  const o = sameEverywhere('0123456789\r\n0123456789\r\n.\r\nNEXT', 20);
  assert.equal(o.fault, 'too-big');
  assert.equal(o.rest, 'NEXT');
});

test('a large message is kept byte for byte', () => {
  const lines = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? `.line ${i}` : `line ${i} ${'y'.repeat(i % 90)}`));
  const input = lines.map((l) => (l.startsWith('.') ? `.${l}` : l) + '\r\n').join('') + '.\r\n';
  const r = new DataReader(10_000_000);
  let rest: Buffer | undefined;
  const buf = Buffer.from(input);
  for (let i = 0; i < buf.length && rest === undefined; i += 1400) rest = r.push(buf.subarray(i, i + 1400));
  assert.equal(rest?.length, 0);
  assert.equal(r.message().toString(), lines.map((l) => l + '\r\n').join(''));
});
