// The per-mailbox index: the one-pass scan finds the same messages as
// scanMbox on random mboxes (quoted From lines, empty bodies, lines across
// chunk ends) and measures each served size exactly; the served form
// unquotes and turns LF into CRLF whatever the chunking; a Folder keeps UIDs
// and flags across a reopen, an append, an expunge and a rewrite by another
// program, and keeps mail appended while it rewrites.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { scanFolder, type ScannedMessage } from './folder-scan.ts';
import { FLAG, openFolder, rewriteMbox, scanMbox, ServedConverter, toServed } from './index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-folder-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function randomMbox(seed: number, n: number): string {
  let x = seed;
  const rnd = (k: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % k;
  };
  const lines = ['plain text', '>From quoted', 'From: not a separator mid-body', '', '.dot', 'x'.repeat(3000), '\r'];
  let out = '';
  for (let i = 0; i < n; i++) {
    out += `From sender${i}@test Mon Jan  1 00:00:${String(i % 60).padStart(2, '0')} 2024\nSubject: m${i}\n${rnd(3) === 0 ? 'Status: RO\nX-Status: F\n' : ''}\n`;
    for (let k = rnd(8); k > 0; k--) out += `${lines[rnd(lines.length)]}\n`;
    out += '\n';
  }
  return out;
}

function servedOf(data: Buffer, m: ScannedMessage): string {
  const text = data.subarray(m.offset + m.fromLen, m.offset + m.length).toString('latin1');
  const lines = text.split('\n');
  let hiding = false;
  let inHeader = true;
  const kept: string[] = [];
  lines.forEach((l, i) => {
    if (inHeader && (l === '' || l === '\r')) inHeader = false;
    else if (inHeader && !/^[ \t]/.test(l)) hiding = /^(status|x-status)\s*:/i.test(l);
    if (inHeader && hiding) return;
    kept.push(l.replace(/^>From /, 'From ') + (i < lines.length - 1 ? (l.endsWith('\r') ? '\n' : '\r\n') : ''));
  });
  return kept.join('');
}

test('scanFolder agrees with scanMbox and measures served sizes exactly', async () => {
  for (let seed = 1; seed <= 20; seed++) {
    const file = path.join(dir, `r${seed}`);
    fs.writeFileSync(file, randomMbox(seed, 40));
    const a = await scanMbox(file);
    const b: ScannedMessage[] = [];
    const fh = await fs.promises.open(file);
    await scanFolder(fh, file, 0, (await fh.stat()).size, (m) => b.push(m));
    await fh.close();
    assert.equal(b.length, a.messages.length);
    const data = fs.readFileSync(file);
    a.messages.forEach((e, i) => {
      assert.deepEqual([b[i].offset, b[i].length, b[i].offset + b[i].fromLen], [e.offset, e.length, e.dataOffset], `seed ${seed} message ${i}`);
      assert.equal(b[i].size, Buffer.byteLength(servedOf(data, b[i]), 'latin1'), `seed ${seed} message ${i} size`);
    });
  }
});

test('the served form does not depend on where chunks end', () => {
  const stored = Buffer.from('>From a\nline\r\n>Fro\n>From b\nend');
  const whole = toServed(stored).toString();
  assert.equal(whole, 'From a\r\nline\r\n>Fro\r\nFrom b\r\nend');
  for (let cut = 1; cut < stored.length; cut++) {
    const c = new ServedConverter();
    const got = Buffer.concat([c.push(stored.subarray(0, cut)), c.push(stored.subarray(cut)), c.end()]).toString();
    assert.equal(got, whole, `cut at ${cut}`);
  }
});

test('a Folder keeps UIDs and flags across reopen, append, expunge and a foreign rewrite', async () => {
  const mbox = path.join(dir, 'inbox');
  const indexDir = path.join(dir, 'index');
  fs.writeFileSync(mbox, randomMbox(7, 6));
  let f = await openFolder({ mbox, indexDir });
  await f.sync();
  const validity = f.uidValidity;
  assert.deepEqual(f.records.map((r) => r.uid), [1, 2, 3, 4, 5, 6]);
  f.setFlags([2], 'add', FLAG.answered, 0);
  await f.release();
  f = await openFolder({ mbox, indexDir });
  await f.sync();
  assert.equal(f.uidValidity, validity);
  assert.ok(f.byUidGet(2)!.flags & FLAG.answered, 'the flag reached the headers and the index');
  assert.match(fs.readFileSync(mbox, 'utf8'), /Subject: m1\n(?:.*\n)*?X-Status: A/);
  const [uid] = await f.append([{ data: Buffer.from('Subject: new\n\nFrom here\n'), flags: FLAG.seen, keywords: ['$Work'], date: new Date() }]);
  assert.equal(uid, 7);
  assert.deepEqual(f.keywordNames(f.byUidGet(7)!.keywords), ['$Work']);
  // Someone appends while we expunge: kept.
  fs.appendFileSync(mbox, 'From late@test Mon Jan  1 00:00:00 2024\nSubject: late\n\nlate\n\n');
  assert.deepEqual(await f.expunge([1, 3]), [1, 3]);
  assert.deepEqual(f.records.map((r) => r.uid), [2, 4, 5, 6, 7, 8]);
  // Another program drops uid 4 through the shared rewrite: the others keep their UIDs.
  const index = await scanMbox(mbox);
  await rewriteMbox(mbox, index, index.messages.filter((_, i) => i !== 1).map((entry) => ({ entry })));
  await f.sync();
  assert.deepEqual(f.records.map((r) => r.uid), [2, 5, 6, 7, 8]);
  assert.match(fs.readFileSync(mbox, 'utf8'), /\n>From here\n/, 'the appended body was quoted');
  await f.release();
});
