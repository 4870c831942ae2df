import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { type BuildOptions, type Built, buildAliases } from './builder.ts';
import { CdbFile, HEADER_BYTES } from './cdb.ts';
import { membersOf } from './format.ts';
import { parseAliases } from './parse.ts';

const F = '/etc/mail/aliases';

/** Lines that probe every rule of the fast path, each with a reason to go slow or not. */
const EDGES = [
  'plain: alice',
  'Mixed.Case-Name: Bob@Example.ORG, carol',
  'spaced : alice',
  'tabs:\talice\t,\tbob\t',
  'list: alice,',
  '  bob,',
  '\tcarol',
  'cont-first:',
  '  alice',
  'with-comment: alice,',
  '   # not bob',
  '  carol',
  'backslash: alice, \\',
  'bob',
  'crlf: alice, bob\r',
  'prog: "|/usr/bin/x a,b", alice',
  'prog2: |/usr/bin/y arg',
  'file: /var/log/x',
  'inc: :include: /etc/mail/list',
  'noalias: \\alice',
  'angle: Bob <bob@example.com>',
  'comment: bob@example.com (Bob)',
  '"quoted name": alice',
  'café: alice',
  'utf: jösé@example.com',
  'trailing-ws: alice   ',
  'ws-only-cont: alice',
  '   ',
  'at-end: alice@',
  '@start: alice',
  'at-member: @alice',
  'space-member: john smith',
  'no colon',
  'empty:',
  ': nameless',
  '  indented orphan',
  'dup: alice',
  'DUP: bob',
  'many: a,b,,c , d ,e',
  'hash#name: alice',
  '# comment',
  '',
  'q1: "|cmd"x',
  'q2: "| cmd arg ", alice',
  'q3: "|"',
  'q4: "|cmd \\"x\\""',
  'q5: "|a"  ,  "|b",alice',
  'q6: "|a" "|b"',
  'q7: "|a',
  'q8: " |a"',
  'q9: "|a, b",c',
  'q10: "|a\tb"',
  'q11: alice,',
  '  "|on a continuation line"',
  'q12: "|cmd"@host',
  'q13: alice"|x"',
  'f1: /a@, b',
  'f2: /a@b, a/b, /',
  'i1: :INCLUDE:/etc/mail/x, alice',
  'i2: alice,:include:/a/b',
  'i3: :include:/a b',
  'i4: :include:relative',
  'i5: :include:',
  'i6: :include:\t/a ,b',
  'i7: :include:/a@',
  'i8: :includes:/x',
  'i9: :include:/a:b',
  'i10: :include:',
  '\t/on/next/line',
  'i11: :incl',
  'i12: x:include:/a',
  'last: alice',
];

function corpus(seed: number, n: number): string {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const users = ['root', 'alice', 'Bob', 'u01', 'x@example.com', 'y@LOCALHOST', '"|/bin/p a,b"', '"| /bin/q "', '/var/log/f', 'a/b@c', ':include:/l', ':Include: /l2'];
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${pick(['a', 'List.', 'Owner-', 'n'])}${i % 50}`;
    const k = 1 + Math.floor(rnd() * 4);
    const ms = Array.from({ length: k }, () => pick(users));
    const sep = pick([', ', ',', ' , ', ',\n\t', ',\n  ']);
    const r = rnd();
    if (r < 0.05) lines.push(pick(EDGES));
    else if (r < 0.1) lines.push(`${name}: "|/bin/prog ${i}"`);
    else if (r < 0.12) lines.push(`# c ${i}`);
    else lines.push(`${name}:${pick([' ', '\t', '  '])}${ms.join(sep)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** What a build produced, as plain values: the records' bytes (header space left out) and the rest. */
function build(text: string, opts: BuildOptions = {}) {
  const b = buildAliases(Buffer.from(text, 'utf8'), F, opts);
  const { records, ...rest } = b;
  return { bytes: records.buf.subarray(HEADER_BYTES, records.len), ...rest };
}

function both(text: string) {
  return [build(text), build(text, { slowOnly: true })];
}

/** The built records as a cdb file, opened; the caller closes it. */
function asCdb(built: Built): CdbFile {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-builder-')), 'aliases.cdb');
  fs.writeFileSync(file, Buffer.concat(built.tables.finish(built.records)));
  const db = CdbFile.open(file);
  fs.rmSync(path.dirname(file), { recursive: true });
  return db;
}

test('the fast path builds exactly what parseAliases() would: edge cases', () => {
  const [fast, slow] = both(`${EDGES.join('\n')}\n`);
  assert.deepEqual(fast, slow);
  assert.deepEqual(fast.errors.map((e) => e.line), [29, 30, 31, 32, 33, 34, 35, 45, 48, 49, 62, 63]);
  assert.equal(fast.warnings.length, 1);
});

test('the fast path builds exactly what parseAliases() would: random files', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const [fast, slow] = both(corpus(seed, 400));
    assert.deepEqual(fast, slow, `seed ${seed}`);
  }
});

test('every alias parseAliases() finds is in the cdb file, with sendmail statistics', () => {
  const text = corpus(42, 2000).split('\n').filter((l) => !EDGES.includes(l)).join('\n');
  const parsed = parseAliases(text, F);
  assert.deepEqual(parsed.errors, []);
  const built = buildAliases(Buffer.from(text), F);
  const db = asCdb(built);
  try {
    for (const e of parsed.entries) assert.deepEqual(membersOf(db.get(Buffer.from(e.name))?.toString() ?? ''), e.members, e.name);
    assert.equal(db.get(Buffer.from('no-such-alias')), undefined);
  } finally {
    db.close();
  }
  assert.equal(built.count, parsed.entries.length);
  assert.equal(built.longest, Math.max(...parsed.entries.map((e) => e.rhsBytes)));
  assert.equal(built.total, parsed.entries.reduce((n, e) => n + Buffer.byteLength(e.name) + e.rhsBytes, 0));
  assert.deepEqual(built.warnings, parsed.warnings);
});

test('a duplicate leaves only the last record, and the records after it move down', () => {
  const text = 'root: alice\nRoot: bob\nstaff: alice, "|/bin/x"\nROOT: carol\n';
  const built = build(text);
  const record = (k: string, d: string) => {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(k.length, 0);
    head.writeUInt32LE(d.length, 4);
    return Buffer.concat([head, Buffer.from(k + d)]);
  };
  assert.deepEqual(built.bytes, Buffer.concat([record('staff', 'alice\n|/bin/x'), record('root', 'carol')]));
  assert.equal(built.count, 2);
  assert.deepEqual(built.warnings, [
    `${F}:2: warning: duplicate alias name root (also on line 1; the last one wins)`,
    `${F}:4: warning: duplicate alias name root (also on line 2; the last one wins)`,
  ]);
  assert.equal(built.longest, 'alice, "|/bin/x"'.length);
  assert.equal(built.total, 'staff'.length + 'alice, "|/bin/x"'.length + 'root'.length + 'carol'.length);
  const db = asCdb(buildAliases(Buffer.from(text), F));
  try {
    assert.equal(db.get(Buffer.from('root'))?.toString(), 'carol');
    assert.equal(db.get(Buffer.from('staff'))?.toString(), 'alice\n|/bin/x');
  } finally {
    db.close();
  }
});

test('progress is reported as aliases are read: 0 at the start, then every 10,000 or so', () => {
  const text = Array.from({ length: 25000 }, (_, i) => `a${i}: root`).join('\n');
  const seen: number[] = [];
  buildAliases(Buffer.from(text), F, { onProgress: (n) => seen.push(n) });
  assert.equal(seen.length, 3);
  assert.equal(seen[0], 0);
  assert.ok(seen[1] >= 10000 && seen[1] < 10100 && seen[2] - seen[1] >= 10000, String(seen));
});

test('records that outgrow the first buffer move to a bigger one', () => {
  // Short lines cost more as records (8 bytes of lengths) than the estimate allows for.
  const long = Array.from({ length: 500 }, (_, i) => `user${i}`).join(', ');
  const text = `${Array.from({ length: 6000 }, (_, i) => `${i.toString(36)}:b`).join('\n')}\nbig: ${long}\nlast: d\n`;
  const [fast, slow] = both(text);
  assert.deepEqual(fast, slow);
  assert.equal(fast.count, 6002);
  assert.ok(fast.bytes.length > text.length * 1.5 + HEADER_BYTES, 'more than the first buffer holds (its source plus 8 bytes per 16)');
});
