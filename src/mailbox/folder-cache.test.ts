// mailtk.cache read from the file, not held: blobs by UID across a write and
// an attach (new ones winning, gone ones dropped, another UIDVALIDITY
// refused), reads through the window in file order, at random and larger
// than it, spills appended and read back by the next opener, a mostly dead
// file left for a rewrite, a file cut under the reader, and a Folder whose
// summaries outgrow memory writing them out and reading them back, and a
// first scan spilling as it goes; a file with another link is rewritten,
// never written through.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { CacheFile, FolderCache, SPILL_BYTES } from './folder-cache.ts';
import { CACHE_FILE } from './folder-file.ts';
import { openFolder } from './index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-cache-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Write what `pieces` yields (each copied before the next is made) to a new file; its name. */
function writeFile(pieces: Iterable<Buffer>): string {
  const file = path.join(dir, `c${++n}`);
  fs.writeFileSync(file, Buffer.concat(Array.from(pieces, (p) => Buffer.from(p))));
  return file;
}

async function attached(file: string, uidValidity: number, want: (uid: number) => boolean = () => true): Promise<FolderCache> {
  const c = new FolderCache();
  const f = new CacheFile(await fs.promises.open(file, 'a+'), 0, true);
  assert.ok(c.attach(f, uidValidity, want), `${file} attached`);
  after(() => c.close());
  return c;
}

const blob = (uid: number) => Buffer.alloc(1000 + (uid % 7), uid % 251);

/** An mbox of messages "Subject: mN" whose 1,000-byte blobs add up to `spills` times SPILL_BYTES, and where its index goes. */
function mboxOf(name: string, spills: number): { mbox: string; indexDir: string; count: number } {
  const mbox = path.join(dir, `${name}.mbox`);
  const count = Math.ceil((spills * SPILL_BYTES) / 1000);
  fs.writeFileSync(mbox, Array.from({ length: count }, (_, i) => `From s@test Mon Jan  1 00:00:00 2024\nSubject: m${i + 1}\n\nbody\n`).join('\n'));
  return { mbox, indexDir: path.join(dir, `${name}-index`), count };
}

test('blobs by UID across a write and an attach: new ones win, gone ones are dropped, another UIDVALIDITY is refused', async () => {
  const c = new FolderCache();
  for (const uid of [5, 3, 9, 1]) c.set('env', uid, Buffer.from(`e${uid}`));
  c.set('env', 3, Buffer.from('e3 again'));
  c.set('big', 9, Buffer.alloc(600 << 10, 0x61));
  assert.equal(c.get('env', 3)?.toString(), 'e3 again');
  assert.equal(c.get('env', 4), undefined);
  const file = writeFile(c.encode(77, Uint32Array.from([1, 3, 9])));
  const d = new FolderCache();
  d.set('env', 9, Buffer.from('newer'));
  const other = new CacheFile(await fs.promises.open(file, 'r'), 0, false);
  assert.equal(d.attach(other, 78, () => true), false, 'another UIDVALIDITY');
  await other.close();
  assert.ok(d.attach(new CacheFile(await fs.promises.open(file, 'r'), 0, false), 77, (uid) => uid !== 1));
  assert.deepEqual([1, 3, 5, 9].map((u) => d.get('env', u)?.toString()), [undefined, 'e3 again', undefined, 'newer']);
  assert.equal(d.get('big', 9)?.length, 600 << 10);
  assert.ok(d.has('env', 3) && !d.has('env', 5));
  await d.close();
  assert.equal(d.get('env', 3), undefined, 'closed: what was in the file is forgotten');
  assert.equal(d.get('env', 9)?.toString(), 'newer', 'what is held stays');
});

test('written in ~1 MiB pieces made in one buffer; read back in order, at random, and larger than the window', async () => {
  const many = new FolderCache();
  const uids = Uint32Array.from({ length: 3000 }, (_, i) => i + 1);
  for (const uid of uids) many.set('env', uid, blob(uid));
  many.set('huge', 2, Buffer.alloc(3 << 20, 0x7a));
  const buffers = new Set<ArrayBufferLike>();
  const file = writeFile(Array.from(many.encode(5, uids), (p) => (buffers.add(p.buffer), Buffer.from(p))));
  assert.ok(fs.statSync(file).size > 5 << 20);
  assert.ok(buffers.size <= 2, 'one buffer for the pieces (and one for the blob larger than it)');
  const back = await attached(file, 5);
  for (const uid of uids) assert.ok(back.get('env', uid)?.equals(blob(uid)), `uid ${uid} in order`);
  for (const uid of [2999, 7, 1500, 1, 3000, 1501]) assert.ok(back.get('env', uid)?.equals(blob(uid)), `uid ${uid} at random`);
  assert.ok(back.get('huge', 2)?.equals(Buffer.alloc(3 << 20, 0x7a)), 'a blob larger than the window');
});

test('spill: what is held is appended and read from the file; the next opener sees it, later records winning', async () => {
  const first = new FolderCache();
  const uids = Uint32Array.from({ length: 2000 }, (_, i) => i + 1);
  for (const uid of uids) first.set('env', uid, blob(uid));
  const file = writeFile(first.encode(9, uids));
  const size = fs.statSync(file).size;
  const c = await attached(file, 9);
  for (let uid = 2001; uid <= 2100; uid++) c.set('env', uid, blob(uid));
  c.set('env', 5, Buffer.from('five again'));
  c.set('env', 3000, Buffer.from('of a message gone'));
  assert.ok(c.heldBytes > 100_000);
  assert.ok(c.spill((uid) => uid !== 3000));
  assert.equal(c.heldBytes, 0, 'nothing held in memory');
  assert.ok(fs.statSync(file).size > size, 'appended, not rewritten');
  assert.equal(c.get('env', 5)?.toString(), 'five again');
  assert.ok(c.get('env', 2050)?.equals(blob(2050)));
  assert.ok(c.get('env', 1999)?.equals(blob(1999)));
  assert.equal(c.get('env', 3000), undefined, 'a gone UID is dropped, not written');
  const next = await attached(file, 9);
  assert.equal(next.get('env', 5)?.toString(), 'five again');
  assert.ok(next.get('env', 2100)?.equals(blob(2100)));
  assert.ok(next.get('env', 6)?.equals(blob(6)));
  // Mostly dead now: left for a rewrite, nothing changed.
  next.set('env', 2200, Buffer.from('new'));
  assert.equal(next.spill((uid) => uid > 2090), false);
  assert.equal(next.get('env', 2200)?.toString(), 'new');
  assert.ok(next.heldBytes > 0);
  // A torn record at the end (a writer that died) would hide what is appended after it: not appended to.
  fs.appendFileSync(file, Buffer.from([3, 0x65, 0x6e, 0x76, 1, 0, 0, 0]));
  const torn = await attached(file, 9);
  torn.set('env', 2101, Buffer.from('after a torn record'));
  assert.equal(torn.spill(() => true), false);
  assert.equal(torn.get('env', 2101)?.toString(), 'after a torn record', 'kept in memory');
});

test('a file cut under the reader gives no blob, never bytes of another', async () => {
  const c = new FolderCache();
  const uids = Uint32Array.from({ length: 50 }, (_, i) => i + 1);
  for (const uid of uids) c.set('env', uid, blob(uid));
  const file = writeFile(c.encode(3, uids));
  const back = await attached(file, 3);
  fs.truncateSync(file, 30_000);
  assert.equal(back.get('env', 49), undefined);
  assert.ok(back.get('env', 2)?.equals(blob(2)));
});

test('a Folder whose summaries outgrow memory writes them to mailtk.cache as they come; the next open reads them all', async () => {
  const { mbox, indexDir, count } = mboxOf('spill', 2.5);
  let f = await openFolder({ mbox, indexDir });
  await f.sync();
  await f.ensureCache();
  const sizes: number[] = [];
  for (const r of f.records) {
    f.putCache('env', r.uid, blob(r.uid));
    // The spill runs at the folder's next turn (not 300 ms later), as between two FETCH batches.
    if (r.uid % 1000 === 0) {
      await new Promise((resolve) => setTimeout(resolve, 30));
      sizes.push(fs.statSync(path.join(indexDir, CACHE_FILE), { throwIfNoEntry: false })?.size ?? 0);
    }
  }
  assert.ok(sizes.some((s) => s > 0) && sizes.at(-1)! > sizes.find((s) => s > 0)!, `written as it grew: ${sizes}`);
  for (const r of f.records) assert.ok(f.getCache('env', r.uid)?.equals(blob(r.uid)), `uid ${r.uid} while open`);
  await f.release();
  f = await openFolder({ mbox, indexDir });
  try {
    await f.ensureCache();
    assert.equal(f.records.length, count);
    for (const r of f.records) assert.ok(f.getCache('env', r.uid)?.equals(blob(r.uid)), `uid ${r.uid} after a reopen`);
  } finally {
    await f.release();
  }
});

test('a first scan spills the summaries it makes into mailtk.cache as it goes, not after its turn', async () => {
  const { mbox, indexDir, count } = mboxOf('scan', 2.5);
  const summaries = { env: (h: Buffer) => blob(Number(/Subject: m(\d+)/.exec(h.toString())![1])) };
  const f = await openFolder({ mbox, indexDir, summaries });
  try {
    await f.sync();
    // Read before any save could run: what is in the file was appended during the scan.
    const size = fs.statSync(path.join(indexDir, CACHE_FILE)).size;
    assert.ok(size > 2 * SPILL_BYTES, `${size} bytes in mailtk.cache after the scan`);
    for (const r of f.records) assert.ok(f.getCache('env', r.uid)?.equals(blob(r.uid)), `uid ${r.uid}`);
  } finally {
    await f.release();
  }
});

test('a mailtk.cache with another link is never written through: the spill rewrites it by rename instead', async () => {
  const { mbox, indexDir, count } = mboxOf('linked', 1.5);
  let f = await openFolder({ mbox, indexDir });
  await f.sync();
  await f.ensureCache();
  f.putCache('env', 1, Buffer.from('one'));
  await f.save();
  await f.release();
  // Someone who can write the index directory links the file to one of theirs... or of another's.
  const other = path.join(dir, 'linked-other');
  fs.linkSync(path.join(indexDir, CACHE_FILE), other);
  const before = fs.readFileSync(other);
  f = await openFolder({ mbox, indexDir });
  try {
    await f.ensureCache();
    for (const r of f.records) f.putCache('env', r.uid, blob(r.uid));
    await f.save();
    assert.ok(fs.readFileSync(other).equals(before), 'the other link is unchanged');
    assert.equal(fs.statSync(path.join(indexDir, CACHE_FILE)).nlink, 1, 'replaced by a file of its own');
    assert.ok(f.getCache('env', count)?.equals(blob(count)));
  } finally {
    await f.release();
  }
});
