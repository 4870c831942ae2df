// The per-mailbox index: the one-pass scan finds the same messages as
// scanMbox on random mboxes (quoted From lines, empty bodies, lines across
// chunk ends) and measures each served size exactly; the served form
// unquotes (mboxrd) and turns LF into CRLF whatever the chunking; a Folder
// keeps UIDs and flags across a reopen, an append, an expunge and a rewrite by
// another program, and keeps mail appended while it rewrites; an index written
// before mboxrd is brought up to date without new UIDs.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { decodeIndex, encodeIndex, INDEX_FILE, type IndexState, indexPieces } from './folder-file.ts';
import { fingerprint } from './folder-flags.ts';
import { HIDDEN, scanFolder, type ScannedMessage } from './folder-scan.ts';
import { FLAG, openFolder, rewriteMbox, scanMbox, ServedConverter, toServed } from './index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-folder-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function randomMbox(seed: number, n: number): string {
  let x = seed;
  const rnd = (k: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % k;
  };
  const lines = ['plain text', '>From quoted', '>>From twice', '>>>From thrice', '>', '>>', '> From', 'From: not a separator mid-body', '', '.dot', 'x'.repeat(3000), '\r'];
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
    kept.push(l.replace(/^>(>*From )/, '$1') + (i < lines.length - 1 ? (l.endsWith('\r') ? '\n' : '\r\n') : ''));
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
  const cases: Array<[string, string]> = [
    ['>From a\nline\r\n>Fro\n>From b\nend', 'From a\r\nline\r\n>Fro\r\nFrom b\r\nend'],
    ['>>From a\n>>>From b\r\n>\n>>\r\n> From c\nx>From d\n>>x\n>From', '>From a\r\n>>From b\r\n>\r\n>>\r\n> From c\r\nx>From d\r\n>>x\r\n>From'],
    ['a\n>>>', 'a\r\n>>>'],
    ['a\n>>From ', 'a\r\n>From '],
  ];
  for (const [storedText, want] of cases) {
    const stored = Buffer.from(storedText);
    assert.equal(toServed(stored).toString(), want);
    for (let cut = 1; cut < stored.length; cut++) {
      const c = new ServedConverter();
      const got = Buffer.concat([c.push(stored.subarray(0, cut)), c.push(stored.subarray(cut)), c.end()]).toString();
      assert.equal(got, want, `${JSON.stringify(storedText)} cut at ${cut}`);
    }
    // One byte at a time.
    const c = new ServedConverter();
    const got = Buffer.concat([...[...stored].map((b) => c.push(Buffer.from([b]))), c.end()]).toString();
    assert.equal(got, want, `${JSON.stringify(storedText)} byte by byte`);
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

test('an index written before mboxrd keeps its UIDs and flags, and its sizes are made right', async () => {
  const mbox = path.join(dir, 'legacy');
  const indexDir = path.join(dir, 'legacy-index');
  const msg = (i: number, body: string) => `From s${i}@test Mon Jan  1 00:00:0${i} 2024\nSubject: m${i}\n\n${body}\n`;
  fs.writeFileSync(mbox, [msg(1, 'plain'), msg(2, '>>From deep\n>From shallow\n>>>From deeper'), msg(3, 'after')].join('\n'));
  let f = await openFolder({ mbox, indexDir });
  await f.sync();
  f.setFlags([2], 'add', FLAG.flagged, 0);
  const sizes = f.records.map((r) => r.size);
  await f.release();
  // Make it an index of before: no quoting mark; sizes and fingerprints counted ^>>+From  lines whole.
  const file = path.join(indexDir, INDEX_FILE);
  const state = decodeIndex(fs.readFileSync(file))!;
  assert.equal(state.quoting, 'mboxrd');
  const r2 = state.records[1];
  const header = fs.readFileSync(mbox).subarray(r2.offset + r2.fromLen, r2.offset + r2.fromLen + r2.headerLength);
  state.records[1] = { ...r2, size: r2.size + 2, fp: fingerprint(header, r2.size - r2.headerSize + 2) };
  delete state.quoting;
  fs.writeFileSync(file, encodeIndex(state));
  f = await openFolder({ mbox, indexDir });
  try {
    await f.sync();
    assert.deepEqual(f.records.map((r) => r.uid), [1, 2, 3]);
    assert.deepEqual(f.records.map((r) => r.size), sizes);
    assert.ok(f.byUidGet(2)!.flags & FLAG.flagged);
  } finally {
    await f.release();
  }
  assert.equal(decodeIndex(fs.readFileSync(file))!.quoting, 'mboxrd');
});

test('a file whose last line has no newline: that line belongs to the last message, in its length and served size', async () => {
  const text = 'From a@b Sun Nov  2 07:03:04 2025\nSubject: one\n\nbody\n\nFrom a@b Sun Nov  2 07:03:05 2025\nSubject: two\n\nlast line wombat';
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-eof-')), 'box');
  fs.writeFileSync(file, text);
  const found: Array<{ offset: number; length: number; size: number }> = [];
  const fh = await fs.promises.open(file, 'r');
  await scanFolder(fh, file, 0, text.length, (m) => found.push({ offset: m.offset, length: m.length, size: m.size }));
  await fh.close();
  assert.equal(found.length, 2);
  assert.equal(found[1].offset + found[1].length, text.length, 'the last message runs to the end of the file');
  assert.equal(found[1].size, 'Subject: two\r\n\r\nlast line wombat'.length, 'served size: the last line, no CRLF added');
  fs.rmSync(path.dirname(file), { recursive: true, force: true });
});

test('fingerprint hashes the visible header lines as the line-by-line form did (indexes hold its values)', () => {
  const byLine = (block: Buffer, bodySize: number): string => {
    const h = createHash('sha1');
    let hiding = false;
    const text = block.toString('latin1');
    for (const line of text.split(/(?<=\n)/)) {
      if (line === '\n' || line === '\r\n') break;
      if (line[0] !== ' ' && line[0] !== '\t') {
        const colon = line.indexOf(':');
        hiding = colon > 0 && HIDDEN.includes(line.slice(0, colon).trimEnd().toLowerCase());
      }
      if (!hiding) h.update(Buffer.from(line, 'latin1'));
    }
    return h.update(`\n\0${bodySize}`).digest('base64').slice(0, 12);
  };
  const blocks = [
    'Subject: a\nStatus: RO\nX-Status: F\nFrom: b\n\nbody\n',
    'Status: O\n  folded status\nsubject: x\nX-UID: 4\nCONTENT-LENGTH : 3\nx-keywords: k\n\tmore\nTo: y\n\n',
    'Received: x\n\tcontinued\nCc: c\nno colon line\n:odd\nstatus:\n',
    'X-Imapbase: 1 2\r\nSubject: crlf\r\nStatus: R\r\n\r\n',
    'Xs: visible\nCs: visible\nSt: v\n\n',
  ];
  for (const b of blocks) assert.equal(fingerprint(Buffer.from(b, 'latin1'), 7), byLine(Buffer.from(b, 'latin1'), 7), b);
});

test('records found by UID whether or not the index keeps them in UID order, and the cache with them', async () => {
  const mbox = path.join(dir, 'order');
  const indexDir = path.join(dir, 'order-index');
  const msg = (i: number) => `From s${i}@test Mon Jan  1 00:00:0${i} 2024\nSubject: m${i}\n\nbody ${i}\n`;
  fs.writeFileSync(mbox, [1, 2, 3, 4].map(msg).join('\n'));
  const summaries = { subject: (h: Buffer) => Buffer.from(/Subject: (\S+)/.exec(h.toString())![1]) };
  let f = await openFolder({ mbox, indexDir, summaries });
  await f.sync();
  assert.deepEqual([1, 2, 3, 4, 5].map((u) => f.byUidGet(u)?.uid), [1, 2, 3, 4, undefined]);
  await f.release();
  const file = path.join(indexDir, INDEX_FILE);
  const state = decodeIndex(fs.readFileSync(file))!;
  state.records.reverse(); // not as written here, but readable
  fs.writeFileSync(file, encodeIndex(state));
  f = await openFolder({ mbox, indexDir, summaries });
  try {
    await f.ensureCache();
    assert.deepEqual([4, 3, 2, 1].map((u) => f.byUidGet(u)?.uid), [4, 3, 2, 1]);
    assert.deepEqual([1, 4].map((u) => f.getCache('subject', u)?.toString()), ['m1', 'm4']);
  } finally {
    await f.release();
  }
});

test('keywords come from X-Keywords:; owed ones are kept in the index until a rewrite writes them; an index from before is read again', async () => {
  const mbox = path.join(dir, 'kw');
  const indexDir = path.join(dir, 'kw-index');
  const a = 'From a@test Mon Jan  1 00:00:00 2024\nSubject: a\nX-Keywords: $label1 work\n\nbody\n';
  fs.writeFileSync(mbox, `${a}\nFrom b@test Mon Jan  1 00:00:01 2024\nSubject: b\n\nbody\n`);
  let f = await openFolder({ mbox, indexDir });
  await f.sync();
  assert.deepEqual(f.keywordNames(f.byUidGet(1)!.keywords), ['$label1', 'work']);
  f.setFlags([2], 'add', 0, f.keywordBit('$Done', true)!);
  await f.save();
  let state = decodeIndex(fs.readFileSync(path.join(indexDir, INDEX_FILE)))!;
  assert.equal(state.records[1].headerKeywords, 0, 'the index says the header does not have it yet');
  assert.equal(state.keywordHeaders, true);
  await f.release();
  assert.match(fs.readFileSync(mbox, 'utf8'), /Subject: b\nStatus: O\nX-Keywords: \$Done\n\n/);
  state = decodeIndex(fs.readFileSync(path.join(indexDir, INDEX_FILE)))!;
  assert.deepEqual(state.records.map((r) => r.headerKeywords), [undefined, undefined], 'nothing owed after the rewrite');
  // An index written before X-Keywords: was read: no keywords, the mbox unchanged since. Read again at open.
  const { keywordHeaders: _, ...before } = { ...state, keywords: [], records: state.records.map((r) => ({ ...r, keywords: 0 })) };
  fs.writeFileSync(path.join(indexDir, INDEX_FILE), encodeIndex(before));
  f = await openFolder({ mbox, indexDir });
  await f.sync();
  assert.deepEqual(f.records.map((r) => f.keywordNames(r.keywords)), [['$label1', 'work'], ['$Done']]);
  assert.deepEqual(f.records.map((r) => r.uid), [1, 2], 'UIDs stay');
  await f.release();
});

test('an index of 30,000 messages is written in pieces made in one buffer, and reads back whole', async () => {
  const mbox = path.join(dir, 'pieces');
  const indexDir = path.join(dir, 'pieces-index');
  const n = 30_000;
  fs.writeFileSync(mbox, Array.from({ length: n }, (_, i) => `From s@test Mon Jan  1 00:00:00 2024\nSubject: m${i}\n\nb\n`).join('\n'));
  let f = await openFolder({ mbox, indexDir });
  await f.sync();
  f.setFlags([7, n], 'add', FLAG.flagged, f.keywordBit('work', true)!);
  const state = decodeIndex(encodeIndex({ ...(f as unknown as { indexState(): IndexState }).indexState() }))!;
  const buffers = new Set<ArrayBufferLike>();
  const pieces = Array.from(indexPieces(state), (p) => (buffers.add(p.buffer), Buffer.from(p)));
  assert.ok(pieces.length >= 3, `${pieces.length} pieces`);
  assert.equal(buffers.size, 1, 'one buffer for every piece');
  await f.release();
  f = await openFolder({ mbox, indexDir });
  try {
    assert.equal(f.records.length, n, 'the index the release wrote reads back');
    assert.ok(f.byUidGet(n)!.flags & FLAG.flagged);
    assert.deepEqual(f.keywordNames(f.byUidGet(7)!.keywords), ['work']);
    const onDisk = fs.readFileSync(path.join(indexDir, INDEX_FILE));
    assert.ok(Buffer.concat(Array.from(indexPieces(decodeIndex(onDisk)!), (p) => Buffer.from(p))).equals(onDisk), 'pieces of what was read: the same bytes');
  } finally {
    await f.release();
  }
});
