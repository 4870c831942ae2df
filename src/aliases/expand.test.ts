import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { localDomains } from '../config/index.ts';
import { type Destination, type ListReader, compileAliases, expandRecipient, inProcessLists, openAliases } from './index.ts';
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

async function expand(env: TestEnv, address: string, lists: ListReader = inProcessLists): Promise<string[]> {
  return (await expandFull(env, address, lists)).map(show);
}

async function expandFull(env: TestEnv, address: string, lists: ListReader = inProcessLists, config = env.config): Promise<Destination[]> {
  const aliases = openAliases(config);
  try {
    return await expandRecipient({ config, aliases, localDomains: localDomains(config), lists }, address);
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
/** Files owned by root and by the test's users (as the rules about owners need) can only be made by root. */
const ROOT_ONLY = { skip: process.geteuid?.() !== 0 && 'needs root: the files must belong to root and to other users' };

test('a local user, with or without a local domain, in any case', withAliases('', async (env) => {
  assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
  assert.deepEqual(await expand(env, 'Alice@MX.example.org'), ['local:alice']);
  assert.deepEqual(await expand(env, 'alice@example.org'), ['local:alice']); // local-host-names
  assert.deepEqual(await expand(env, '<alice@localhost>'), ['local:alice']);
  const [d] = await expandFull(env, 'ALICE@localhost');
  assert.ok(d.kind === 'local');
  assert.equal(d.user.uid, 41001);
  assert.equal(d.address, 'alice@mx.example.org');
  assert.equal(d.original, 'ALICE@localhost');
}));

test('an unknown local name is 5.1.1 User unknown; remote domains pass through', withAliases('list: ghost\n', async (env) => {
  const [d] = await expandFull(env, 'nosuch@localhost');
  assert.ok(d.kind === 'error');
  assert.deepEqual(d.status, { status: '5.1.1', text: 'User unknown' });
  assert.equal(d.address, 'nosuch@localhost'); // the recipient as given: the DSN's Final-Recipient
  assert.deepEqual(await expand(env, 'list'), ['error:5.1.1:ghost@mx.example.org']);
  assert.deepEqual(await expand(env, 'Bob@Example.COM'), ['remote:Bob@example.com']);
}));

test('aliases expand recursively, case-insensitively, without duplicates', withAliases(
  'Staff: alice, team, bob@example.com\nteam: bob, alice, carol@localhost\nall: staff, team\n',
  async (env) => {
    assert.deepEqual(await expand(env, 'STAFF'), ['local:alice', 'local:bob', 'local:carol', 'remote:bob@example.com']);
    assert.deepEqual(await expand(env, 'all@example.org'), ['local:alice', 'local:bob', 'local:carol', 'remote:bob@example.com']);
  },
));

test('a loop is 5.4.6 for the looping member; the rest is delivered', withAliases('a: b, alice\nb: a, bob\n', async (env) => {
  assert.deepEqual(await expand(env, 'a'), ['error:5.4.6:a@mx.example.org', 'local:bob', 'local:alice']);
}));

test('a list naming itself means that user\'s mailbox (bob: bob, bob@elsewhere)', withAliases(
  'bob: bob, bob@elsewhere.example\nalice: \\alice, alice@localhost\n',
  async (env) => {
    assert.deepEqual(await expand(env, 'bob'), ['local:bob', 'remote:bob@elsewhere.example']);
    assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
  },
));

test('nesting deeper than MAX_DEPTH is broken off with 5.4.6', withAliases(
  Array.from({ length: 12 }, (_, i) => `l${i}: l${i + 1}`).join('\n') + '\nl12: alice\n',
  async (env) => {
    const out = await expand(env, 'l0');
    assert.equal(out.length, 1);
    assert.match(out[0], /^error:5\.4\.6:l11@mx\.example\.org$/);
    const [deep] = await expandFull(env, 'l0');
    assert.ok(deep.kind === 'error');
    assert.match(deep.status.text, /11 aliases deep; 10 max/);
    assert.deepEqual(await expand(env, 'l3'), ['local:alice']); // ten aliases deep is allowed (sendmail)
    assert.deepEqual(await expand(env, 'l2'), ['error:5.4.6:alice@mx.example.org']);
  },
));

test('\\user skips aliases and .forward', ROOT_ONLY, withAliases('alice: carol\nlist: \\alice\n', async (env) => {
  env.write('home/alice/.forward', 'bob\n');
  assert.deepEqual(await expand(env, 'list'), ['local:alice']);
  assert.deepEqual(await expand(env, 'alice'), ['local:carol']);
}));

test('programs and files from a root-owned alias file run as default_privs, never root', ROOT_ONLY, withAliases(
  'prog: "|/usr/bin/filter -x", /var/log/archive\n',
  async (env) => {
    const ds = await expandFull(env, 'prog');
    assert.deepEqual(ds.map(show), ['prog:nobody:/usr/bin/filter -x', 'file:/var/log/archive']);
    for (const d of ds) {
      assert.ok(d.kind === 'program' || d.kind === 'file');
      assert.notEqual(d.runAs.uid, 0);
      assert.equal(d.runAs.name, 'nobody');
    }
  },
));

test('programs from an alias file owned by a user run as that user', ROOT_ONLY, withAliases('prog: "|/usr/bin/filter"\n', async (env) => {
  fs.chownSync(env.config.aliasFile, 41002, 41002);
  assert.deepEqual(await expand(env, 'prog'), ['prog:bob:/usr/bin/filter']);
}));

test('mail directly to programs or files is refused', withAliases('', async (env) => {
  assert.deepEqual(await expand(env, '|/bin/sh'), ['error:5.7.1:|/bin/sh']);
  assert.deepEqual(await expand(env, '/etc/passwd'), ['error:5.7.1:/etc/passwd']);
  assert.deepEqual(await expand(env, '"|/bin/sh"@localhost'), ['error:5.1.1:"|/bin/sh"@localhost']);
}));

test(':include: files: members, comments, owner as runAs', ROOT_ONLY, withAliases('', async (env) => {
  const inc = env.write('lists/staff', '# staff list\nalice, bob\n\n"|/usr/bin/archive staff"\nfriend@example.com\n');
  env.write('aliases', `list: :include:${inc}, carol\n`);
  await compileAliases(env.config);
  assert.deepEqual(await expand(env, 'list'), ['local:alice', 'local:bob', 'prog:nobody:/usr/bin/archive staff', 'remote:friend@example.com', 'local:carol']);
  fs.chownSync(inc, 41001, 41001);
  assert.deepEqual((await expand(env, 'list'))[2], 'prog:alice:/usr/bin/archive staff');
}));

test('a world-writable :include: file may name addresses but not programs or files', withAliases('', async (env) => {
  const inc = env.write('lists/open', 'alice\n"|/usr/bin/evil"\n/tmp/x\n', 0o666);
  env.write('aliases', `open: :include:${inc}\n`);
  await compileAliases(env.config);
  assert.deepEqual(await expand(env, 'open'), ['local:alice', 'error:5.7.1:|/usr/bin/evil', 'error:5.7.1:/tmp/x']);
}));

test('a missing :include: file defers (4.3.5): the list stays, the admin fixes it', withAliases('', async (env) => {
  env.write('aliases', `list: :include:${env.dir}/nope, alice\n`);
  await compileAliases(env.config);
  const ds = await expandFull(env, 'list');
  assert.deepEqual(ds.map(show), [`error:4.3.5::include:${env.dir}/nope`, 'local:alice']);
}));

test('an :include: file that includes itself is a loop', withAliases('', async (env) => {
  const inc = path.join(env.dir, 'lists/self');
  env.write('lists/self', `alice, :include:${inc}\n`);
  env.write('aliases', `self: :include:${inc}\n`);
  await compileAliases(env.config);
  assert.deepEqual(await expand(env, 'self'), ['local:alice', `error:5.4.6::include:${inc}`]);
}));

test('.forward: forwards, keeps a copy with \\user, and runs programs as its user', ROOT_ONLY, withAliases('', async (env) => {
  env.write('home/alice/.forward', '\\alice, alice@elsewhere.example, "|/usr/bin/vacation alice"\n');
  const ds = await expandFull(env, 'alice');
  assert.deepEqual(ds.map(show), ['local:alice', 'remote:alice@elsewhere.example', 'prog:alice:/usr/bin/vacation alice']);
  const prog = ds[2];
  assert.ok(prog.kind === 'program' && prog.runAs.uid === 41001);
}));

test('.forward naming its own user delivers here; an empty one delivers here too', ROOT_ONLY, withAliases('', async (env) => {
  env.write('home/alice/.forward', 'alice\nbob\n');
  assert.deepEqual(await expand(env, 'alice'), ['local:alice', 'local:bob']);
  env.write('home/alice/.forward', '# nothing\n\n');
  assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
}));

test('.forward is ignored when another user owns it or group/others can write it', ROOT_ONLY, withAliases('', async (env) => {
  const fwd = env.write('home/alice/.forward', 'bob\n');
  fs.chownSync(fwd, 41003, 41003);
  assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
  fs.chownSync(fwd, 41001, 41001);
  fs.chmodSync(fwd, 0o664);
  assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
  fs.chmodSync(fwd, 0o644);
  assert.deepEqual(await expand(env, 'alice'), ['local:bob']);
  assert.match(env.logText(), /forward .*\.forward: owned by uid 41003/);
  assert.match(env.logText(), /forward .*\.forward: group or world writable; ignored/);
}));

test('.forward loops between users are 5.4.6', ROOT_ONLY, withAliases('', async (env) => {
  env.write('home/alice/.forward', 'bob\n');
  env.write('home/bob/.forward', 'alice\n');
  assert.deepEqual(await expand(env, 'alice'), ['error:5.4.6:alice@mx.example.org']);
}));

test('root\'s .forward programs run as default_privs', ROOT_ONLY, withAliases('', async (env) => {
  fs.mkdirSync(HOME(env, 'root'), { recursive: true });
  // root's home in the test passwd is /root; point forward_path at a test file instead.
  const cfg = { ...env.config, forwardPath: `${env.dir}/fwd/$USER` };
  env.write('fwd/root', '"|/usr/bin/rootfilter"\n');
  const ds = await expandFull(env, 'root', inProcessLists, cfg);
  assert.deepEqual(ds.map(show), ['prog:nobody:/usr/bin/rootfilter']);
}));

test('owner-LIST receives the errors of LIST\'s members; inner lists may have their own', withAliases(
  'list: alice, sub, nosuch\nowner-list: carol\nsub: bob\nouter: list, bob@example.com\ninner: bob\nowner-inner: alice\nwrap: inner\n',
  async (env) => {
    assert.deepEqual(await expand(env, 'list'), [
      'local:alice errorsTo=owner-list@mx.example.org',
      'local:bob errorsTo=owner-list@mx.example.org',
      'error:5.1.1:nosuch@mx.example.org errorsTo=owner-list@mx.example.org',
    ]);
    assert.deepEqual((await expand(env, 'outer'))[3], 'remote:bob@example.com');
    assert.deepEqual(await expand(env, 'wrap'), ['local:bob errorsTo=owner-inner@mx.example.org']);
  },
));

test('keys name final targets as types.ts says', ROOT_ONLY, withAliases('t: alice, bob@example.com, "|/bin/x", /var/tmp/../tmp/f\n', async (env) => {
  const keys = (await expandFull(env, 't')).map((d) => d.key);
  assert.deepEqual(keys, ['local:alice', 'remote:bob@example.com', 'prog:nobody:/bin/x', 'file:/var/tmp/f']);
}));

test('without a compiled database, expansion reads the source', ROOT_ONLY, async () => {
  const env = makeTestEnv();
  try {
    env.write('aliases', 'postmaster: root\nroot: alice\n');
    assert.deepEqual(await expand(env, 'postmaster'), ['local:alice']);
  } finally {
    env.cleanup();
  }
});

// ---- who reads a user's files, and who runs what they name ----------------
// Rules: a user's .forward, and the :include: files it (or an include file of
// theirs) names, are read as that user and must be owned by them or root and
// not group or world writable; their programs run as that user. An :include:
// of the system alias file is read by this process and may have any owner.

/** A ListReader that notes which identity each file is asked for, then reads in process. */
function recordingLists(calls: string[]): ListReader {
  return {
    forward(user, file) {
      calls.push(`forward ${file} as ${user.name}`);
      return inProcessLists.forward(user, file);
    },
    include(file, as) {
      calls.push(`include ${file} as ${as?.name ?? 'this process'}`);
      return inProcessLists.include(file, as);
    },
  };
}

/** A file under env.dir owned by uid, with mode. */
function owned(env: TestEnv, rel: string, text: string, uid: number, mode = 0o644): string {
  const p = env.write(rel, text, mode);
  fs.chownSync(p, uid, uid);
  return p;
}

test('a .forward and what it includes are asked for as its user; the system\'s lists as this process', ROOT_ONLY, withAliases('', async (env) => {
  const bobInc = owned(env, 'lists/bob-inner', 'dave@example.com\n', 41002);
  const sys = owned(env, 'lists/sys', `:include:${bobInc}, carol\n`, 41002);
  const deeper = owned(env, 'home/alice/deeper', 'x@example.com\n', 41001);
  const aliceInc = env.write('lists/root-for-alice', `:include:${deeper}\n`);
  const fwd = owned(env, 'home/alice/.forward', `:include:${aliceInc}, \\alice\n`, 41001);
  env.write('aliases', `list: :include:${sys}, alice\n`);
  await compileAliases(env.config);
  const calls: string[] = [];
  assert.deepEqual(await expand(env, 'list', recordingLists(calls)), ['remote:dave@example.com', 'local:carol', 'remote:x@example.com', 'local:alice']);
  assert.deepEqual(calls, [
    `include ${sys} as this process`,
    `include ${bobInc} as bob`, // named by bob's file: read as bob
    `forward ${HOME(env, 'carol')}/.forward as carol`,
    `forward ${fwd} as alice`,
    `include ${aliceInc} as alice`,
    `include ${deeper} as alice`, // named by a root-owned file reached from alice's .forward: still alice
  ]);
}));

test('from a .forward, another user\'s include file is refused: its programs never run as its owner', ROOT_ONLY, withAliases('', async (env) => {
  const bobs = owned(env, 'home/bob/list', '"|/usr/bin/bobprog"\ncarol\n', 41002);
  owned(env, 'home/alice/.forward', `:include:${bobs}, \\alice\n`, 41001);
  const ds = await expandFull(env, 'alice');
  assert.deepEqual(ds.map(show), [`error:4.3.5::include:${bobs}`, 'local:alice']);
  assert.ok(ds[0].kind === 'error');
  assert.equal(ds[0].status.text, `cannot use :include: file ${bobs}: owned by uid 41002, not by alice (whose file named it) or root`);
  assert.match(env.logText(), new RegExp(`include ${bobs}: owned by uid 41002, not by alice \\(whose file named it\\) or root; ignored`));
}));

test('from a .forward, a root-owned include file\'s programs and files run as the .forward\'s user', ROOT_ONLY, withAliases('', async (env) => {
  const inc = env.write('lists/filters', '"|/usr/bin/filter"\n/var/tmp/alice-archive\n');
  owned(env, 'home/alice/.forward', `:include:${inc}\n`, 41001);
  const ds = await expandFull(env, 'alice');
  assert.deepEqual(ds.map(show), ['prog:alice:/usr/bin/filter', 'file:/var/tmp/alice-archive']);
  for (const d of ds) assert.ok((d.kind === 'program' || d.kind === 'file') && d.runAs.uid === 41001);
}));

test('from a .forward, a group- or world-writable include file is refused, not merely unsafe', ROOT_ONLY, withAliases('', async (env) => {
  const inc = owned(env, 'home/alice/list', 'bob\n"|/usr/bin/x"\n', 41001, 0o664);
  owned(env, 'home/alice/.forward', `:include:${inc}\n`, 41001);
  assert.deepEqual(await expand(env, 'alice'), [`error:4.3.5::include:${inc}`]);
  assert.match(env.logText(), new RegExp(`include ${inc}: group or world writable; ignored`));
}));

test('a root-only include file named from a .forward fails without its content reaching the result or the log', ROOT_ONLY, withAliases('', async (env) => {
  const secret = 'secret-7f3a@example.org';
  const inc = env.write('lists/root-only', `${secret}\n"|/bin/${secret}"\nnot an address ${secret}\n`, 0o600);
  owned(env, 'home/alice/.forward', `:include:${inc}\n`, 41001);
  const ds = await expandFull(env, 'alice');
  assert.deepEqual(ds.map(show), [`error:4.3.5::include:${inc}`]);
  assert.ok(!JSON.stringify(ds).includes(secret), JSON.stringify(ds));
  assert.ok(!env.logText().includes('secret-'), env.logText());
  assert.match(env.logText(), new RegExp(`include ${inc}: permission denied to alice; ignored`));
}));

test('a .forward with more than one link, or a symbolic link, is ignored and the rule logged', ROOT_ONLY, withAliases('', async (env) => {
  const fwd = owned(env, 'home/alice/.forward', 'bob\n', 41001);
  fs.linkSync(fwd, path.join(HOME(env, 'alice'), 'other-name'));
  assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
  assert.match(env.logText(), new RegExp(`forward ${fwd}: has 2 links; ignored`));
  fs.rmSync(fwd);
  fs.symlinkSync(path.join(HOME(env, 'alice'), 'other-name'), fwd);
  assert.deepEqual(await expand(env, 'alice'), ['local:alice']);
  assert.match(env.logText(), new RegExp(`forward ${fwd}: a symbolic link; ignored`));
}));

test('a system list owned by a user reads its includes as that user, and their programs run as that user', ROOT_ONLY, withAliases('', async (env) => {
  const carols = owned(env, 'lists/carol', '"|/usr/bin/carolprog"\n', 41003);
  const roots = env.write('lists/root', '"|/usr/bin/rootprog"\n');
  const bobs = owned(env, 'lists/bob', `:include:${carols}, :include:${roots}\n`, 41002);
  env.write('aliases', `list: :include:${bobs}\n`);
  await compileAliases(env.config);
  assert.deepEqual(await expand(env, 'list'), [`error:4.3.5::include:${carols}`, 'prog:bob:/usr/bin/rootprog']);
}));

test('a world-writable system include may not :include: others; one owned by no user may not either', ROOT_ONLY, withAliases('', async (env) => {
  const inner = env.write('lists/inner', 'bob\n');
  const open = env.write('lists/open', `alice, :include:${inner}\n`, 0o666);
  const orphan = owned(env, 'lists/orphan', `carol, :include:${inner}\n`, 54321);
  env.write('aliases', `open: :include:${open}\norphan: :include:${orphan}\n`);
  await compileAliases(env.config);
  assert.deepEqual(await expand(env, 'open'), ['local:alice', `error:5.7.1::include:${inner}`]);
  const ds = await expandFull(env, 'orphan');
  assert.deepEqual(ds.map(show), ['local:carol', `error:4.3.5::include:${inner}`]);
  assert.ok(ds[1].kind === 'error');
  assert.equal(ds[1].status.text, `${orphan}: owned by uid 54321, which is no user, so the :include: files it names cannot be read`);
}));

test('postmaster is accepted with no alias naming it: root\'s mailbox (RFC 5321 4.5.1)', async () => {
  const env = makeTestEnv();
  try {
    env.write('aliases', 'root: alice\n');
    assert.deepEqual(await expand(env, 'postmaster'), ['local:alice'], 'as if "postmaster: root": root\'s own alias applies');
    assert.deepEqual(await expand(env, 'Postmaster@localhost'), ['local:alice']);
    env.write('aliases', '');
    assert.deepEqual(await expand(env, 'postmaster'), ['local:root']);
    assert.deepEqual(await expand(env, 'nobody-here'), ['error:5.1.1:nobody-here']);
  } finally {
    env.cleanup();
  }
});
