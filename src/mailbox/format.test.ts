// The stored form of a message, byte for byte: From_ line, prepended headers,
// mboxrd quoting (headers included), final newline, separating blank line.
// Pure functions, a fixed date: no files, no clock.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asctime, formatMessage, fromLine, quoteFromLines } from './format.ts';

const when = new Date(2025, 10, 2, 7, 3, 4); // local time: Sun Nov  2 07:03:04 2025

function render(sender: string, recipient: string, data: string): string {
  return Buffer.concat(formatMessage({ sender, recipient, data: Buffer.from(data) }, when)).toString();
}

test('asctime pads the day with a space and the time with zeros', () => {
  assert.equal(asctime(when), 'Sun Nov  2 07:03:04 2025');
  assert.equal(asctime(new Date(2024, 0, 15, 23, 59, 9)), 'Mon Jan 15 23:59:09 2024');
});

test('From_ line: sender, one space, asctime; the null sender is MAILER-DAEMON', () => {
  assert.equal(fromLine('a@example.org', when), 'From a@example.org Sun Nov  2 07:03:04 2025\n');
  assert.equal(fromLine('', when), 'From MAILER-DAEMON Sun Nov  2 07:03:04 2025\n');
  assert.equal(fromLine('"john doe"@x.org', when), 'From "john+20doe"@x.org Sun Nov  2 07:03:04 2025\n');
});

test('From_ line: the sender as RFC 3461 xtext, so the line stays ASCII and one word', () => {
  assert.equal(fromLine('jörg@bücher.example', when), 'From j+C3+B6rg@b+C3+BCcher.example Sun Nov  2 07:03:04 2025\n');
  assert.equal(fromLine('a+b=c@x', when), 'From a+b=c@x Sun Nov  2 07:03:04 2025\n', 'an ASCII sender as it is');
  assert.equal(fromLine('tab\there', when), 'From tab+09here Sun Nov  2 07:03:04 2025\n');
  // Return-Path: keeps the sender as it is.
  const out = render('jörg@bücher.example', 'b', 'Subject: s\n\nx\n');
  assert.ok(out.includes('\nReturn-Path: <jörg@bücher.example>\n'));
  assert.ok(/^[\x20-\x7e]*\n/.test(out));
});

test('a whole message, byte-exact', () => {
  const out = render('a@example.org', 'bob@test.example', 'Subject: hi\n\nbody\n');
  assert.equal(
    out,
    'From a@example.org Sun Nov  2 07:03:04 2025\n' +
      'Return-Path: <a@example.org>\n' +
      'Delivered-To: bob@test.example\n' +
      'Subject: hi\n\nbody\n' +
      '\n',
  );
});

test('null sender gets Return-Path: <>', () => {
  const out = render('', 'bob', 'Subject: bounce\n\nx\n');
  assert.ok(out.startsWith('From MAILER-DAEMON Sun Nov  2 07:03:04 2025\nReturn-Path: <>\nDelivered-To: bob\n'));
});

test('every line matching ^>*From  gets one more ">", in headers and body, and only those', () => {
  const data = 'From here: header\nSubject: s\n\nFrom the start\nnot From here\n>From already\n>>From twice\n> From not\nFrom\nFrom \n>From';
  const out = render('a', 'b', data);
  const body = out.split('\n').slice(3).join('\n');
  assert.equal(body, '>From here: header\nSubject: s\n\n>From the start\nnot From here\n>>From already\n>>>From twice\n> From not\nFrom\n>From \n>From\n\n');
});

test('data without a final newline gets one, then the blank line', () => {
  assert.ok(render('a', 'b', 'Subject: s\n\nno newline').endsWith('\n\nno newline\n\n'));
  assert.ok(render('a', 'b', '').endsWith('Delivered-To: b\n\n'));
});

test('quoting copies nothing: slices share the caller buffer', () => {
  const data = Buffer.from('a\nFrom b\nc\n');
  const pieces = quoteFromLines(data);
  assert.equal(Buffer.concat(pieces).toString(), 'a\n>From b\nc\n');
  assert.equal(pieces[0].buffer, data.buffer);
});

test('a line break in the envelope is a bug, not a header', () => {
  assert.throws(() => formatMessage({ sender: 'a\nX-Evil: 1', recipient: 'b', data: Buffer.alloc(0) }, when));
  assert.throws(() => formatMessage({ sender: 'a', recipient: 'b\r\n', data: Buffer.alloc(0) }, when));
});
