// The one mbox scanner: the shapes Postfix local(8), mutt, s-nail and mailtk
// write, the mboxo separator rule, lines that straddle read windows, a 60 MB
// message (and a 50 MB line) in bounded memory, refusal of symlinks and stale
// indexes; and on random mboxes, at every window size and from every message
// boundary, exactly what a plain line-by-line reading of the rules gives
// (index, header blocks, line counts, served sizes, From_ dates).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { MailError } from '../message/status.ts';
import { makeEnv, sampleMessage } from './fixtures/env.ts';
import { appendToMbox, mboxPath, readMessageBytes, scanMbox, scanMboxHeaders, unquoteFrom, type MboxIndex } from './index.ts';
import { fromLineDate, readerOf, scanRange, type ScannedMessage, type ScanOptions } from './scan.ts';
import { ServedConverter } from './served.ts';
import { rng, servedLines } from './fixtures/reference.ts';

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

test('a 50 MB line is indexed in bounded memory, served size and all', { timeout: 60_000 }, async () => {
  const file = path.join(dir, 'longline');
  const fd = fs.openSync(file, 'w');
  fs.writeSync(fd, 'From big Tue Nov  4 10:00:00 2025\nSubject: big\n\n');
  const mb = Buffer.alloc(1 << 20, 'z');
  for (let i = 0; i < 50; i++) fs.writeSync(fd, mb);
  fs.writeSync(fd, '\n\nFrom small Tue Nov  4 10:00:00 2025\nSubject: small\n\nhi\n\n');
  fs.closeSync(fd);
  const before = process.memoryUsage();
  const found: ScannedMessage[] = [];
  const fh = await fs.promises.open(file);
  try {
    await scanRange(readerOf(fh), file, 0, (await fh.stat()).size, { headers: true, lines: true, served: true }, (m) => found.push({ ...m, header: Buffer.from(m.header) }));
  } finally {
    await fh.close();
  }
  const grown = process.memoryUsage();
  assert.equal(found.length, 2);
  assert.equal(found[0].size, 'Subject: big\r\n\r\n'.length + 50 * (1 << 20) + 2);
  assert.equal(found[0].lines, 5);
  assert.equal(found[1].header.toString(), 'Subject: small\n\n');
  const extra = grown.arrayBuffers - before.arrayBuffers + (grown.heapUsed - before.heapUsed);
  assert.ok(extra < 16 << 20, `scan grew memory by ${extra} bytes`);
});

// ------------------------------------------------------------ against a plain reading of the rules

const PIECES = [
  'From a@b Tue Nov 14 22:13:38 2023\n', 'Subject: x\n', 'From: y\n', '\n', '\n', 'body\n', '>From quoted\n', 'From inside\n',
  'From ', 'Fro', '\r\n', 'X-Long: ' + 'z'.repeat(1500) + '\n', 'Status: RO\n', 'x-status : A\r\n', ' folded\n', '\tfolded\n',
  '>>From two\n', '>>>From three\r\n', '>', '>>', '> From', '\n\n', 'Content-Length: 12\n', 'X-UID: 3\n', 'X-Subject: shown\n',
  's' + ' '.repeat(70) + ': long name\n', 'From ' + 'y'.repeat(994) + '\r\n', 'From ' + 'y'.repeat(1100) + '\n', 'Status' + ' '.repeat(30) + ': padded\n', 'X-UID' + ' '.repeat(1000) + ': too far\n', 'From b@c Wed Nov 15 09:00:00 +0100 2023\n', '\n\r\n', 'é\n',
];

function randomMbox(r: () => number): string {
  let s = 'From first@x Mon Jan  1 00:00:00 2024\n';
  const n = Math.floor(r() * 60);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  if (r() < 0.5) s += 'tail without newline';
  return s;
}

/** The file's lines, each with its LF (the last one may have none), and where each begins. */
function linesOf(data: Buffer): Array<{ at: number; text: string }> {
  const out: Array<{ at: number; text: string }> = [];
  for (let at = 0; at < data.length; ) {
    const nl = data.indexOf(0x0a, at);
    const end = nl < 0 ? data.length : nl + 1;
    out.push({ at, text: data.toString('latin1', at, end) });
    at = end;
  }
  return out;
}

/** What the scan should find, read line by line from the rules in scan.ts's header comment. */
function reference(data: Buffer, start = 0): ScannedMessage[] {
  const lines = linesOf(data).filter((l) => l.at >= start);
  const froms: number[] = [];
  lines.forEach((l, i) => {
    if (l.text.startsWith('From ') && (i === 0 || lines[i - 1].text === '\n')) froms.push(i);
  });
  return froms.map((fi, n) => {
    const next = n + 1 < froms.length ? froms[n + 1] : lines.length;
    let content = lines.slice(fi + 1, next);
    const offset = lines[fi].at;
    const nextAt = next < lines.length ? lines[next].at : data.length;
    if (content.length > 0 && content[content.length - 1].text === '\n') content = content.slice(0, -1);
    const dataOffset = offset + Buffer.byteLength(lines[fi].text, 'latin1');
    const end = content.length ? content[content.length - 1].at + content[content.length - 1].text.length : dataOffset;
    let h = content.findIndex((l) => l.text === '\n' || l.text === '\r\n');
    const headerLines = h < 0 ? content : content.slice(0, h + 1);
    const bodyLines = h < 0 ? [] : content.slice(h + 1);
    const headerLength = headerLines.reduce((s, l) => s + l.text.length, 0);
    const headerServed = servedLines(headerLines.map((l) => l.text), true);
    const size = headerServed.length + servedLines(bodyLines.map((l) => l.text), false).length;
    const fromLine = data.subarray(offset, Math.min(dataOffset, offset + 1000)).toString('utf8').replace(/\r?\n$/, '');
    return {
      offset, length: end - offset, dataOffset, headerLength, fromLine,
      quoted: content.filter((l) => /^>+From /.test(l.text)).length,
      fromLen: dataOffset - offset,
      header: data.subarray(dataOffset, dataOffset + headerLength),
      lines: data.subarray(offset, nextAt).toString('latin1').split('\n').length - 1,
      size, headerSize: headerServed.length, internalDate: fromLineDate(fromLine),
      deepQuoted: bodyLines.filter((l) => /^>>+From /.test(l.text)).length,
    };
  });
}

async function scanAll(file: string, start: number, opts: ScanOptions): Promise<ScannedMessage[]> {
  const got: ScannedMessage[] = [];
  const fh = await fs.promises.open(file);
  try {
    await scanRange(readerOf(fh, (opts.chunkSize ?? 1 << 20) < 1 << 20), file, start, (await fh.stat()).size, opts, (m) => got.push({ ...m, header: Buffer.from(m.header) }));
  } finally {
    await fh.close();
  }
  return got;
}

/** The served bytes of a message made by ServedConverter.push in pieces of `step`, header then body. */
function produce(data: Buffer, m: ScannedMessage, step: number): { header: number; all: number } {
  const c = new ServedConverter({ header: true });
  const out: Buffer[] = [];
  const feed = (from: number, to: number) => {
    for (let p = from; p < to; p += step) out.push(c.push(data, p, Math.min(to, p + step)));
  };
  feed(m.dataOffset, m.dataOffset + m.headerLength);
  const header = out.reduce((s, b) => s + b.length, 0);
  c.body();
  feed(m.dataOffset + m.headerLength, m.offset + m.length);
  out.push(c.end());
  const all = out.reduce((s, b) => s + b.length, 0);
  // A message that is all header: what a short last line held back is header too.
  return { header: m.dataOffset + m.headerLength === m.offset + m.length ? all : header, all };
}

test('the one scanner agrees with a line-by-line reading, at every window size and from every boundary', async () => {
  const r = rng(12345);
  for (let round = 0; round < 120; round++) {
    const file = mbox(randomMbox(r));
    const data = fs.readFileSync(file);
    const want = reference(data);
    for (const chunkSize of [16, 23, 64, 1 << 20]) {
      const got = await scanAll(file, 0, { chunkSize, headers: true, lines: true, served: true });
      if (process.env.SCAN_DEBUG) for (let i = 0; i < Math.max(got.length, want.length); i++) for (const k of Object.keys(want[i] ?? got[i])) {
        const a = (got[i] as any)?.[k], b = (want[i] as any)?.[k];
        if (!(Buffer.isBuffer(a) ? a.equals(b) : Object.is(a, b))) console.log(JSON.stringify({ round, chunkSize, i, k, got: String(a), want: String(b), text: data.toString('latin1', want[i]?.offset ?? 0, (want[i]?.offset ?? 0) + (want[i]?.length ?? 0)) }));
      }
      assert.deepEqual(got, want, `round ${round}, window ${chunkSize}`);
    }
    // Resumed at a boundary (a delivery): the messages from there on, the same.
    for (const [i, m] of want.entries()) {
      if (i === 0 || round % 5 !== 0) continue;
      assert.deepEqual(await scanAll(file, m.offset, { chunkSize: 64, headers: true, lines: true, served: true }), reference(data, m.offset), `round ${round} from ${m.offset}`);
    }
    // The size counted is the size of the bytes the converter makes, header and all.
    for (const m of want) {
      for (const step of round % 10 === 0 ? [1, 7, 1 << 20] : [7, 1 << 20]) {
        const made = produce(data, m, step);
        assert.equal(made.all, m.size, `round ${round}, message at ${m.offset}, pieces of ${step}`);
        assert.equal(made.header, m.headerSize, `round ${round}, header at ${m.offset}, pieces of ${step}`);
      }
    }
    const summary = await scanMboxHeaders(file, { chunkSize: 23 });
    assert.deepEqual(summary.headers, want.map((m) => m.header));
    assert.deepEqual(summary.lines, want.map((m) => m.lines));
    assert.deepEqual((await scanMbox(file)).messages, want.map((m) => ({ offset: m.offset, length: m.length, dataOffset: m.dataOffset, headerLength: m.headerLength, fromLine: m.fromLine, quoted: m.quoted })));
  }
});

test('a file or a resumed range that does not begin with "From " is refused', async () => {
  await assert.rejects(scanMboxHeaders(mbox('Subject: no From_ line\n\nbody\n')), /not an mbox/);
  await assert.rejects(scanMbox(mbox('From')), /not an mbox/);
  const file = mbox('From a Tue Nov  4 10:00:00 2025\nSubject: x\n\nbody\n');
  await assert.rejects(scanAll(file, 5, { served: true }), /no "From " line at offset 5, where the last scan ended/);
});
