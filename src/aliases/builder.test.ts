import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildBuckets } from './builder.ts';
import { findInBucket, hashName } from './format.ts';
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
  'last: alice',
];

function corpus(seed: number, n: number): string {
  let s = seed;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  const users = ['root', 'alice', 'Bob', 'u01', 'x@example.com', 'y@LOCALHOST', '"|/bin/p a,b"', '"| /bin/q "', '/var/log/f', 'a/b@c'];
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

function both(text: string) {
  const src = Buffer.from(text, 'utf8');
  return [buildBuckets(src, F), buildBuckets(src, F, { slowOnly: true })];
}

test('the fast path builds exactly what parseAliases() would: edge cases', () => {
  const [fast, slow] = both(`${EDGES.join('\n')}\n`);
  assert.deepEqual(fast, slow);
  assert.deepEqual(fast.errors.map((e) => e.line), [29, 30, 31, 32, 33, 34, 35, 45, 48, 49]);
  assert.equal(fast.warnings.length, 1);
});

test('the fast path builds exactly what parseAliases() would: random files', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const [fast, slow] = both(corpus(seed, 400));
    assert.deepEqual(fast, slow, `seed ${seed}`);
  }
});

test('every alias parseAliases() finds is in its bucket, with sendmail statistics', () => {
  const text = corpus(42, 2000).split('\n').filter((l) => !EDGES.includes(l)).join('\n');
  const parsed = parseAliases(text, F);
  assert.deepEqual(parsed.errors, []);
  const built = buildBuckets(Buffer.from(text), F);
  for (const e of parsed.entries) {
    const bucket = built.buckets[hashName(e.name) % built.buckets.length].toString('utf8');
    assert.deepEqual(findInBucket(bucket, e.name), e.members, e.name);
  }
  assert.equal(built.count, parsed.entries.length);
  assert.equal(built.longest, Math.max(...parsed.entries.map((e) => e.rhsBytes)));
  assert.equal(built.total, parsed.entries.reduce((n, e) => n + Buffer.byteLength(e.name) + e.rhsBytes, 0));
  assert.deepEqual(built.warnings, parsed.warnings);
});

test('a duplicate leaves only the last record in the bucket', () => {
  const built = buildBuckets(Buffer.from('root: alice\nRoot: bob\n'), F);
  const all = Buffer.concat(built.buckets).toString();
  assert.equal(all, 'root\x1fbob\n');
  assert.equal(built.count, 1);
  assert.equal(built.warnings.length, 1);
});

test('progress is reported as aliases are read', () => {
  const text = Array.from({ length: 25000 }, (_, i) => `a${i}: root`).join('\n');
  const seen: number[] = [];
  buildBuckets(Buffer.from(text), F, { onProgress: (n) => seen.push(n) });
  assert.equal(seen.length, 2);
  assert.ok(seen[0] >= 10000 && seen[0] < 10100 && seen[1] - seen[0] >= 10000, String(seen));
});

test('a bucket that outgrows its slice of the slab moves out whole', () => {
  // Tiny file, so one bucket; then a long entry far bigger than the slice.
  const long = Array.from({ length: 500 }, (_, i) => `user${i}`).join(', ');
  const text = `a: b\nbig: ${long}\nc: d\n`;
  const [fast, slow] = both(text);
  assert.deepEqual(fast, slow);
  assert.equal(fast.count, 3);
});
