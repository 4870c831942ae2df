// Reading mboxes: the shapes Postfix local(8), mutt, s-nail and mailtk write,
// the mboxo separator rule, lines that straddle read chunks, a 60 MB message
// in bounded memory, and refusal of symlinks and stale indexes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MailError } from '../message/status.ts';
import { makeEnv, sampleMessage } from './fixtures/env.ts';
import { appendToMbox, mboxPath, readMessageBytes, scanMbox, unquoteFrom, type MboxIndex } from './index.ts';

let dir: string;
let n = 0;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-scan-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function mbox(text: string | Buffer): string {
  const file = path.join(dir, `mbox${n++}`);
  fs.writeFileSync(file, text);
  return file;
}

async function bodies(file: string, idx: MboxIndex): Promise<string[]> {
  return Promise.all(idx.messages.map(async (m) => (await readMessageBytes(file, m)).toString()));
}

// As Postfix local(8) writes: two spaces before the date, X-Original-To, Delivered-To.
const POSTFIX =
  'From alice@example.org  Tue Nov  4 10:00:00 2025\n' +
  'Return-Path: <alice@example.org>\nX-Original-To: bob\nDelivered-To: bob@host\n' +
  'Subject: one\n\nHello\n>From the quoted line\n\n';
// As mutt saves: Content-Length and Lines, which mboxo readers ignore.
const MUTT =
  'From carol@example.org Wed Nov  5 11:00:00 2025\n' +
  'Subject: two\nStatus: RO\nContent-Length: 999\nLines: 3\n\nline\nFrom inside, not after a blank line\nend\n\n';
// As s-nail saves: Status and X-Status headers, a body with an empty last line.
const SNAIL =
  'From dave@example.org Thu Nov  6 12:00:00 2025\n' + 'Subject: three\nStatus: RO\nX-Status: A\n\nbody\n\n\n';

test('Postfix, mutt and s-nail messages in one file', async () => {
  const file = mbox(POSTFIX + MUTT + SNAIL);
  const idx = await scanMbox(file);
  assert.equal(idx.size, fs.statSync(file).size);
  assert.deepEqual(
    idx.messages.map((m) => m.fromLine),
    [
      'From alice@example.org  Tue Nov  4 10:00:00 2025',
      'From carol@example.org Wed Nov  5 11:00:00 2025',
      'From dave@example.org Thu Nov  6 12:00:00 2025',
    ],
  );
  const texts = await bodies(file, idx);
  assert.equal(texts[0], 'Return-Path: <alice@example.org>\nX-Original-To: bob\nDelivered-To: bob@host\nSubject: one\n\nHello\n>From the quoted line\n');
  assert.equal(texts[1], 'Subject: two\nStatus: RO\nContent-Length: 999\nLines: 3\n\nline\nFrom inside, not after a blank line\nend\n');
  assert.equal(texts[2], 'Subject: three\nStatus: RO\nX-Status: A\n\nbody\n\n'); // its own blank last line stays
  assert.equal(idx.messages[0].quoted, 1);
  assert.equal(idx.messages[1].quoted, 0);
  const m0 = idx.messages[0];
  const header = fs.readFileSync(file).subarray(m0.dataOffset, m0.dataOffset + m0.headerLength).toString();
  assert.equal(header, 'Return-Path: <alice@example.org>\nX-Original-To: bob\nDelivered-To: bob@host\nSubject: one\n\n');
  // The pieces tile the file: each message plus its one separating newline.
  const total = idx.messages.reduce((s, m) => s + m.length + 1, 0);
  assert.equal(total, idx.size);
});

test('an unquoted "From " line after a blank line starts a new message (mboxo)', async () => {
  const file = mbox('From a Tue Nov  4 10:00:00 2025\nSubject: x\n\nbody\n\nFrom the middle of a body\nmore\n');
  const idx = await scanMbox(file);
  assert.equal(idx.messages.length, 2);
  assert.equal(idx.messages[1].fromLine, 'From the middle of a body');
  assert.equal(idx.messages[1].headerLength, 5); // "more\n": all header, no blank line
});

test('ends without the final blank line, or without any newline', async () => {
  let idx = await scanMbox(mbox('From a Tue Nov  4 10:00:00 2025\nSubject: x\n\nbody\n'));
  assert.equal(idx.messages[0].length, idx.size);
  const file = mbox('From a Tue Nov  4 10:00:00 2025\nSubject: x\n\nno newline');
  idx = await scanMbox(file);
  assert.equal((await bodies(file, idx))[0], 'Subject: x\n\nno newline');
});

test('headers only, and an empty message', async () => {
  const file = mbox('From a Tue Nov  4 10:00:00 2025\nSubject: x\n\nFrom b Tue Nov  4 10:00:00 2025\n\n');
  const idx = await scanMbox(file);
  assert.equal(idx.messages.length, 2);
  assert.equal(idx.messages[0].headerLength, 'Subject: x\n'.length);
  assert.deepEqual(await bodies(file, idx), ['Subject: x\n', '']);
});

test('an empty file has no messages; a file that is not an mbox is an error', async () => {
  assert.deepEqual((await scanMbox(mbox(''))).messages, []);
  await assert.rejects(scanMbox(mbox('Subject: not an mbox\n\n')), (e: unknown) => e instanceof MailError && e.failure === 'mailbox-io');
});

test('unquoteFrom strips exactly one ">" from lines matching ^>+From  only (mboxrd)', () => {
  const q = Buffer.from('>From a\nx >From b\n>>From c\n>From\n>>>From e\n> From f\n>>x>From g\n>From d');
  assert.equal(unquoteFrom(q).toString(), 'From a\nx >From b\n>From c\n>From\n>>From e\n> From f\n>>x>From g\nFrom d');
  const plain = Buffer.from('nothing to do\n');
  assert.equal(unquoteFrom(plain), plain); // no copy when nothing changes
});

test('lines that straddle the 64 KiB read chunks, and a 200 KB line', async () => {
  const chunk = 64 << 10;
  const first = 'From a Tue Nov  4 10:00:00 2025\nSubject: 1\n\n';
  // Pad so that the second From_ line starts 10 bytes before the chunk boundary.
  const pad = 'p'.repeat(chunk - 10 - first.length - 2) + '\n';
  const second = 'From b-sender Tue Nov  4 10:00:00 2025\n>From quoted across nothing\nSubject: 2\n\n' + 'L'.repeat(200_000) + '\n';
  const file = mbox(first + pad + '\n' + second + '\n');
  const idx = await scanMbox(file);
  assert.equal(idx.messages.length, 2);
  assert.equal(idx.messages[1].offset, chunk - 10);
  assert.equal(idx.messages[1].fromLine, 'From b-sender Tue Nov  4 10:00:00 2025');
  assert.equal(idx.messages[1].quoted, 1);
  assert.equal((await bodies(file, idx))[1], second.slice(second.indexOf('\n') + 1));
});

test('a 60 MB message is indexed in bounded memory', { timeout: 60_000 }, async () => {
  const file = path.join(dir, 'huge');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, 'From big Tue Nov  4 10:00:00 2025\nSubject: big\n\n');
  const mb = Buffer.alloc(1 << 20, 'z');
  for (let i = 63; i < mb.length; i += 64) mb[i] = 0x0a; // 64-byte lines
  for (let i = 0; i < 60; i++) fs.writeSync(fd, mb);
  fs.writeSync(fd, '\nFrom small Tue Nov  4 10:00:00 2025\nSubject: small\n\nhi\n\n');
  fs.closeSync(fd);
  const before = process.memoryUsage();
  const idx = await scanMbox(file);
  const grown = process.memoryUsage();
  assert.equal(idx.messages.length, 2);
  assert.equal(idx.messages[0].length, 'From big Tue Nov  4 10:00:00 2025\nSubject: big\n\n'.length + 60 * (1 << 20));
  const extra = grown.arrayBuffers - before.arrayBuffers + (grown.heapUsed - before.heapUsed);
  assert.ok(extra < 16 << 20, `scan grew memory by ${extra} bytes`);
});

test('readMessageBytes notices a mailbox changed under its index', async () => {
  const file = mbox(POSTFIX + MUTT);
  const idx = await scanMbox(file);
  fs.writeFileSync(file, MUTT);
  await assert.rejects(readMessageBytes(file, idx.messages[1]), (e: unknown) => e instanceof MailError && e.failure === 'mailbox-io');
});

test('a symlinked mailbox is not read (a reader may be root)', async () => {
  const target = mbox(POSTFIX);
  const link = path.join(dir, 'link');
  fs.symlinkSync(target, link);
  await assert.rejects(scanMbox(link), (e: unknown) => e instanceof MailError && e.failure === 'mailbox-unsafe');
  await assert.rejects(scanMbox(path.join(dir, 'missing')), { code: 'ENOENT' });
});

test('round trip: what appendToMbox writes, scan and unquote give back', async () => {
  const e = makeEnv();
  try {
    const tricky = [
      Buffer.from('From: x\nSubject: a\n\nFrom here\n>From there\n>>From deeper\n\nFrom blank-preceded\n'),
      sampleMessage('plain'),
      Buffer.from('Subject: no end\n\nlast line'),
    ];
    await appendToMbox(e.config, e.user('carol'), tricky.map((data) => ({ sender: 's@x', recipient: 'carol', data })));
    const file = mboxPath(e.config, 'carol');
    const idx = await scanMbox(file);
    assert.equal(idx.messages.length, 3);
    const got = await Promise.all(idx.messages.map(async (m) => unquoteFrom(await readMessageBytes(file, m)).toString()));
    const prefix = 'Return-Path: <s@x>\nDelivered-To: carol\n';
    // mboxrd: every line comes back as it went in.
    assert.equal(got[0], prefix + 'From: x\nSubject: a\n\nFrom here\n>From there\n>>From deeper\n\nFrom blank-preceded\n');
    assert.equal(idx.messages[0].quoted, 4);
    assert.equal(got[1], prefix + sampleMessage('plain').toString());
    assert.equal(got[2], prefix + 'Subject: no end\n\nlast line\n');
  } finally {
    e.cleanup();
  }
});
