// The USER.lock dotlock: a plain file holding our pid, exclusive, stale after
// a while, given up on after a timeout, and shared with other programs
// (liblockfile's dotlockfile, when installed, stands in for them).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MailError } from '../message/status.ts';
import { asUser } from './creds.ts';
import { acquireDotlockVia } from './dotlock.ts';
import { acquireDotlock } from './index.ts';

let dir: string;
let n = 0;
const box = () => path.join(dir, `box${n++}`);

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-dotlock-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const isLocked = (e: unknown) => e instanceof MailError && e.failure === 'mailbox-locked';

test('the lock is a plain file PATH.lock holding our pid, removed on release', async () => {
  const mbox = box();
  const lock = await acquireDotlock(mbox);
  const st = fs.lstatSync(`${mbox}.lock`);
  assert.ok(st.isFile());
  assert.equal(fs.readFileSync(`${mbox}.lock`, 'utf8'), `${process.pid}\n`);
  lock.release();
  lock.release(); // twice is harmless
  assert.equal(fs.existsSync(`${mbox}.lock`), false);
});

test('a second locker waits, and gets the lock once the first releases', async () => {
  const mbox = box();
  const first = await acquireDotlock(mbox);
  let got = false;
  const second = acquireDotlock(mbox, { timeoutMs: 5000 }).then((l) => {
    got = true;
    return l;
  });
  await sleep(100);
  assert.equal(got, false);
  first.release();
  (await second).release();
  assert.equal(got, true);
});

test('gives up after timeoutMs with mailbox-locked', async () => {
  const mbox = box();
  const held = await acquireDotlock(mbox);
  const t0 = Date.now();
  await assert.rejects(acquireDotlock(mbox, { timeoutMs: 300 }), isLocked);
  const waited = Date.now() - t0;
  assert.ok(waited >= 300 && waited < 1500, `waited ${waited} ms`);
  held.release();
});

test('a stale lock (old ctime) is broken; a fresh one is not', async () => {
  const mbox = box();
  fs.writeFileSync(`${mbox}.lock`, `${process.ppid}\n`); // a holder that lives: only its age counts
  await assert.rejects(acquireDotlock(mbox, { timeoutMs: 100 }), isLocked);
  await sleep(60);
  const lock = await acquireDotlock(mbox, { timeoutMs: 100, staleMs: 50 });
  assert.equal(fs.readFileSync(`${mbox}.lock`, 'utf8'), `${process.pid}\n`);
  lock.release();
  // No stray ".stale" files are left in the directory.
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.stale.')), []);
});

test('many waiters on one stale lock: exactly one holds it at a time', async () => {
  const mbox = box();
  fs.writeFileSync(`${mbox}.lock`, '99999\n');
  await sleep(60);
  let inside = 0;
  let most = 0;
  const worker = async () => {
    const l = await acquireDotlock(mbox, { timeoutMs: 5000, staleMs: 50 });
    inside++;
    most = Math.max(most, inside);
    await sleep(2);
    inside--;
    l.release();
  };
  await Promise.all(Array.from({ length: 10 }, worker));
  assert.equal(most, 1);
});

test('a lock naming a process that is gone is broken at once, whatever its age; one with no pid waits', async () => {
  const mbox = box();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  fs.writeFileSync(`${mbox}.lock`, `${dead}\n`);
  const t0 = Date.now();
  const lock = await acquireDotlock(mbox, { timeoutMs: 2000 });
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
  assert.equal(fs.readFileSync(`${mbox}.lock`, 'utf8'), `${process.pid}\n`);
  lock.release();
  for (const text of ['', 'someone else\n', '0\n']) {
    fs.writeFileSync(`${mbox}.lock`, text);
    await assert.rejects(acquireDotlock(mbox, { timeoutMs: 100 }), isLocked, JSON.stringify(text));
  }
  fs.rmSync(`${mbox}.lock`);
  assert.deepEqual(fs.readdirSync(dir).filter((f) => f.includes('.stale.')), []);
});

test('release removes only our own lock, not one that replaced it', async () => {
  const mbox = box();
  const lock = await acquireDotlock(mbox);
  fs.unlinkSync(`${mbox}.lock`);
  fs.writeFileSync(`${mbox}.lock`, 'someone else\n');
  lock.release();
  assert.equal(fs.readFileSync(`${mbox}.lock`, 'utf8'), 'someone else\n');
});

test('refresh() keeps a long-held lock from looking stale', async () => {
  const mbox = box();
  const staleMs = 150;
  const lock = await acquireDotlock(mbox);
  await sleep(200);
  lock.refresh();
  await assert.rejects(acquireDotlock(mbox, { timeoutMs: 50, staleMs }), isLocked);
  await sleep(200); // without a refresh, the same lock is now broken
  const other = await acquireDotlock(mbox, { timeoutMs: 50, staleMs });
  lock.release(); // no longer ours: must leave the other's lock alone
  assert.ok(fs.existsSync(`${mbox}.lock`));
  other.release();
});

test('a directory named PATH.lock is never removed; we time out', async () => {
  const mbox = box();
  fs.mkdirSync(`${mbox}.lock`);
  await sleep(20);
  await assert.rejects(acquireDotlock(mbox, { timeoutMs: 100, staleMs: 1 }), isLocked);
  assert.ok(fs.statSync(`${mbox}.lock`).isDirectory());
});

test('a missing directory is an error at once, not a wait', async () => {
  await assert.rejects(acquireDotlock(path.join(dir, 'nope', 'box')), (e: unknown) => {
    return e instanceof MailError && e.failure === 'mailbox-io';
  });
});

test('a stale lock we may not remove (sticky dir, as a user) means waiting, not a raw error', { skip: process.geteuid?.() !== 0 && 'needs root' }, async () => {
  const sticky = path.join(dir, 'sticky');
  fs.mkdirSync(sticky);
  fs.chmodSync(sticky, 0o1777);
  fs.chmodSync(dir, 0o755);
  const mbox = path.join(sticky, 'file');
  fs.writeFileSync(`${mbox}.lock`, '1\n'); // root's, so a user cannot rename it away
  await sleep(30);
  const alice = { name: 'alice', uid: 2001, gid: 2001, gecos: '', home: '/', shell: '/bin/sh' };
  const via = { run: asUser(alice), mayFail: true };
  await assert.rejects(acquireDotlockVia(mbox, { timeoutMs: 200, staleMs: 10 }, via), isLocked);
  assert.equal(process.geteuid!(), 0);
  assert.ok(fs.existsSync(`${mbox}.lock`));
});

const dotlockfile = spawnSync('sh', ['-c', 'command -v dotlockfile']).status === 0;

test('interoperates with dotlockfile(1) from liblockfile', { skip: !dotlockfile && 'dotlockfile not installed (Debian liblockfile-bin)' }, async () => {
  const mbox = box();
  // Theirs blocks ours...
  assert.equal(spawnSync('dotlockfile', ['-l', '-r', '0', `${mbox}.lock`]).status, 0);
  await assert.rejects(acquireDotlock(mbox, { timeoutMs: 200 }), isLocked);
  assert.equal(spawnSync('dotlockfile', ['-u', `${mbox}.lock`]).status, 0);
  // ...and ours blocks theirs.
  const lock = await acquireDotlock(mbox, { timeoutMs: 200 });
  assert.notEqual(spawnSync('dotlockfile', ['-l', '-r', '0', `${mbox}.lock`]).status, 0);
  lock.release();
  assert.equal(spawnSync('dotlockfile', ['-l', '-r', '0', `${mbox}.lock`]).status, 0);
  spawnSync('dotlockfile', ['-u', `${mbox}.lock`]);
});
