// LIST's and LSUB's wildcard match (RFC 3501 6.3.8): "*" crosses the
// hierarchy delimiter "/", "%" does not, INBOX matches in any case, the
// reference name is prefixed unless the pattern starts with "/"; and a
// pattern built to make a backtracking matcher explode answers at once.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matcher, wildcardMatch } from './imap-mailboxes.ts';

test('the wildcards of RFC 3501 6.3.8', () => {
  const table: Array<[reference: string, pattern: string, name: string, expect: boolean]> = [
    ['', '*', 'foo', true],
    ['', '*', 'foo/bar/baz', true],
    ['', '%', 'foo', true],
    ['', '%', 'foo/bar', false],
    ['', 'foo/%', 'foo/bar', true],
    ['', 'foo/%', 'foo/bar/baz', false],
    ['', 'foo/*', 'foo/bar/baz', true],
    ['', 'foo*', 'foo', true],
    ['', 'foo*', 'foobar', true],
    ['', 'foo*', 'foo/bar', true],
    ['', 'foo%', 'foo/bar', false],
    ['', '%/%', 'foo/bar', true],
    ['', '%/%', 'foo/bar/baz', false],
    ['', '%/*', 'foo/bar/baz', true],
    ['', '*/%', 'a/b/c', true],
    ['', '*b%', 'a/b/c', false],
    ['', '*b%', 'a/bc', true],
    ['', '%b*', 'a/bc', false],
    ['', '%a%c', 'xaabc', true],
    ['', '%a%/c', 'xa/y/c', false],
    ['', '*a%/c', 'xa/y/c', false],
    ['', '*a%/c', 'xa/ya/c', true],
    ['', 'foo', 'foo', true],
    ['', 'foo', 'Foo', false],
    ['', 'a.b', 'axb', false],
    ['', 'a+(b)?', 'a+(b)?', true],
    ['', '', 'foo', false],
    ['foo/', '%', 'foo/bar', true],
    ['foo/', '%', 'bar', false],
    ['foo/', '/x', '/x', true],
    ['foo', '*', 'foobar', true],
    ['', 'inbox', 'INBOX', true],
    ['', 'In%', 'INBOX', true],
    ['', '*X', 'INBOX', true],
    ['', 'inbox', 'inbox', true],
    ['', 'INBOX', 'inbox', false],
  ];
  for (const [reference, pattern, name, expect] of table) {
    assert.equal(matcher(reference, pattern)(name), expect, `LIST ${JSON.stringify(reference)} ${JSON.stringify(pattern)} against ${name}`);
  }
});

test('the same answers as a regular expression on many random small cases', () => {
  const toRegExp = (p: string) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/%/g, '[^/]*')}$`);
  const letters = ['a', 'b', '/', '*', '%'];
  let seed = 42;
  const rnd = (k: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % k;
  };
  for (let i = 0; i < 50_000; i++) {
    let p = '';
    for (let k = rnd(10); k > 0; k--) p += letters[rnd(5)];
    let n = '';
    for (let k = rnd(12); k > 0; k--) n += letters[rnd(3)];
    assert.equal(wildcardMatch(p, n), toRegExp(p).test(n), `${JSON.stringify(p)} against ${JSON.stringify(n)}`);
  }
});

test('patterns that make a backtracking matcher explode answer in well under 100 ms', () => {
  const names = ['a'.repeat(200), `${'a'.repeat(20)}/`.repeat(9) + 'a'.repeat(19), 'ab'.repeat(100)];
  const patterns = [
    `${'*a'.repeat(17)}*ab`,
    `*${'%a'.repeat(100)}b`,
    `${'%a'.repeat(100)}*c`,
    `${'*%a'.repeat(60)}b`,
    `*${'a%'.repeat(99)}/c`,
  ];
  for (const name of names) {
    for (const pattern of patterns) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 10; i++) wildcardMatch(pattern, name);
      const ms = Number(process.hrtime.bigint() - start) / 1e6 / 10;
      assert.ok(ms < 20, `${pattern.slice(0, 30)}... against a ${name.length}-character name took ${ms.toFixed(2)} ms`);
    }
  }
});
