// Delivery into mboxes: the exact bytes, batches, many processes at once under
// the dotlock, refusal of unsafe mailboxes (left untouched), new mailbox mode
// and owner, all-or-nothing on a full disk (a real tmpfs, as root), and /file
// targets written as another user.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, test } from 'node:test';
import { MailError, type Failure } from '../message/status.ts';
import { childMessage } from './fixtures/append-child.ts';
import { isRoot, makeEnv, sampleMessage, type TestEnv } from './fixtures/env.ts';
import { appendToFile, appendToMbox, mboxPath, readMessageBytes, scanMbox, unquoteFrom } from './index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const FROM_LINE = /^From (\S+) (Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}$/;
const notRoot = !isRoot() && 'needs root (chown, acting as another user)';
const mailGid = Number(spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2]);

let envs: TestEnv[] = [];
function env(opts?: { spoolDir?: string }): TestEnv {
  const e = makeEnv(opts);
  envs.push(e);
  return e;
}
afterEach(() => {
  for (const e of envs) e.cleanup();
  envs = [];
});

const failsWith = (failure: Failure) => (e: unknown) => e instanceof MailError && e.failure === failure;
const msg = (id: string, sender = 'a@example.org', body?: string) => ({
  sender,
  recipient: 'alice@test.example',
  data: sampleMessage(id, body),
});

/** The file with each From_ line's date replaced by DATE, after checking its form. */
function normalised(file: string): string {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => (l.startsWith('From ') && FROM_LINE.test(l) ? `From ${FROM_LINE.exec(l)![1]} DATE` : l))
    .join('\n');
}

test('one message, byte-exact', async () => {
  const e = env();
  await appendToMbox(e.config, e.user('alice'), [msg('m1', 'a@example.org', 'From me\nhi\n')]);
  assert.equal(
    normalised(mboxPath(e.config, 'alice')),
    'From a@example.org DATE\nReturn-Path: <a@example.org>\nDelivered-To: alice@test.example\n' +
      'From: a@example.org\nTo: b@example.org\nSubject: m1\nX-Id: m1\n\n>From me\nhi\n\n',
  );
});

test('a batch is appended in order after what was there, under one lock', async () => {
  const e = env();
  const alice = e.user('alice');
  await appendToMbox(e.config, alice, [msg('first')]);
  await appendToMbox(e.config, alice, [msg('b1', ''), msg('b2'), msg('b3', 'x@y', 'no final newline')]);
  const file = mboxPath(e.config, 'alice');
  const idx = await scanMbox(file);
  assert.deepEqual(
    idx.messages.map((m) => m.fromLine.split(' ')[1]),
    ['a@example.org', 'MAILER-DAEMON', 'a@example.org', 'x@y'],
  );
  const last = await readMessageBytes(file, idx.messages[3]);
  assert.ok(last.toString().endsWith('\n\nno final newline\n'));
  assert.ok(fs.readFileSync(file, 'utf8').endsWith('no final newline\n\n'));
  assert.equal(fs.existsSync(`${file}.lock`), false);
  assert.ok((await readMessageBytes(file, idx.messages[1])).toString().startsWith('Return-Path: <>\n'));
});

test('an empty batch does nothing at all', async () => {
  const e = env();
  await appendToMbox(e.config, e.user('alice'), []);
  assert.equal(fs.existsSync(e.config.mailSpoolDir), false);
});

test('bad user names never become paths', () => {
  const e = env();
  for (const bad of ['', '../etc/passwd', 'a/b', '.hidden']) {
    assert.throws(() => mboxPath(e.config, bad), failsWith('user-unknown'));
  }
});

test('new mailbox: mode 0600, USER:mail; spool created 2775 root:mail', { skip: notRoot }, async () => {
  const e = env();
  await appendToMbox(e.config, e.user('alice'), [msg('m')]);
  const st = fs.statSync(mboxPath(e.config, 'alice'));
  assert.equal(st.mode & 0o7777, 0o600);
  assert.equal(st.uid, 2001);
  assert.equal(st.gid, Number.isInteger(mailGid) ? mailGid : 2001);
  const spool = fs.statSync(e.config.mailSpoolDir);
  assert.equal(spool.uid, 0);
  assert.equal(spool.mode & 0o7777, Number.isInteger(mailGid) ? 0o2775 : 0o1777);
});

test('many processes appending at once: every message whole, none torn or lost', { timeout: 120_000 }, async () => {
  const e = env();
  const children = 8;
  const rounds = 15;
  const batch = 4;
  const child = path.join(here, 'fixtures', 'append-child.ts');
  const run = promisify(execFile);
  await Promise.all(
    Array.from({ length: children }, (_, c) =>
      run(process.execPath, ['--import', 'tsx', child, e.confFile, 'bob', String(c), String(rounds), String(batch)]),
    ),
  );
  const file = mboxPath(e.config, 'bob');
  const idx = await scanMbox(file);
  assert.equal(idx.messages.length, children * rounds * batch);
  const seen = new Set<string>();
  for (const m of idx.messages) {
    const stored = unquoteFrom(await readMessageBytes(file, m)).toString();
    const id = /^X-Id: (c(\d+)-r(\d+)-m(\d+))$/m.exec(stored);
    assert.ok(id, `message at ${m.offset} has no X-Id`);
    const [, name, c, j, k] = id;
    const expected = `Return-Path: <c${c}@example.org>\nDelivered-To: bob@test.example\n` + childMessage(+c, +j, +k).toString();
    assert.equal(stored, expected, `message ${name} differs`);
    assert.ok(!seen.has(name), `message ${name} twice`);
    seen.add(name);
  }
  assert.equal(fs.existsSync(`${file}.lock`), false);
});

/** Deliver into a mailbox the test has made unsafe; it must be refused and left byte-identical. */
async function assertRefused(e: TestEnv, file: string, watch: string): Promise<void> {
  const before = fs.readFileSync(watch);
  await assert.rejects(appendToMbox(e.config, e.user('alice'), [msg('x')]), failsWith('mailbox-unsafe'));
  assert.deepEqual(fs.readFileSync(watch), before);
  assert.equal(fs.existsSync(`${file}.lock`), false);
}

async function existingBox(e: TestEnv): Promise<string> {
  await appendToMbox(e.config, e.user('alice'), [msg('seed')]);
  return mboxPath(e.config, 'alice');
}

test('refused: the mailbox is a symlink (its target untouched)', async () => {
  const e = env();
  const file = await existingBox(e);
  const target = path.join(e.dir, 'target');
  fs.writeFileSync(target, 'precious\n');
  fs.rmSync(file);
  fs.symlinkSync(target, file);
  await assertRefused(e, file, target);
});

test('refused: the mailbox has a second hard link', async () => {
  const e = env();
  const file = await existingBox(e);
  fs.linkSync(file, path.join(e.dir, 'other-link'));
  await assertRefused(e, file, file);
});

test('refused: the mailbox belongs to someone else', { skip: notRoot }, async () => {
  const e = env();
  const file = await existingBox(e);
  fs.chownSync(file, 2002, 2002);
  await assertRefused(e, file, file);
});

test('refused: the mailbox is a FIFO or a directory (and we do not hang)', async () => {
  const e = env();
  const file = await existingBox(e);
  fs.rmSync(file);
  assert.equal(spawnSync('mkfifo', [file]).status, 0);
  await assert.rejects(appendToMbox(e.config, e.user('alice'), [msg('x')]), failsWith('mailbox-unsafe'));
  fs.rmSync(file);
  fs.mkdirSync(file);
  await assert.rejects(appendToMbox(e.config, e.user('alice'), [msg('x')]), failsWith('mailbox-unsafe'));
  assert.deepEqual(fs.readdirSync(file), []);
});

/** Mount a tiny tmpfs, or say why not. */
function mountTmpfs(dir: string): string | undefined {
  if (!isRoot()) return 'needs root to mount a tmpfs';
  fs.mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `cannot mount tmpfs: ${r.stderr.trim()}`;
}

/** Fill a file system, then free `spare` bytes of it. */
function fillLeaving(dir: string, spare: number): void {
  const filler = path.join(dir, 'filler');
  const fd = fs.openSync(filler, 'w');
  const page = Buffer.alloc(4096, 'x');
  try {
    for (;;) fs.writeSync(fd, page);
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  }
  fs.ftruncateSync(fd, Math.max(0, fs.fstatSync(fd).size - spare));
  fs.closeSync(fd);
}

test('disk full: mailbox-full, and the mbox is byte-identical afterwards', async (t) => {
  const base = makeEnv();
  envs.push(base);
  const mnt = path.join(base.dir, 'tmpfs');
  const why = mountTmpfs(mnt);
  if (why) return t.skip(why);
  try {
    const e = env({ spoolDir: path.join(mnt, 'spool') });
    const alice = e.user('alice');
    await appendToMbox(e.config, alice, [msg('before')]);
    const file = mboxPath(e.config, 'alice');
    fillLeaving(mnt, 12 << 10);
    const before = fs.readFileSync(file);
    const big = msg('big', 'a@example.org', 'y'.repeat(40 << 10) + '\n');
    await assert.rejects(appendToMbox(e.config, alice, [msg('small'), big]), failsWith('mailbox-full'));
    assert.deepEqual(fs.readFileSync(file), before);
    assert.equal(fs.existsSync(`${file}.lock`), false);
    fs.rmSync(path.join(mnt, 'filler'));
    await appendToMbox(e.config, alice, [msg('after')]); // and it recovers once there is room
    assert.equal((await scanMbox(file)).messages.length, 2);
  } finally {
    spawnSync('umount', [mnt]);
  }
});

// /file targets from aliases and .forward.

test('/file: created as runAs, mode 0600, mbox format; lock made and removed as runAs', { skip: notRoot }, async () => {
  const e = env();
  const dir = path.join(e.dir, 'home-alice');
  fs.mkdirSync(dir);
  fs.chownSync(dir, 2001, 2001);
  const file = path.join(dir, 'archive');
  await appendToFile(file, e.user('alice'), msg('f1'));
  await appendToFile(file, e.user('alice'), msg('f2', '', 'From x\n'));
  const st = fs.statSync(file);
  assert.equal(st.uid, 2001);
  assert.equal(st.mode & 0o7777, 0o600);
  assert.equal(process.geteuid!(), 0);
  assert.equal(process.getegid!(), 0);
  assert.deepEqual(fs.readdirSync(dir), ['archive']);
  const text = normalised(file);
  assert.ok(text.startsWith('From a@example.org DATE\nReturn-Path: <a@example.org>\nDelivered-To: alice@test.example\n'));
  assert.ok(text.endsWith('X-Id: f2\n\n>From x\n\n'));
});

test('/file: permission denied as runAs is file-denied, and the file is unchanged', { skip: notRoot }, async () => {
  const e = env();
  const dir = path.join(e.dir, 'shared');
  fs.mkdirSync(dir, { mode: 0o777 });
  fs.chmodSync(dir, 0o1777);
  const file = path.join(dir, 'roots');
  fs.writeFileSync(file, 'root only\n', { mode: 0o600 });
  await assert.rejects(appendToFile(file, e.user('alice'), msg('x')), failsWith('file-denied'));
  assert.equal(fs.readFileSync(file, 'utf8'), 'root only\n');
  assert.equal(fs.existsSync(`${file}.lock`), false);
  assert.equal(process.geteuid!(), 0);
});

test('/file: no right to make the lock still delivers (Postfix: dotlock may fail)', { skip: notRoot }, async () => {
  const e = env();
  const dir = path.join(e.dir, 'rootdir');
  fs.mkdirSync(dir, { mode: 0o755 });
  const file = path.join(dir, 'alice-log');
  fs.writeFileSync(file, '');
  fs.chownSync(file, 2001, 2001);
  await appendToFile(file, e.user('alice'), msg('x'));
  assert.equal((await scanMbox(file)).messages.length, 1);
});

test('/file: symlinks, directories, executables, relative paths and root are refused', async () => {
  const e = env();
  const alice = e.user('alice');
  const target = path.join(e.dir, 'target');
  fs.writeFileSync(target, 'keep\n');
  const link = path.join(e.dir, 'link');
  fs.symlinkSync(target, link);
  await assert.rejects(appendToFile(link, alice, msg('x')), failsWith('file-denied'));
  assert.equal(fs.readFileSync(target, 'utf8'), 'keep\n');
  await assert.rejects(appendToFile(e.dir, alice, msg('x')), failsWith('file-denied'));
  const script = path.join(e.dir, 'script');
  fs.writeFileSync(script, '#!/bin/sh\n', { mode: 0o755 });
  await assert.rejects(appendToFile(script, alice, msg('x')), failsWith('file-denied'));
  await assert.rejects(appendToFile('relative/file', alice, msg('x')), failsWith('file-denied'));
  if (isRoot()) {
    const root = { ...alice, name: 'root', uid: 0, gid: 0 };
    await assert.rejects(appendToFile(path.join(e.dir, 'x'), root, msg('x')), failsWith('file-denied'));
  }
});

test('/file: /dev/null swallows the message', async () => {
  const e = env();
  await appendToFile('/dev/null', e.user('alice'), msg('x'));
  assert.equal(fs.existsSync('/dev/null.lock'), false);
});
