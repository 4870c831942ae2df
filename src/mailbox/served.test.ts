// The stored-to-served converter: counting gives the length of what pushing
// gives, for any text cut into any pieces, in a header (HIDDEN fields left
// out) and in a body; and for every message of the corpus (test/corpus),
// delivered by the real writer, the size the folder scan promises is the
// size of the bytes made for it, header and body, as POP3 and IMAP send them.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { makeEnv } from './fixtures/env.ts';
import { visibleHeader } from './folder-flags.ts';
import { scanFolder, type ScannedMessage } from './folder-scan.ts';
import { appendToMbox, mboxPath } from './index.ts';
import { ServedConverter, servedHeader, toServed } from './served.ts';
import { rng, servedLines } from './fixtures/reference.ts';

const PIECES = ['From ', '>', '>>', '\n', '\r\n', '\r', 'x', ' ', '\t', 'Status: RO', 'X-Status', ':', 'Subject: s', 'content-length ', 'S', 'x-uid', ' '.repeat(300)];

function randomText(r: () => number): Buffer {
  let s = '';
  for (let n = Math.floor(r() * 50); n > 0; n--) s += PIECES[Math.floor(r() * PIECES.length)];
  return Buffer.from(s, 'latin1');
}

/** The served form, line by line, as served.ts's header comment states it. */
function reference(text: string, header: boolean): string {
  return servedLines(text.split(/(?<=\n)/).filter((l) => l !== ''), header);
}

/** Cut `data` at random places and run it through one converter, pushing or counting. */
function run(data: Buffer, header: boolean, r: () => number, counting: boolean): { bytes: Buffer; counted: number } {
  const c = new ServedConverter({ header });
  const out: Buffer[] = [];
  let counted = 0;
  for (let p = 0; p < data.length; ) {
    const q = Math.min(data.length, p + 1 + Math.floor(r() * 8));
    if (counting) counted += c.count(data, p, q);
    else out.push(c.push(data, p, q));
    p = q;
  }
  if (counting) counted += c.endCount();
  else out.push(c.end());
  assert.equal(c.size, counting ? counted : out.reduce((s, b) => s + b.length, 0), 'size is the running total');
  return { bytes: Buffer.concat(out), counted };
}

test('counting gives the length of the bytes pushing makes, in any pieces, header or body', () => {
  const r = rng(777);
  for (let i = 0; i < 4000; i++) {
    const data = randomText(r);
    for (const header of [false, true]) {
      const want = reference(data.toString('latin1'), header);
      const made = run(data, header, r, false).bytes.toString('latin1');
      assert.equal(made, want, `${JSON.stringify(data.toString('latin1'))} header=${header}`);
      assert.equal(run(data, header, r, true).counted, want.length, `${JSON.stringify(data.toString('latin1'))} header=${header} counted`);
    }
  }
});

test('a header block served is visibleHeader then toServed, as the servers made it', () => {
  const blocks = [
    'Subject: a\nStatus: RO\nX-Status: F\nFrom: b\n\n',
    'Status: O\n  folded status\nsubject: x\nX-UID: 4\nCONTENT-LENGTH : 3\nx-keywords: k\n\tmore\nTo: y\n\n',
    'X-Imapbase: 1 2\r\nSubject: crlf\r\nStatus: R\r\n\r\n',
    ' leading fold\nXs: visible\nCs: visible\nno colon\n>From quoted\n\n',
    'Status: RO\nx-status: A',
  ];
  for (const b of blocks) {
    const block = Buffer.from(b, 'latin1');
    assert.equal(servedHeader(block).toString('latin1'), toServed(visibleHeader(block)).toString('latin1'), b);
  }
});

test('every corpus message: the size the scan promises is the size of the bytes served, header and body', async () => {
  const corpus = path.resolve(import.meta.dirname, '../../test/corpus');
  const files = fs.readdirSync(corpus).filter((f) => f.endsWith('.eml')).sort();
  assert.ok(files.length >= 10, 'the corpus is there');
  const e = makeEnv();
  try {
    // The messages as they came, and again with lines beginning "From " and ">From ", and hidden fields on top.
    const originals = files.map((f) => fs.readFileSync(path.join(corpus, f)).toString('latin1'));
    const twisted = originals.map((d) => d.replace(/\n(?=[A-Za-z])/g, '\n>From ').replace(/\n(?=[0-9])/g, '\nFrom '));
    const sent = [...originals, ...twisted];
    const all = [...originals, ...twisted.map((d) => `Status: RO\nX-UID: 7\nContent-Length: 3\n${d}`)].map((d) => Buffer.from(d, 'latin1'));
    await appendToMbox(e.config, e.user('carol'), all.map((data) => ({ sender: 's@x', recipient: 'carol', data })));
    const file = mboxPath(e.config, 'carol');
    const stored = fs.readFileSync(file);
    const found: ScannedMessage[] = [];
    const fh = await fs.promises.open(file);
    try {
      await scanFolder(fh, file, 0, stored.length, (m) => found.push({ ...m, header: Buffer.from(m.header) }));
    } finally {
      await fh.close();
    }
    assert.equal(found.length, all.length);
    found.forEach((m, i) => {
      const body = stored.subarray(m.dataOffset + m.headerLength, m.offset + m.length);
      // As served.ts makes them: one converter, header then body.
      const c = new ServedConverter({ header: true });
      const head = c.push(m.header);
      c.body();
      const made = Buffer.concat([head, c.push(body), c.end()]);
      assert.equal(head.length, m.headerSize, `message ${i}: header`);
      assert.equal(made.length, m.size, `message ${i}: whole`);
      assert.equal(made.length - head.length, m.size - m.headerSize, `message ${i}: body`);
      // As the servers put them together: the visible header served, then the body.
      assert.ok(Buffer.concat([toServed(visibleHeader(m.header)), toServed(body)]).equals(made), `message ${i}: same bytes`);
      // And what went in, with CRLF line ends, without the hidden fields: mboxrd gives every line back.
      const want = `Return-Path: <s@x>\nDelivered-To: carol\n${sent[i].replace(/\n?$/, '\n')}`.replace(/\r?\n/g, '\r\n');
      assert.equal(made.toString('latin1'), want, `message ${i}: round trip`);
    });
  } finally {
    e.cleanup();
  }
});
