// The welcome message (welcome_message_file) through the real binaries, as
// root or as an ordinary user: `mailtk user add` queues the template, its
// ${address}, ${user}, ${domain} and ${hostname} replaced and a To: added,
// through sendmail, and it lands in the new user's mailbox; a template that
// is not a message, or names an unknown ${...}, is refused with its file and
// line before anything changes (exit 78, no user made).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';

let sb: Sandbox;
let template: string;

before(() => {
  sb = makeSandbox({
    extraConf: ['virtual_domains_file = virtual-domains', 'virtual_users_file = virtual-users', 'virtual_alias_file = virtusertable', 'quota_file = quotas', 'welcome_message_file = welcome'].join('\n'),
  });
  template = path.join(sb.dir, 'etc/welcome');
  assert.equal(run(sb, 'mailtk', ['domain', 'add', 'a.test']).status, 0);
});

after(() => sb?.cleanup());

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

test('a new user gets the welcome message, through the queue, its names replaced', async () => {
  fs.writeFileSync(template, 'Subject: Welcome to ${domain}\n\nHello ${user},\nyour address is ${address}; your server is ${hostname}.\n');
  const r = run(sb, 'mailtk', ['user', 'add', 'carol@a.test'], 'pw\n');
  assert.equal(r.status, 0, r.stderr);
  const box = path.join(sb.spool, 'virtual', 'a.test', 'carol');
  // The log line of the delivery comes after the write into the mailbox.
  await waitFor(() => read(box) !== '' && /to=<carol@a\.test>.*stat=Sent/.test(read(sb.log)), 30_000, 'the welcome message');
  const [msg] = splitMbox(read(box));
  assert.match(msg, /^Subject: Welcome to a\.test$/m);
  assert.match(msg, /^To: <carol@a\.test>$/m);
  assert.match(msg, /Hello carol,\nyour address is carol@a\.test; your server is mail\.test\./);
  assert.match(read(sb.log), /from=<postmaster@mail\.test>/);
  assert.match(read(sb.log), /to=<carol@a\.test>.*stat=Sent/);
});

test('a broken template is refused with its line, and no user is made', () => {
  const cases: Array<[string, RegExp]> = [
    ['Hello ${user}\n', /welcome:1: expected a header field/],
    ['Subject: Hi ${name}\n\nbody\n', /welcome:1: unknown \$\{name\}/],
    ['From: x@a.test\n\nno subject\n', /no Subject: field/],
  ];
  for (const [text, why] of cases) {
    fs.writeFileSync(template, text);
    const r = run(sb, 'mailtk', ['user', 'add', 'dave@a.test'], 'pw\n');
    assert.equal(r.status, 78, r.stderr);
    assert.match(r.stderr, why);
    assert.doesNotMatch(read(path.join(sb.dir, 'etc/virtual-users')), /dave/);
  }
  fs.rmSync(template);
  assert.equal(run(sb, 'mailtk', ['user', 'add', 'dave@a.test'], 'pw\n').status, 0, 'no template: no welcome, the user is made');
});
