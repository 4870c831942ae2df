// The commit log on real files: a group of concurrent enqueues shares one
// segment; the runner reads message text from it; finished entries are
// marked in .done; retirement writes df for what is still queued and removes
// the segment; recovery after a simulated power loss (qf and df never
// reached the disk) brings back every unfinished entry and nothing finished,
// and ignores a torn last record.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { CommitLog, commitLogDir, readSegment, recoverCommitLog } from './commit-log.ts';
import { activate, enqueue, finishAll, listQueueIds, readData } from './index.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-clog-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function configIn(name: string) {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  const file = path.join(dir, name, 'c.conf');
  fs.writeFileSync(file, `queue_dir = ${dir}/${name}/q\nlog_file = ${dir}/${name}/log\nqueue_lock_stale = 2s\n`);
  const config = loadConfig({ file });
  fs.mkdirSync(config.queueDir, { recursive: true });
  return config;
}

const msg = (n: number) => ({
  sender: 'a@x.test',
  submitter: 'a',
  recipients: [{ address: `r${n}@x.test` }],
  data: Buffer.from(`Subject: ${n}\n\n${'body '.repeat(n * 50)}\n`),
});

const segments = (config: ReturnType<typeof configIn>) => fs.readdirSync(commitLogDir(config)).filter((n) => /^c\d+-\d+$/.test(n));

test('a group shares one segment; data is read from it; finished entries are marked; retirement keeps the rest', async () => {
  const config = configIn('group');
  const log = (await CommitLog.open(config))!;
  assert.ok(log);
  const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => enqueue(config, msg(i + 1))));
  assert.deepEqual(listQueueIds(config), [...ids].sort());
  assert.equal(segments(config).length, 1, 'one segment for the group');
  for (const [i, id] of ids.entries()) {
    assert.ok(!fs.existsSync(path.join(config.queueDir, `df${id}`)), 'no df while the segment lives');
    assert.deepEqual(readData(config, id), msg(i + 1).data);
  }
  const active = await Promise.all(ids.slice(0, 3).map((id) => activate(config, id)));
  finishAll(config, active.map((a) => a!));
  for (const a of active) await a!.release();
  const seg = segments(config)[0];
  const done = fs.readFileSync(path.join(commitLogDir(config), `${seg}.done`), 'utf8').split('\n').filter(Boolean);
  assert.deepEqual(done.sort(), ids.slice(0, 3).sort());
  // Their control files became spares, and the next entry's control file is one of them, rewritten whole.
  const spare = path.join(config.queueDir, 'spare');
  assert.equal(fs.readdirSync(spare).length, 3);
  const big = { ...msg(1), recipients: [{ address: 'short@x.test' }] };
  const next = await enqueue(config, big);
  assert.equal(fs.readdirSync(spare).length, 2);
  const a = (await activate(config, next))!;
  assert.deepEqual(a.control.recipients.map((r) => r.address), ['short@x.test']);
  finishAll(config, [a]);
  await a.release();

  await log.shutdown();
  assert.deepEqual(segments(config), [], 'retired at shutdown');
  assert.deepEqual(listQueueIds(config), ids.slice(3).sort());
  for (const id of ids.slice(3)) {
    const i = ids.indexOf(id);
    assert.deepEqual(fs.readFileSync(path.join(config.queueDir, `df${id}`)), msg(i + 1).data, 'df written at retirement');
  }
  for (const id of ids.slice(0, 3)) assert.ok(!fs.existsSync(path.join(config.queueDir, `df${id}`)));
});

test('recovery after a power loss: unfinished entries come back, finished ones do not, a torn record is ignored', async () => {
  const config = configIn('crash');
  const log = (await CommitLog.open(config))!;
  const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => enqueue(config, msg(i + 1))));
  const active = await Promise.all(ids.slice(0, 2).map((id) => activate(config, id)));
  finishAll(config, active.map((a) => a!));
  for (const a of active) await a!.release();

  // The disk as a power loss may leave it: the log and its .done (fsync'd), no qf or df.
  const lost = configIn('after');
  fs.cpSync(commitLogDir(config), commitLogDir(lost), { recursive: true });
  const seg = segments(lost)[0];
  const buf = fs.readFileSync(path.join(commitLogDir(lost), seg));
  assert.equal(readSegment(buf).records.length, 6);
  fs.appendFileSync(path.join(commitLogDir(lost), seg), 'MTKC1 0000000000000 99 00000000\nhalf a rec');
  // One entry whose qf did reach the disk, torn; one whose df is damaged.
  fs.writeFileSync(path.join(lost.queueDir, `qf${ids[2]}`), 'V1\nI');
  fs.writeFileSync(path.join(lost.queueDir, `df${ids[3]}`), 'zeros');

  assert.equal(await recoverCommitLog(lost), 4);
  assert.deepEqual(listQueueIds(lost), ids.slice(2).sort(), 'the four unfinished entries, not the two delivered');
  for (const id of ids.slice(2)) {
    const i = ids.indexOf(id);
    assert.deepEqual(fs.readFileSync(path.join(lost.queueDir, `df${id}`)), msg(i + 1).data);
    const a = (await activate(lost, id))!;
    assert.equal(a.control.recipients[0].address, `r${i + 1}@x.test`);
    await a.release();
  }
  assert.deepEqual(segments(lost), [], 'the recovered segment is retired');
  assert.match(fs.readFileSync(lost.logFile, 'utf8'), /4 queue entries written again, a torn last record ignored/);
  await log.shutdown();
});

test('another process does not recover a log that a live daemon holds', async () => {
  const config = configIn('held');
  const log = (await CommitLog.open(config))!;
  await enqueue(config, msg(1));
  const script = `import { loadConfig } from './src/config/index.ts'; import { recoverCommitLog } from './src/queue/commit-log.ts';
    console.log(await recoverCommitLog(loadConfig({ file: ${JSON.stringify(path.join(dir, 'held', 'c.conf'))} })));`;
  const other = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(other.status, 0, other.stderr);
  assert.equal(other.stdout.trim(), '0');
  assert.equal(segments(config).length, 1, 'the live segment is left alone');
  assert.equal(listQueueIds(config).length, 1);
  await log.shutdown();
});
