// mboxrd: what the writers quote, the readers give back byte for byte, for
// any text; countQuoted counts what unquoting takes away; the From_
// line's sender goes to xtext and back.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countQuoted, fromLineDepth, isQuotedFromLine, quoteFromLines, unquoteFrom, xtextDecode, xtextEncode } from './mboxrd.ts';
import { toServed } from './served.ts';
import { rng } from './fixtures/reference.ts';

const PIECES = ['From ', 'From', '>', '>>', '\n', '\r\n', 'x', ' ', 'rom ', 'F'];

function randomText(r: () => number): Buffer {
  let s = '';
  for (let n = Math.floor(r() * 40); n > 0; n--) s += PIECES[Math.floor(r() * PIECES.length)];
  return Buffer.from(s);
}

test('quote then unquote gives back any text, byte for byte', () => {
  const r = rng(4242);
  for (let i = 0; i < 5000; i++) {
    const data = randomText(r);
    const stored = Buffer.concat(quoteFromLines(data));
    assert.deepEqual(unquoteFrom(stored), data, JSON.stringify(data.toString()));
    // The stored text has no line an mbox reader would take for a separator.
    assert.ok(!/(^|\n)From /.test(stored.toString()), JSON.stringify(stored.toString()));
    // What POP3 and IMAP serve is the original with CRLF line ends.
    const crlf = data.toString().replace(/\r?\n/g, '\r\n');
    assert.equal(toServed(stored).toString(), crlf);
    assert.equal(countQuoted(stored), stored.length - data.length);
  }
});

test('the line rule: ^>*From  quoted on write, ^>+From  unquoted on read', () => {
  const q = (s: string) => Buffer.concat(quoteFromLines(Buffer.from(s))).toString();
  assert.equal(q('From a\n>From b\n>>From c\n From d\nx From e\n>x>From f\nFrom'), '>From a\n>>From b\n>>>From c\n From d\nx From e\n>x>From f\nFrom');
  assert.equal(unquoteFrom(Buffer.from('>>From c\n>From\n> From')).toString(), '>From c\n>From\n> From');
  assert.equal(fromLineDepth(Buffer.from('From x'), 0, 6), 0);
  assert.equal(fromLineDepth(Buffer.from('>>From x'), 0, 8), 2);
  assert.equal(fromLineDepth(Buffer.from('>>Fro'), 0, 5), -1);
  assert.ok(isQuotedFromLine(Buffer.from('>From \n')));
  assert.ok(!isQuotedFromLine(Buffer.from('From x\n')));
  assert.ok(!isQuotedFromLine(Buffer.from('>From\n')));
});

test('xtext: the word is printable ASCII without spaces; an ASCII sender is itself, a UTF-8 one comes back', () => {
  for (const s of ['a@b.example', 'user+tag@x', 'a+b=c@x', 'bounce+12@x', 'SRS0=ab=cd@x']) assert.equal(xtextEncode(s), s, 'ASCII senders read the same to every tool');
  for (const s of ['jörg@bücher.example', '用户@例子.广告', '😀@x', 'x\u0080y', 'jörg+list=x@b.example']) {
    const word = xtextEncode(s);
    assert.match(word, /^[!-~]*$/, s);
    assert.equal(xtextDecode(word), s, s);
  }
  for (const s of ['"john doe"@x', 'tab\there']) assert.match(xtextEncode(s), /^[!-~]*$/, 'one printable word');
  assert.equal(xtextEncode('jörg@x'), 'j+C3+B6rg@x');
  assert.equal(xtextEncode('a b'), 'a+20b');
  // Raw senders others wrote: a '+' that is not an escape stays.
  assert.equal(xtextDecode('user+tag@x'), 'user+tag@x');
  assert.equal(xtextDecode('a+2b@x'), 'a+2b@x');
  assert.equal(xtextDecode('end+'), 'end+');
});
