// rewriteMbox: the exact bytes kept, headers replaced, owner/mode/inode kept,
// refusal when the file changed, mail appended meanwhile kept, appenders in
// other processes racing many rewrites (nothing lost, nothing twice), a crash
// (SIGKILL) after every step followed by new mail and recovery, and the
// dotlockfile(1) fallback for a user who cannot write the spool directory.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, test } from 'node:test';
import { MailError } from '../message/status.ts';
import { isRoot, makeEnv, sampleMessage, type TestEnv } from './fixtures/env.ts';
import { planKeep } from './fixtures/rewrite-child.ts';
import {
  acquireMailboxLock,
  appendToMbox,
  backupPath,
  mboxPath,
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

test('a user who cannot write the spool directory locks through dotlockfile(1)', { skip: (!isRoot() || spawnSync('which', ['dotlockfile']).status !== 0) && 'needs root and dotlockfile' }, async () => {
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
