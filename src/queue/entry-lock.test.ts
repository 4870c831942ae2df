// Entry locks as hard links to a runner's token: a live lock refuses a second
// taker, a stale one (its runner stopped refreshing the token) is taken over,
// an older mailtk's stale lock directory too, and release removes only our link.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { closeTokens, lockEntry } from './entry-lock.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-lock-'));
after(() => {
  closeTokens();
  fs.rmSync(dir, { recursive: true, force: true });
});
fs.writeFileSync(path.join(dir, 'c.conf'), `queue_dir = ${dir}/q\nlog_file = ${dir}/log\nqueue_lock_stale = 2s\n`);
const config = loadConfig({ file: path.join(dir, 'c.conf') });
fs.mkdirSync(config.queueDir);
const lockFile = (id: string) => path.join(config.queueDir, `qf${id}.lock`);
const old = new Date(Date.now() - 60_000);

test('a held lock refuses; release frees it; the lock is a link, not a new file', () => {
  const a = lockEntry(config, 'A')!;
  assert.ok(a.held());
  assert.equal(lockEntry(config, 'A'), undefined);
  const token = fs.readdirSync(config.queueDir).find((n) => /^rt\d+\.\d+$/.test(n))!;
  assert.equal(fs.statSync(lockFile('A')).ino, fs.statSync(path.join(config.queueDir, token)).ino);
  a.release();
  assert.ok(!fs.existsSync(lockFile('A')));
  const b = lockEntry(config, 'A')!;
  assert.ok(b.held());
  b.release();
});

test('a stale lock (a dead runner\'s token) is taken over, and its holder sees it lost', () => {
  const deadToken = path.join(config.queueDir, 'rt1.1');
  fs.writeFileSync(deadToken, '1\n');
  fs.linkSync(deadToken, lockFile('B'));
  fs.utimesSync(deadToken, old, old);
  const b = lockEntry(config, 'B')!;
  assert.ok(b?.held(), 'taken over');
  b.release();
  // A lock directory left by an older mailtk (proper-lockfile), stale too.
  fs.mkdirSync(lockFile('C'));
  fs.utimesSync(lockFile('C'), old, old);
  const c = lockEntry(config, 'C')!;
  assert.ok(c?.held());
  // Our own lock, once taken over by another runner, is no longer held, and release leaves theirs.
  fs.rmSync(lockFile('C'));
  fs.linkSync(deadToken, lockFile('C'));
  assert.equal(c.held(), false);
  c.release();
  assert.ok(fs.existsSync(lockFile('C')));
});
