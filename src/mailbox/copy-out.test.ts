import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CopiedBytes } from './copy-out.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-copy-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

async function readBack(c: CopiedBytes): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const b of c.chunks()) out.push(b);
  return Buffer.concat(out);
}

/** Add `data` as a reader with a reused buffer would: each piece through the same scratch buffer. */
async function addThroughScratch(c: CopiedBytes, data: Buffer): Promise<void> {
  for (let pos = 0; pos < data.length; ) {
    const n = data.copy(c.scratch, 0, pos, Math.min(data.length, pos + c.scratch.length));
    await c.add(c.scratch.subarray(0, n));
    pos += n;
  }
}

test('a small copy stays in memory and survives reuse of the buffer it was added from', async () => {
  const c = new CopiedBytes(dir);
  const data = crypto.randomBytes(100_000);
  await addThroughScratch(c, data);
  assert.equal(c.length, data.length);
  assert.deepEqual(await readBack(c), data);
  assert.deepEqual(fs.readdirSync(dir), []);
  await c.close();
});

test('a large copy goes to a file without a name, read back whole and in order', async () => {
  const c = new CopiedBytes(dir);
  const data = crypto.randomBytes(3_000_000 + 17);
  await addThroughScratch(c, data.subarray(0, 1000)); // starts in memory, then spills
  await addThroughScratch(c, data.subarray(1000));
  assert.equal(c.length, data.length);
  assert.deepEqual(fs.readdirSync(dir), [], 'no name in the directory');
  const back = await readBack(c);
  assert.ok(back.equals(data));
  // Twice: a literal retried, or read again, gets the same bytes.
  assert.ok((await readBack(c)).equals(data));
  await c.close();
  await c.close();
});

test('an empty copy reads back as nothing', async () => {
  const c = new CopiedBytes(dir);
  await c.add(Buffer.alloc(0));
  assert.equal(c.length, 0);
  assert.equal((await readBack(c)).length, 0);
  await c.close();
});

test('a directory that cannot take the file is an error of the copy, not a crash later', async () => {
  const c = new CopiedBytes(path.join(dir, 'missing'));
  await assert.rejects(c.add(Buffer.alloc(1 << 20)), /ENOENT/);
  await c.close();
});
