// scanMboxHeaders must give exactly scanMbox's index for every file, at every
// window size (so separators, blank lines and quoted lines that straddle two
// windows are found), plus the header blocks and mailx's line counts.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { scanMbox } from './scan.ts';
import { scanMboxHeaders } from './scan-headers.ts';

/** A deterministic generator (xorshift), so a failure can be replayed. */
function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

const PIECES = [
  'From a@b Tue Nov 14 22:13:38 2023\n', 'Subject: x\n', 'From: y\n', '\n', '\n', 'body\n', '>From quoted\n',
  'From inside\n', 'From ', 'Fro', '\r\n', 'X-Long: ' + 'z'.repeat(1500) + '\n', 'Status: RO\n', '>>From two\n', '\n\n',
];

function randomMbox(r: () => number): string {
  let s = 'From first@x Mon Jan  1 00:00:00 2024\n';
  const n = Math.floor(r() * 60);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  if (r() < 0.5) s += 'tail without newline';
  return s;
}

async function compare(file: string, chunk: number): Promise<void> {
  const want = await scanMbox(file);
  const got = await scanMboxHeaders(file, { chunkSize: chunk, blocking: chunk % 2 === 1 });
  assert.deepEqual(got.index.messages, want.messages, `index differs at chunk ${chunk}`);
  assert.equal(got.index.size, want.size);
  const data = fs.readFileSync(file);
  want.messages.forEach((e, i) => {
    assert.deepEqual(got.headers[i], data.subarray(e.dataOffset, e.dataOffset + e.headerLength), `header ${i}`);
    const next = i + 1 < want.messages.length ? want.messages[i + 1].offset : data.length;
    const lines = data.subarray(e.offset, next).toString('latin1').split('\n').length - 1;
    assert.equal(got.lines[i], lines, `lines of message ${i}`);
  });
}

test('same index as scanMbox on random mboxes, at every window size', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-scanh-'));
  try {
    const r = rng(12345);
    for (let round = 0; round < 300; round++) {
      const file = path.join(dir, `m${round}`);
      fs.writeFileSync(file, randomMbox(r));
      for (const chunk of [16, 23, 64, 1 << 20]) await compare(file, chunk);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses a file that is not an mbox, as scanMbox does', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-scanh-'));
  try {
    const file = path.join(dir, 'x');
    fs.writeFileSync(file, 'Subject: no From_ line\n\nbody\n');
    await assert.rejects(scanMbox(file), /not an mbox/);
    await assert.rejects(scanMboxHeaders(file), /not an mbox/);
    fs.writeFileSync(file, '');
    assert.equal((await scanMboxHeaders(file)).index.messages.length, 0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
