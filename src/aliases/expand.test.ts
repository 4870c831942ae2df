import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { localDomains } from '../config/index.ts';
import { type Destination, compileAliases, expandRecipient, openAliases } from './index.ts';
import { makeTestEnv, type TestEnv } from './test-env.ts';

/** Compact form of a destination for assertions. */
function show(d: Destination): string {
  const base = d.kind === 'error' ? `error:${d.status.status}:${d.address}` : d.key;
  return d.errorsTo ? `${base} errorsTo=${d.errorsTo}` : base;
}

async function setup(aliases: string): Promise<TestEnv> {
  const env = makeTestEnv();
  env.write('aliases', aliases);
  await compileAliases(env.config);
  return env;
}

function expand(env: TestEnv, address: string): string[] {
  const aliases = openAliases(env.config);
  try {
    return expandRecipient({ config: env.config, aliases, localDomains: localDomains(env.config) }, address).map(show);
  } finally {
    aliases.close();
  }
}

function expandFull(env: TestEnv, address: string): Destination[] {
  const aliases = openAliases(env.config);
  try {
    return expandRecipient({ config: env.config, aliases, localDomains: localDomains(env.config) }, address);
  } finally {
    aliases.close();
  }
}

function withAliases(text: string, fn: (env: TestEnv) => void | Promise<void>) {
  return async () => {
    const env = await setup(text);
    try {
      await fn(env);
    } finally {
      env.cleanup();
    }
  };
}

const HOME = (env: TestEnv, user: string) => path.join(env.dir, 'home', user);

test('a local user, with or without a local domain, in any case', withAliases('', (env) => {
  assert.deepEqual(expand(env, 'alice'), ['local:alice']);
  assert.deepEqual(expand(env, 'Alice@MX.example.org'), ['local:alice']);
  assert.deepEqual(expand(env, 'alice@example.org'), ['local:alice']); // local-host-names
  assert.deepEqual(expand(env, '<alice@localhost>'), ['local:alice']);
  const [d] = expandFull(env, 'ALICE@localhost');
  assert.ok(d.kind === 'local');
  assert.equal(d.user.uid, 1001);
  assert.equal(d.address, 'alice@mx.example.org');
  assert.equal(d.original, 'ALICE@localhost');
}));

test('an unknown local name is 5.1.1 User unknown; remote domains pass through', withAliases('list: ghost\n', (env) => {
  const [d] = expandFull(env, 'nosuch@localhost');
  assert.ok(d.kind === 'error');
  assert.deepEqual(d.status, { status: '5.1.1', text: 'User unknown' });
  assert.equal(d.address, 'nosuch@localhost'); // the recipient as given: the DSN's Final-Recipient
  assert.deepEqual(expand(env, 'list'), ['error:5.1.1:ghost@mx.example.org']);
  assert.deepEqual(expand(env, 'Bob@Example.COM'), ['remote:Bob@example.com']);
}));

test('aliases expand recursively, case-insensitively, without duplicates', withAliases(
  'Staff: alice, team, bob@example.com\nteam: bob, alice, carol@localhost\nall: staff, team\n',
  (env) => {
    assert.deepEqual(expand(env, 'STAFF'), ['local:alice', 'local:bob', 'local:carol', 'remote:bob@example.com']);
    assert.deepEqual(expand(env, 'all@example.org'), ['local:alice', 'local:bob', 'local:carol', 'remote:bob@example.com']);
  },
));

test('a loop is 5.4.6 for the looping member; the rest is delivered', withAliases('a: b, alice\nb: a, bob\n', (env) => {
  assert.deepEqual(expand(env, 'a'), ['error:5.4.6:a@mx.example.org', 'local:bob', 'local:alice']);
}));

test('a list naming itself means that user\'s mailbox (bob: bob, bob@elsewhere)', withAliases(
  'bob: bob, bob@elsewhere.example\nalice: \\alice, alice@localhost\n',
  (env) => {
    assert.deepEqual(expand(env, 'bob'), ['local:bob', 'remote:bob@elsewhere.example']);
    assert.deepEqual(expand(env, 'alice'), ['local:alice']);
  },
));

test('nesting deeper than MAX_DEPTH is broken off with 5.4.6', withAliases(
  Array.from({ length: 12 }, (_, i) => `l${i}: l${i + 1}`).join('\n') + '\nl12: alice\n',
  (env) => {
    const out = expand(env, 'l0');
    assert.equal(out.length, 1);
    assert.match(out[0], /^error:5\.4\.6:l11@mx\.example\.org$/);
    assert.match(expandFull(env, 'l0')[0].kind === 'error' ? JSON.stringify(expandFull(env, 'l0')[0]) : '', /11 aliases deep; 10 max/);
    assert.deepEqual(expand(env, 'l3'), ['local:alice']); // ten aliases deep is allowed (sendmail)
    assert.deepEqual(expand(env, 'l2'), ['error:5.4.6:alice@mx.example.org']);
  },
));

test('\\user skips aliases and .forward', withAliases('alice: carol\nlist: \\alice\n', (env) => {
  env.write('home/alice/.forward', 'bob\n');
  assert.deepEqual(expand(env, 'list'), ['local:alice']);
  assert.deepEqual(expand(env, 'alice'), ['local:carol']);
}));

test('programs and files from a root-owned alias file run as default_privs, never root', withAliases(
  'prog: "|/usr/bin/filter -x", /var/log/archive\n',
  (env) => {
    const ds = expandFull(env, 'prog');
    assert.deepEqual(ds.map(show), ['prog:nobody:/usr/bin/filter -x', 'file:/var/log/archive']);
    for (const d of ds) {
      assert.ok(d.kind === 'program' || d.kind === 'file');
      assert.notEqual(d.runAs.uid, 0);
      assert.equal(d.runAs.name, 'nobody');
    }
  },
));

test('programs from an alias file owned by a user run as that user', withAliases('prog: "|/usr/bin/filter"\n', (env) => {
  fs.chownSync(env.config.aliasFile, 1002, 1002);
  assert.deepEqual(expand(env, 'prog'), ['prog:bob:/usr/bin/filter']);
}));

test('mail directly to programs or files is refused', withAliases('', (env) => {
  assert.deepEqual(expand(env, '|/bin/sh'), ['error:5.7.1:|/bin/sh']);
  assert.deepEqual(expand(env, '/etc/passwd'), ['error:5.7.1:/etc/passwd']);
  assert.deepEqual(expand(env, '"|/bin/sh"@localhost'), ['error:5.1.1:"|/bin/sh"@localhost']);
}));

test(':include: files: members, comments, owner as runAs', withAliases('', async (env) => {
  const inc = env.write('lists/staff', '# staff list\nalice, bob\n\n"|/usr/bin/archive staff"\nfriend@example.com\n');
  env.write('aliases', `list: :include:${inc}, carol\n`);
  await compileAliases(env.config);
  assert.deepEqual(expand(env, 'list'), ['local:alice', 'local:bob', 'prog:nobody:/usr/bin/archive staff', 'remote:friend@example.com', 'local:carol']);
  fs.chownSync(inc, 1001, 1001);
  assert.deepEqual(expand(env, 'list')[2], 'prog:alice:/usr/bin/archive staff');
}));

test('a world-writable :include: file may name addresses but not programs or files', withAliases('', async (env) => {
  const inc = env.write('lists/open', 'alice\n"|/usr/bin/evil"\n/tmp/x\n', 0o666);
  env.write('aliases', `open: :include:${inc}\n`);
  await compileAliases(env.config);
  assert.deepEqual(expand(env, 'open'), ['local:alice', 'error:5.7.1:|/usr/bin/evil', 'error:5.7.1:/tmp/x']);
}));

test('a missing :include: file defers (4.3.5): the list stays, the admin fixes it', withAliases('', async (env) => {
  env.write('aliases', `list: :include:${env.dir}/nope, alice\n`);
  await compileAliases(env.config);
  const ds = expandFull(env, 'list');
  assert.deepEqual(ds.map(show), [`error:4.3.5::include:${env.dir}/nope`, 'local:alice']);
}));

test('an :include: file that includes itself is a loop', withAliases('', async (env) => {
  const inc = path.join(env.dir, 'lists/self');
  env.write('lists/self', `alice, :include:${inc}\n`);
  env.write('aliases', `self: :include:${inc}\n`);
  await compileAliases(env.config);
  assert.deepEqual(expand(env, 'self'), ['local:alice', `error:5.4.6::include:${inc}`]);
}));

test('.forward: forwards, keeps a copy with \\user, and runs programs as its user', withAliases('', (env) => {
  env.write('home/alice/.forward', '\\alice, alice@elsewhere.example, "|/usr/bin/vacation alice"\n');
  const ds = expandFull(env, 'alice');
  assert.deepEqual(ds.map(show), ['local:alice', 'remote:alice@elsewhere.example', 'prog:alice:/usr/bin/vacation alice']);
  const prog = ds[2];
  assert.ok(prog.kind === 'program' && prog.runAs.uid === 1001);
}));

test('.forward naming its own user delivers here; an empty one delivers here too', withAliases('', (env) => {
  env.write('home/alice/.forward', 'alice\nbob\n');
  assert.deepEqual(expand(env, 'alice'), ['local:alice', 'local:bob']);
  env.write('home/alice/.forward', '# nothing\n\n');
  assert.deepEqual(expand(env, 'alice'), ['local:alice']);
}));

test('.forward is ignored when another user owns it or group/others can write it', withAliases('', (env) => {
  const fwd = env.write('home/alice/.forward', 'bob\n');
  fs.chownSync(fwd, 1003, 1003);
  assert.deepEqual(expand(env, 'alice'), ['local:alice']);
  fs.chownSync(fwd, 1001, 1001);
  fs.chmodSync(fwd, 0o664);
  assert.deepEqual(expand(env, 'alice'), ['local:alice']);
  fs.chmodSync(fwd, 0o644);
  assert.deepEqual(expand(env, 'alice'), ['local:bob']);
  assert.match(env.logText(), /forward .*\.forward: owned by uid 1003/);
  assert.match(env.logText(), /group or world writable forward file, ignored/);
}));

test('.forward loops between users are 5.4.6', withAliases('', (env) => {
  env.write('home/alice/.forward', 'bob\n');
  env.write('home/bob/.forward', 'alice\n');
  assert.deepEqual(expand(env, 'alice'), ['error:5.4.6:alice@mx.example.org']);
}));

test('root\'s .forward programs run as default_privs', withAliases('', (env) => {
  fs.mkdirSync(HOME(env, 'root'), { recursive: true });
  // root's home in the test passwd is /root; point forward_path at a test file instead.
  const cfg = { ...env.config, forwardPath: `${env.dir}/fwd/$USER` };
  env.write('fwd/root', '"|/usr/bin/rootfilter"\n');
  const aliases = openAliases(cfg);
  const ds = expandRecipient({ config: cfg, aliases, localDomains: localDomains(cfg) }, 'root');
  aliases.close();
  assert.deepEqual(ds.map(show), ['prog:nobody:/usr/bin/rootfilter']);
}));

test('owner-LIST receives the errors of LIST\'s members; inner lists may have their own', withAliases(
  'list: alice, sub, nosuch\nowner-list: carol\nsub: bob\nouter: list, bob@example.com\ninner: bob\nowner-inner: alice\nwrap: inner\n',
  (env) => {
    assert.deepEqual(expand(env, 'list'), [
      'local:alice errorsTo=owner-list@mx.example.org',
      'local:bob errorsTo=owner-list@mx.example.org',
      'error:5.1.1:nosuch@mx.example.org errorsTo=owner-list@mx.example.org',
    ]);
    assert.deepEqual(expand(env, 'outer')[3], 'remote:bob@example.com');
    assert.deepEqual(expand(env, 'wrap'), ['local:bob errorsTo=owner-inner@mx.example.org']);
  },
));

test('keys name final targets as types.ts says', withAliases('t: alice, bob@example.com, "|/bin/x", /var/tmp/../tmp/f\n', (env) => {
  const keys = expandFull(env, 't').map((d) => d.key);
  assert.deepEqual(keys, ['local:alice', 'remote:bob@example.com', 'prog:nobody:/bin/x', 'file:/var/tmp/f']);
}));

test('without a compiled database, expansion reads the source', async () => {
  const env = makeTestEnv();
  try {
    env.write('aliases', 'postmaster: root\nroot: alice\n');
    assert.deepEqual(expand(env, 'postmaster'), ['local:alice']);
  } finally {
    env.cleanup();
  }
});
