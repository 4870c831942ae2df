// Entry locks as hard links to a runner's token: a live lock refuses a second
// taker, a stale one (the process it names is gone, or its pid now belongs to
// another process) is taken over, an older mailtk's lock directory too, and
// release removes only our link.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { closeTokens, lockEntry } from './entry-lock.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-lock-'));
after(() => {
  closeTokens();
  fs.rmSync(dir, { recursive: true, force: true });
});
fs.writeFileSync(path.join(dir, 'c.conf'), `queue_dir = ${dir}/q\nlog_file = ${dir}/log\n`);
const config = loadConfig({ file: path.join(dir, 'c.conf') });
fs.mkdirSync(config.queueDir);
const lockFile = (id: string) => path.join(config.queueDir, `qf${id}.lock`);
/** The pid of a process that has exited. */
const deadPid = (): number => spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim() as unknown as number;

test('the token is never seen empty: made under a .new name and renamed; a dead process\'s .new is swept', () => {
  const dead = path.join(config.queueDir, `rt${deadPid()}.1.new`);
  fs.writeFileSync(dead, '');
  const a = lockEntry(config, 'T')!; // this process's first lock: its token is made now
  const names = fs.readdirSync(config.queueDir);
  assert.deepEqual(names.filter((n) => n.endsWith('.new')), [], 'no .new left, the dead one swept');
  const token = names.find((n) => /^rt\d+\.\d+$/.test(n))!;
  assert.match(fs.readFileSync(path.join(config.queueDir, token), 'latin1'), new RegExp(`^${process.pid} (\\d+|-)\\n$`));
  a.release();
});

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

test('a live holder keeps its lock however old; a dead one\'s is taken over at once, and its holder sees it lost', () => {
  const liveToken = path.join(config.queueDir, 'rt1.1');
  const startOf1 = fs.readFileSync('/proc/1/stat', 'latin1').split(') ')[1].split(' ')[19];
  fs.writeFileSync(liveToken, `1 ${startOf1}\n`); // init lives as long as the machine
  fs.linkSync(liveToken, lockFile('L'));
  const old = new Date(Date.now() - 86_400_000);
  fs.utimesSync(liveToken, old, old);
  assert.equal(lockEntry(config, 'L'), undefined, 'an old lock of a live process holds');
  fs.writeFileSync(liveToken, `1 ${Number(startOf1) + 1}\n`);
  const l = lockEntry(config, 'L');
  assert.ok(l?.held(), 'a recycled pid (another start time) holds nothing');
  l!.release();
  const deadToken = path.join(config.queueDir, 'rt2.2');
  fs.writeFileSync(deadToken, `${deadPid()} 1\n`);
  fs.linkSync(deadToken, lockFile('B'));
  const b = lockEntry(config, 'B')!;
  assert.ok(b?.held(), 'taken over');
  b.release();
  // A lock directory left by an older mailtk (proper-lockfile), stale too.
  fs.mkdirSync(lockFile('C'));
  const c = lockEntry(config, 'C')!;
  assert.ok(c?.held());
  // Our own lock, once taken over by another runner, is no longer held, and release leaves theirs.
  fs.rmSync(lockFile('C'));
  fs.linkSync(deadToken, lockFile('C'));
  assert.equal(c.held(), false);
  c.release();
  assert.ok(fs.existsSync(lockFile('C')));
});
