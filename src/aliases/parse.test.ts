import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseAliases, parseMembers } from './parse.ts';

const F = '/etc/mail/aliases';

function members(text: string): Record<string, string[]> {
  const r = parseAliases(text, F);
  assert.deepEqual(r.errors, []);
  return Object.fromEntries(r.entries.map((e) => [e.name, e.members]));
}

function errors(text: string): Array<{ line: number; message: string }> {
  return parseAliases(text, F).errors;
}

test('name: a, b with comments, blank lines and CRLF', () => {
  const text = '# comment\n\npostmaster: root\r\nstaff: alice, bob ,carol\n#another\nMAILER-DAEMON: postmaster\n';
  assert.deepEqual(members(text), {
    postmaster: ['root'],
    staff: ['alice', 'bob', 'carol'],
    'mailer-daemon': ['postmaster'],
  });
});

test('names are folded to lower case; members keep their case', () => {
  assert.deepEqual(members('Root: Alice@Example.ORG\n'), { root: ['Alice@Example.ORG'] });
});

test('continuation lines start with a space or a tab', () => {
  const r = parseAliases('list: alice,\n  bob,\n\tcarol\nnext: root\n', F);
  assert.deepEqual(r.entries.map((e) => [e.name, e.members, e.line]), [
    ['list', ['alice', 'bob', 'carol'], 1],
    ['next', ['root'], 4],
  ]);
});

test('a backslash before the newline joins the next line', () => {
  assert.deepEqual(members('list: alice, \\\nbob\n'), { list: ['alice', 'bob'] });
});

test('an indented # line inside an entry is a comment (Postfix)', () => {
  assert.deepEqual(members('list: alice,\n  # bob left\n  carol\n'), { list: ['alice', 'carol'] });
});

test('programs: quoted (commas inside kept), unquoted to the next comma', () => {
  assert.deepEqual(members('a: "|/usr/bin/filter -a x,y", bob\nb: |/usr/bin/vacation bob, carol\n'), {
    a: ['|/usr/bin/filter -a x,y', 'bob'],
    b: ['|/usr/bin/vacation bob', 'carol'],
  });
});

test('files, :include:, \\user, remote addresses', () => {
  assert.deepEqual(members('a: /var/log/a.log, "/var/log/with space", :include: /etc/mail/staff, \\bob, bob@example.com\n'), {
    a: ['/var/log/a.log', '/var/log/with space', ':include:/etc/mail/staff', '\\bob', 'bob@example.com'],
  });
});

test('quoted names may hold spaces, colons and @', () => {
  assert.deepEqual(members('"John Smith": john\n"a:b@c" : alice\n'), { 'john smith': ['john'], 'a:b@c': ['alice'] });
});

test('RFC 5322 forms: Name <addr> and addr (comment)', () => {
  assert.deepEqual(members('a: Bob Smith <bob@example.com>, carol@example.com (Carol), "x y"@example.com\n'), {
    a: ['bob@example.com', 'carol@example.com', '"x y"@example.com'],
  });
});

test('owner-NAME is an ordinary alias', () => {
  assert.deepEqual(members('list: alice\nowner-list: bob\n'), { list: ['alice'], 'owner-list': ['bob'] });
});

test('a trailing comma and empty members are harmless', () => {
  assert.deepEqual(members('a: b, , c,\n'), { a: ['b', 'c'] });
});

test('duplicates warn, and the last one wins (sendmail)', () => {
  const r = parseAliases('root: alice\nbob: bob\nRoot: carol\n', F);
  assert.deepEqual(r.errors, []);
  assert.deepEqual(Object.fromEntries(r.entries.map((e) => [e.name, e.members])), { root: ['carol'], bob: ['bob'] });
  assert.deepEqual(r.warnings, [`${F}:3: warning: duplicate alias name root (also on line 1; the last one wins)`]);
});

test('sendmail statistics: the right-hand side as written, continuations joined', () => {
  const r = parseAliases('a: b, c\nlist: alice,\n\tbob\n', F);
  assert.deepEqual(r.entries.map((e) => e.rhsBytes), ['b, c'.length, 'alice,\tbob'.length]);
});

test('errors carry their line numbers', () => {
  assert.deepEqual(errors('ok: root\nno colon here\n: bob\nbob@example.com: bob\nx: \ny: john smith\n'), [
    { line: 2, message: 'missing colon: expected "name: address, ..." but found "no colon here"' },
    { line: 3, message: 'empty alias name before the colon' },
    { line: 4, message: 'cannot alias non-local names: "bob@example.com" (write the local part only; aliases apply to every local domain)' },
    { line: 5, message: 'missing value for alias x (give at least one address after the colon)' },
    { line: 6, message: 'bad address "john smith": separate addresses with commas, and quote programs and files' },
  ]);
});

test('a bad member on a continuation line is reported on that line', () => {
  const e = errors('list: alice,\n  bob,\n  :include: relative/file\n');
  assert.equal(e.length, 1);
  assert.equal(e[0].line, 3);
  assert.match(e[0].message, /:include: needs an absolute path/);
});

test('more member errors: quotes, brackets, empty program, spaced file name', () => {
  const e = errors('a: "|/bin/x\nb: <bob@example.com\nc: |\nd: /var/log/my file\n"unterminated: x\n');
  assert.deepEqual(e.map((x) => x.line), [1, 2, 3, 4, 5]);
  assert.match(e[0].message, /unbalanced quote/);
  assert.match(e[1].message, /unbalanced </);
  assert.match(e[2].message, /empty command/);
  assert.match(e[3].message, /put it in double quotes/);
  assert.match(e[4].message, /unbalanced quote in alias name/);
});

test('an indented line that continues nothing is an error (sendmail)', () => {
  const e = errors('a: b\n# note\n  c\n   \n');
  assert.deepEqual(e.map((x) => x.line), [3]);
  assert.match(e[0].message, /continues nothing/);
});

test('the name @ is reserved for the database', () => {
  assert.match(errors('"@": root\n')[0].message, /reserved/);
});

test('parseMembers: the list syntax of :include: and .forward files', () => {
  assert.deepEqual(parseMembers('\\alice, "|/usr/bin/vacation alice"').members, ['\\alice', '|/usr/bin/vacation alice']);
  assert.deepEqual(parseMembers('a b').errors.map((e) => e.at), [0]);
});
