// rewriteMbox: the exact bytes kept, headers replaced, owner/mode/inode kept,
// refusal when the file changed, mail appended meanwhile kept, appenders in
// other processes racing many rewrites (nothing lost, nothing twice), a crash
// (SIGKILL) after every step followed by new mail and recovery, the
// dotlockfile(1) fallback for a user who cannot write the spool directory,
// and where backups may live: never in /tmp, only in a directory of the
// mailbox's owner that no one else can write; a backup planted anywhere else,
// or owned by someone else, is ignored and the mailbox keeps its bytes.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, test } from 'node:test';
import { MailError } from '../message/status.ts';
import { checkoutClosedToOthers, isRoot, makeEnv, sampleMessage, type TestEnv } from './fixtures/env.ts';
import { planKeep } from './fixtures/rewrite-child.ts';
import {
  acquireMailboxLock,
  appendToMbox,
  backupPath,
  mboxPath,
  openFolder,
  pendingRewrite,
  readFlags,
  recoverRewrite,
  rewriteMbox,
  scanMbox,
  scanMboxHeaders,
  withFlags,
} from './index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const TSX = ['--import', 'tsx'];
let envs: TestEnv[] = [];
function env(): TestEnv {
  const e = makeEnv();
  envs.push(e);
  return e;
}
afterEach(() => {
  for (const e of envs) e.cleanup();
  envs = [];
});

const msg = (id: string, body?: string) => ({ sender: 'a@example.org', recipient: 'alice@test.example', data: sampleMessage(id, body) });
const ids = (text: string) => [...text.matchAll(/^X-Id: (\S+)$/gm)].map((m) => m[1]);

async function filled(e: TestEnv, n: number): Promise<string> {
  await appendToMbox(e.config, e.user('alice'), Array.from({ length: n }, (_, i) => msg(`m${i}`, `From body ${i}\nline\n`)));
  return mboxPath(e.config, 'alice');
}

test('keeps the chosen messages byte for byte, replaces headers, keeps owner, mode and inode', async () => {
  const e = env();
  const file = await filled(e, 5);
  if (isRoot()) fs.chownSync(file, 2001, 2001);
  fs.chmodSync(file, 0o620);
  const before = fs.statSync(file);
  const old = fs.readFileSync(file);
  const { index, headers } = await scanMboxHeaders(file);
  const m = index.messages;
  const keep = [{ entry: m[0] }, { entry: m[2], headers: withFlags(headers[2], { ...readFlags(headers[2]), read: true, old: true }) }, { entry: m[4] }];
  const r = await rewriteMbox(file, index, keep, { backupDir: e.dir });
  assert.deepEqual(r, { kept: 3, appendedMeanwhile: 0 });
  const slice = (x: (typeof m)[0]) => old.subarray(x.offset, x.offset + x.length + 1).toString();
  const h2 = headers[2].toString().replace(/\n$/, 'Status: RO\n\n');
  const m2 = slice(m[2]).replace(headers[2].toString(), h2);
  assert.equal(fs.readFileSync(file, 'utf8'), slice(m[0]) + m2 + slice(m[4]));
  const after = fs.statSync(file);
  assert.deepEqual([after.ino, after.uid, after.gid, after.mode], [before.ino, before.uid, before.gid, before.mode]);
  assert.equal(fs.existsSync(backupPath(file, e.dir)), false, 'backup removed');
  assert.equal(fs.existsSync(`${file}.lock`), false, 'lock released');
  const again = await scanMbox(file);
  assert.deepEqual(ids(fs.readFileSync(file, 'utf8')), ['m0', 'm2', 'm4']);
  assert.equal(again.messages.length, 3);
});

test('keeping everything unchanged writes nothing; deleting all leaves an empty file', async () => {
  const e = env();
  const file = await filled(e, 3);
  const old = fs.readFileSync(file);
  let index = await scanMbox(file);
  await rewriteMbox(file, index, index.messages.map((entry) => ({ entry })), { backupDir: e.dir });
  assert.deepEqual(fs.readFileSync(file), old);
  index = await scanMbox(file);
  await rewriteMbox(file, index, [], { backupDir: e.dir });
  assert.equal(fs.statSync(file).size, 0);
});

test('a file that changed under us is refused and left as it is', async () => {
  const e = env();
  const file = await filled(e, 3);
  const index = await scanMbox(file);
  const changed = fs.readFileSync(file, 'utf8').replace('From a@example.org', 'From z@example.org');
  fs.writeFileSync(file, changed);
  await assert.rejects(rewriteMbox(file, index, [], { backupDir: e.dir }), (err) => err instanceof MailError && /changed under us/.test(err.message));
  assert.equal(fs.readFileSync(file, 'utf8'), changed);
  fs.writeFileSync(file, changed.slice(0, 50));
  await assert.rejects(rewriteMbox(file, index, [], { backupDir: e.dir }), /changed under us/);
});

test('mail appended after the scan is kept, after the kept messages', async () => {
  const e = env();
  const file = await filled(e, 4);
  const index = await scanMbox(file);
  await appendToMbox(e.config, e.user('alice'), [msg('late1'), msg('late2')]);
  const r = await rewriteMbox(file, index, [{ entry: index.messages[1] }], { backupDir: e.dir });
  assert.ok(r.appendedMeanwhile > 0);
  assert.deepEqual(ids(fs.readFileSync(file, 'utf8')), ['m1', 'late1', 'late2']);
  assert.equal((await scanMbox(file)).messages.length, 3);
});

test('a last message without its blank line, or without a final newline, gets them', async () => {
  const e = env();
  const file = path.join(e.dir, 'raw');
  fs.writeFileSync(file, 'From a Mon Jan  1 00:00:00 2024\nX-Id: a\n\nA\n\nFrom b Mon Jan  1 00:00:00 2024\nX-Id: b\n\nno newline');
  const index = await scanMbox(file);
  await rewriteMbox(file, index, [{ entry: index.messages[1] }, ], { backupDir: e.dir });
  assert.equal(fs.readFileSync(file, 'utf8'), 'From b Mon Jan  1 00:00:00 2024\nX-Id: b\n\nno newline\n\n');
});

function runChild(args: string[]): Promise<number | string | null> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [...TSX, ...args], { stdio: ['ignore', 'ignore', 'inherit'], cwd: path.resolve(here, '../..') });
    c.on('close', (code, sig) => resolve(code ?? sig));
  });
}

test('appenders in other processes racing repeated rewrites: nothing lost, nothing twice', async () => {
  const e = env();
  const file = await filled(e, 2);
  const children = [0, 1, 2, 3].map((c) => runChild([path.join(here, 'fixtures/append-child.ts'), e.confFile, 'alice', String(c), '8', '3']));
  let done = false;
  const all = Promise.all(children).then((codes) => {
    done = true;
    return codes;
  });
  let rewrites = 0;
  const dropM0 = async () => {
    const { index, headers } = await scanMboxHeaders(file);
    const keep = index.messages.map((entry, i) => ({ entry, h: headers[i].toString() })).filter((x) => !/X-Id: c\d-r\d+-m0\n/.test(x.h));
    await rewriteMbox(file, index, keep.map(({ entry }) => ({ entry })), { backupDir: e.dir });
    rewrites++;
  };
  while (!done) await dropM0();
  assert.deepEqual(await all, [0, 0, 0, 0]);
  await dropM0();
  const got = ids(fs.readFileSync(file, 'utf8')).sort();
  const want = ['m0', 'm1'];
  for (let c = 0; c < 4; c++) for (let j = 0; j < 8; j++) for (const k of [1, 2]) want.push(`c${c}-r${j}-m${k}`);
  assert.deepEqual(got, want.sort(), `after ${rewrites} rewrites`);
  assert.equal((await scanMbox(file)).messages.length, want.length);
});

for (const plan of ['shrink', 'grow']) {
  for (const step of ['backup-written', 'grown', 'written', 'truncated']) {
    test(`killed after "${step}" (${plan}), new mail arrives, recovery gives the new content plus that mail`, async () => {
      const e = env();
      const file = await filled(e, 6);
      const ref = path.join(e.dir, 'ref');
      fs.copyFileSync(file, ref);
      const r = await planKeep(ref, plan);
      await rewriteMbox(ref, r.index, r.keep, { backupDir: e.dir });
      const status = await runChild([path.join(here, 'fixtures/rewrite-child.ts'), file, e.dir, step, plan]);
      const crashed = status === 'SIGKILL';
      assert.ok(crashed || status === 0, `child: ${status}`);
      fs.rmSync(`${file}.lock`, { force: true }); // what a waiting deliverer does with a stale lock
      const sizeBefore = fs.statSync(file).size;
      await appendToMbox(e.config, e.user('alice'), [msg('after-crash')]);
      const arrived = fs.readFileSync(file).subarray(sizeBefore);
      const lock = await acquireMailboxLock(file);
      try {
        assert.equal(recoverRewrite(file, { backupDir: e.dir }), crashed && fs.existsSync(ref) && true);
      } finally {
        lock.release();
      }
      assert.equal(fs.readFileSync(file, 'utf8'), fs.readFileSync(ref, 'utf8') + arrived.toString());
      assert.equal(fs.existsSync(backupPath(file, e.dir)), false);
    });
  }
}

test('a user who cannot write the spool directory locks through dotlockfile(1)', { skip: ((!isRoot() || spawnSync('which', ['dotlockfile']).status !== 0) && 'needs root and dotlockfile') || checkoutClosedToOthers() }, async () => {
  const e = env();
  const file = await filled(e, 3);
  const spool = path.dirname(file);
  fs.chownSync(spool, 0, Number(spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2]));
  fs.chmodSync(spool, 0o2775);
  fs.chownSync(file, 2001, 2001);
  const home = path.join(e.dir, 'home-alice');
  fs.mkdirSync(home);
  fs.chownSync(home, 2001, 2001);
  fs.chmodSync(e.dir, 0o755);
  const script = `
    import { scanMbox, rewriteMbox } from ${JSON.stringify(path.join(here, 'index.ts'))};
    const index = await scanMbox(${JSON.stringify(file)});
    await rewriteMbox(${JSON.stringify(file)}, index, [{ entry: index.messages[1] }]);
  `;
  const child = path.join(home, 'child.mts');
  fs.writeFileSync(child, script);
  const r = spawnSync(process.execPath, [...TSX, child], { uid: 2001, gid: 2001, env: { ...process.env, HOME: home }, encoding: 'utf8', cwd: path.resolve(here, '../..') });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(ids(fs.readFileSync(file, 'utf8')), ['m1']);
  assert.equal(fs.existsSync(`${file}.lock`), false);
  assert.equal(fs.statSync(file).uid, 2001);
});

// ------------------------------------------------------------ where backups may live

const EVIL = 'From evil@example.org Mon Jan  1 00:00:00 2024\nX-Id: evil\n\nplanted\n\n';

/** A backup in the real format that, replayed, replaces the whole mbox with EVIL. */
function craftBackup(file: string, at: string, owner?: { uid: number; gid: number }, mode = 0o600): void {
  const st = fs.statSync(file);
  const old = fs.readFileSync(file);
  const content = Buffer.from(EVIL);
  const t = content.length;
  const header = {
    v: 1, path: path.resolve(file), dev: st.dev, ino: st.ino, start: 0, newEnd: t, oldEnd: st.size,
    oldTail: t < st.size ? createHash('sha256').update(old.subarray(t)).digest('hex') : null,
  };
  fs.writeFileSync(at, Buffer.concat([Buffer.from(`mailtk-rewrite ${JSON.stringify(header)}\n`), content]), { mode });
  fs.chmodSync(at, mode);
  if (owner) fs.chownSync(at, owner.uid, owner.gid);
}

/** A home directory of uid 2001 (alice), 0755, and her mailbox (root only: chown). */
async function alicesHome(e: TestEnv): Promise<{ file: string; home: string }> {
  const file = await filled(e, 3);
  fs.chownSync(file, 2001, 2001);
  const home = path.join(e.dir, 'home-alice');
  fs.mkdirSync(home, { mode: 0o755 });
  fs.chownSync(home, 2001, 2001);
  return { file, home };
}

test('a backup that sits where it should and is the owner\'s is replayed (the control for the tests below)', async () => {
  const e = env();
  const file = await filled(e, 3);
  craftBackup(file, backupPath(file, e.dir));
  assert.equal(pendingRewrite(file, e.dir), true);
  const lock = await acquireMailboxLock(file);
  try {
    assert.equal(recoverRewrite(file, { backupDir: e.dir }), true);
  } finally {
    lock.release();
  }
  assert.equal(fs.readFileSync(file, 'utf8'), EVIL);
});

test('a backup planted in /tmp is never looked at: the mailbox keeps its bytes, rewrites and opens go on', async () => {
  const e = env();
  const file = await filled(e, 3);
  const planted = backupPath(file, os.tmpdir());
  craftBackup(file, planted, undefined, 0o644);
  try {
    const old = fs.readFileSync(file);
    assert.equal(pendingRewrite(file), false);
    assert.equal(pendingRewrite(file, e.dir), false);
    const lock = await acquireMailboxLock(file);
    try {
      assert.equal(recoverRewrite(file), false);
      assert.equal(recoverRewrite(file, { backupDir: e.dir }), false);
    } finally {
      lock.release();
    }
    assert.deepEqual(fs.readFileSync(file), old);
    // An IMAP/POP3 open and a full rescan do not trip over it either.
    const f = await openFolder({ mbox: file, backupDir: e.dir });
    try {
      await f.sync();
      assert.equal(f.records.length, 3);
    } finally {
      await f.release();
    }
    const index = await scanMbox(file);
    await rewriteMbox(file, index, [{ entry: index.messages[2] }], { backupDir: e.dir });
    assert.deepEqual(ids(fs.readFileSync(file, 'utf8')), ['m2']);
    assert.ok(fs.existsSync(planted), 'what is not ours is left alone');
  } finally {
    fs.rmSync(planted, { force: true });
  }
});

test('backups in the right place but not trusted are ignored and reported; the mailbox keeps its bytes', { skip: !isRoot() && 'needs root (chown)' }, async () => {
  const e = env();
  const { file, home } = await alicesHome(e);
  const old = fs.readFileSync(file);
  const at = backupPath(file, home);
  const other = path.join(e.dir, 'elsewhere');
  const cases: Array<[string, () => void, RegExp]> = [
    ['owned by another uid', () => craftBackup(file, at, { uid: 2002, gid: 2002 }), /owned by uid 2002/],
    ['owned by a third user of the same group', () => craftBackup(file, at, { uid: 2003, gid: 2001 }), /owned by uid 2003/],
    ['a symbolic link', () => {
      craftBackup(file, other, { uid: 2001, gid: 2001 });
      fs.symlinkSync(other, at);
    }, /symbolic link/],
    ['a second hard link', () => {
      craftBackup(file, other, { uid: 2001, gid: 2001 });
      fs.linkSync(other, at);
    }, /2 links/],
    ['writable by the group', () => craftBackup(file, at, { uid: 2001, gid: 2001 }, 0o620), /writable by group or others/],
    ['a directory', () => fs.mkdirSync(at), /not a regular file/],
  ];
  for (const [what, plant, why] of cases) {
    plant();
    const heard: string[] = [];
    const lock = await acquireMailboxLock(file);
    try {
      assert.equal(recoverRewrite(file, { backupDir: home, onIgnoredBackup: (w) => heard.push(w) }), false, what);
    } finally {
      lock.release();
    }
    assert.equal(heard.length, 1, what);
    assert.match(heard[0], why, what);
    assert.deepEqual(fs.readFileSync(file), old, what);
    fs.rmSync(at, { recursive: true, force: true });
    fs.rmSync(other, { force: true });
  }
  // In a directory of someone else's, even a backup owned by the mailbox's owner is not trusted.
  const bobs = path.join(e.dir, 'home-bob');
  fs.mkdirSync(bobs, { mode: 0o755 });
  fs.chownSync(bobs, 2002, 2002);
  craftBackup(file, backupPath(file, bobs), { uid: 2001, gid: 2001 });
  const heard: string[] = [];
  const lock = await acquireMailboxLock(file);
  try {
    assert.equal(recoverRewrite(file, { backupDir: bobs, onIgnoredBackup: (w) => heard.push(w) }), false);
  } finally {
    lock.release();
  }
  assert.match(heard.join(), /directory is not safe .*owned by uid 2002/);
  assert.deepEqual(fs.readFileSync(file), old);
});

test('a rewrite whose backup directory is not the owner\'s alone is refused, naming it; the mailbox is unchanged', async () => {
  const e = env();
  const file = await filled(e, 3);
  const old = fs.readFileSync(file);
  const open = path.join(e.dir, 'open');
  fs.mkdirSync(open);
  fs.chmodSync(open, 0o775);
  const good = path.join(e.dir, 'good');
  fs.mkdirSync(good, { mode: 0o700 });
  const link = path.join(e.dir, 'link');
  fs.symlinkSync(good, link);
  const cases: Array<[string, RegExp]> = [
    // As root the first rule /tmp breaks is its mode; as an ordinary user, its owner (root).
    [os.tmpdir(), isRoot() ? /writable by group or others/ : /owned by uid 0, not \d+/],
    [open, /writable by group or others \(mode 0775\)/],
    [link, /symbolic link/],
    [path.join(e.dir, 'missing'), /does not exist/],
  ];
  if (isRoot()) {
    const bobs = path.join(e.dir, 'bobs');
    fs.mkdirSync(bobs, { mode: 0o755 });
    fs.chownSync(bobs, 2002, 2002);
    fs.chownSync(file, 2001, 2001);
    cases.push([bobs, /owned by uid 2002, not 2001 or 0/]);
  }
  for (const [dir, why] of cases) {
    const index = await scanMbox(file);
    await assert.rejects(rewriteMbox(file, index, [{ entry: index.messages[1] }], { backupDir: dir }), (err) => {
      assert.ok(err instanceof MailError, String(err));
      assert.equal(err.failure, 'mailbox-unsafe');
      assert.ok(err.message.includes(dir), err.message);
      assert.match(err.message, why);
      assert.match(err.message, /the mailbox is unchanged/);
      return true;
    });
    assert.deepEqual(fs.readFileSync(file), old, dir);
    assert.equal(fs.existsSync(backupPath(file, dir)), false, dir);
  }
  assert.deepEqual(fs.readdirSync(good), []);
});

test('without a backup directory: $HOME when it is safe, else the mbox\'s own directory, never /tmp', async () => {
  const e = env();
  const file = await filled(e, 3);
  if (isRoot()) fs.chownSync(file, 2001, 2001);
  const saved = process.env.HOME;
  const seen: string[] = [];
  try {
    process.env.HOME = os.tmpdir(); // unsafe: the spool's directory is next, and it is ours (0755)
    fs.chmodSync(path.dirname(file), 0o755);
    const index = await scanMbox(file);
    await rewriteMbox(file, index, [{ entry: index.messages[0] }], {
      onStep: (step) => {
        if (step === 'backup-written') seen.push(...fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith('.mailtk-rewrite.')));
      },
    });
    assert.equal(seen.length, 1);
    assert.deepEqual(ids(fs.readFileSync(file, 'utf8')), ['m0']);
    // A spool directory others may write is no place either: refused.
    fs.chmodSync(path.dirname(file), 0o1777);
    const again = await scanMbox(file);
    const before = fs.readFileSync(file);
    await assert.rejects(rewriteMbox(file, again, []), /no safe directory for the crash backup/);
    assert.deepEqual(fs.readFileSync(file), before);
  } finally {
    process.env.HOME = saved;
    fs.chmodSync(path.dirname(file), 0o755);
  }
});

test('the rewrite backup and its temporary file are made with O_EXCL, owned like the mailbox', { skip: !isRoot() && 'needs root (chown)' }, async () => {
  const e = env();
  const { file, home } = await alicesHome(e);
  const at = backupPath(file, home);
  // A symlink planted at BACKUP.new is removed, never followed.
  const target = path.join(e.dir, 'target');
  fs.writeFileSync(target, 'keep me\n');
  fs.symlinkSync(target, `${at}.new`);
  const index = await scanMbox(file);
  let owner = -1;
  await rewriteMbox(file, index, [{ entry: index.messages[1] }], {
    backupDir: home,
    onStep: (step) => {
      if (step === 'backup-written') owner = fs.lstatSync(at).uid;
    },
  });
  assert.equal(owner, 2001);
  assert.equal(fs.readFileSync(target, 'utf8'), 'keep me\n');
  assert.deepEqual(ids(fs.readFileSync(file, 'utf8')), ['m1']);
  assert.deepEqual(fs.readdirSync(home), []);
});
