import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { parseControl, serializeControl } from './control.ts';
import { DamagedEntry, readEntry, readMessage } from './entry-file.ts';
import { activate, crossOff, defer, dueQueueIds, enqueue, findEntry, finish, hold, listQueue, listQueueIds, makeDue, newQueueId, quarantine, readData, remove, unhold } from './index.ts';
import { TRANSITIONS } from './state.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-queue-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
fs.writeFileSync(path.join(dir, 'c.conf'), `queue_dir = ${dir}/q\nlog_file = ${dir}/log\n`);
const config = loadConfig({ file: path.join(dir, 'c.conf') });

const msg = (n: number) => ({
  sender: 'a@x.test',
  submitter: 'a',
  recipients: [{ address: `r${n}@x.test` }, { address: 'r2@x.test', notify: 'SUCCESS', orcpt: 'rfc822;R2@x.test' }],
  data: Buffer.from(`Subject: ${n}\n\nbody ${n}\n`),
});

test('queue ids are 14 characters, unique and sorted by time', () => {
  const ids = Array.from({ length: 500 }, () => newQueueId());
  assert.equal(new Set(ids).size, 500);
  assert.ok(ids.every((i) => i.length === 14));
  const a = newQueueId(new Date('2026-01-01T00:00:00Z'));
  const b = newQueueId(new Date('2026-01-01T00:00:01Z'));
  assert.ok(a < b);
  assert.deepEqual([...ids].sort(), ids, 'one after another, in the order made');
  const t = Date.parse('2026-02-01T00:00:00Z');
  assert.ok(newQueueId(new Date(t + 10)) < newQueueId(new Date(t + 20)), 'the millisecond orders IDs within a second');
});

test('one file an entry: control records, D record, message, journal; a torn last line', async () => {
  const id = await enqueue(config, msg(1));
  const file = path.join(config.queueDir, `qf${id}`);
  assert.deepEqual(fs.readdirSync(config.queueDir).filter((n) => n.includes(id)), [`qf${id}`], 'no df');
  const text = fs.readFileSync(file, 'utf8');
  const head = text.slice(0, text.indexOf('\nD') + 1);
  const c = parseControl(head);
  assert.equal(c.sender, 'a@x.test');
  assert.equal(c.recipients[1].orcpt, 'rfc822;R2@x.test');
  assert.equal(serializeControl(c), head);
  assert.match(text, /\nD19 [0-9a-f]{8}\nSubject: 1\n\nbody 1\n$/);
  fs.appendFileSync(file, 'X0\tlocal:r1\nX1\tloc');
  const e = readEntry(file);
  assert.deepEqual([...e.control.journal.done.get(0)!], ['local:r1']);
  assert.equal(e.control.journal.done.get(1), undefined);
  assert.equal(readMessage(e).toString(), 'Subject: 1\n\nbody 1\n');
  assert.equal(readData(config, id).toString(), 'Subject: 1\n\nbody 1\n');
});

test('a truncated entry or one whose message does not match its checksum is damaged', async () => {
  const id = await enqueue(config, msg(4));
  const file = path.join(config.queueDir, `qf${id}`);
  const whole = fs.readFileSync(file);
  const at = whole.indexOf('body 4');
  fs.writeFileSync(file, whole.subarray(0, at + 2));
  assert.throws(() => readEntry(file), DamagedEntry);
  const flipped = Buffer.from(whole);
  flipped[at] = 'B'.charCodeAt(0);
  fs.writeFileSync(file, flipped);
  assert.throws(() => readMessage(readEntry(file)), (e) => e instanceof DamagedEntry && /checksum/.test(e.message));
  const a = activate(config, id)!;
  assert.throws(() => a.message(), DamagedEntry);
  await a.release();
  assert.equal(quarantine(config, id), `corrupt/qf${id}`);
  assert.ok(fs.existsSync(path.join(config.queueDir, 'corrupt', `qf${id}`)), 'kept for a human');
  assert.ok(!listQueueIds(config).includes(id), 'out of runs');
});

test('activate locks; a second activate is refused; crossOff, defer, finish', async () => {
  const id = await enqueue(config, msg(2));
  const a = activate(config, id);
  assert.ok(a);
  assert.equal(activate(config, id), undefined, 'locked entry must not be taken twice');
  assert.equal(listQueue(config).find((q) => q.id === id)?.state, 'active');
  crossOff(a, [[0, 'local:r2']], []);
  const next = Date.now() + 60_000;
  defer(config, a, { attempts: 1, lastAttempt: Date.now(), nextTry: next, reason: 'Deferred: test', warned: false });
  await a.release();
  const listed = listQueue(config).find((q) => q.id === id)!;
  assert.equal(listed.state, 'deferred');
  assert.equal(listed.control!.reason, 'Deferred: test');
  assert.ok(listed.control!.journal.done.get(0)!.has('local:r2'));
  assert.equal(Math.round(fs.statSync(path.join(config.queueDir, `qf${id}`)).mtimeMs), next, 'the next try is the mtime');
  assert.ok(!dueQueueIds(config, Date.now()).includes(id), 'not due: a stat says so');
  assert.ok(dueQueueIds(config, next).includes(id), 'due at its time');
  const b = activate(config, id)!;
  finish(config, b);
  await b.release();
  assert.ok(!fs.existsSync(path.join(config.queueDir, `qf${id}`)));
});

test('hold and unhold move the entry out of and back into runs, forced or not', async () => {
  const id = await enqueue(config, msg(3));
  assert.equal(hold(config, id), 'done');
  assert.ok(fs.existsSync(path.join(config.queueDir, 'hold', `qf${id}`)), 'in queue_dir/hold');
  assert.ok(!listQueueIds(config).includes(id));
  assert.ok(!dueQueueIds(config, Date.now() + 1e9).includes(id));
  assert.equal(activate(config, id), undefined, 'a run naming it (-qI) finds nothing to deliver');
  assert.equal(listQueue(config).find((q) => q.id === id)?.state, 'held');
  assert.equal(readData(config, id).toString(), 'Subject: 3\n\nbody 3\n');
  assert.equal(findEntry(config, id)?.state, 'held');
  assert.equal(hold(config, id), 'missing', 'held already');
  assert.equal(unhold(config, id), 'done');
  assert.ok(listQueueIds(config).includes(id));
  assert.equal(unhold(config, id), 'missing');
});

test('an entry being delivered is busy: never held, removed or made due under its runner', async () => {
  const id = await enqueue(config, msg(5));
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', `
    import { loadConfig } from ${JSON.stringify(path.resolve('src/config/index.ts'))};
    import { activate } from ${JSON.stringify(path.resolve('src/queue/index.ts'))};
    const a = activate(loadConfig({ file: ${JSON.stringify(path.join(dir, 'c.conf'))} }), ${JSON.stringify(id)});
    console.log(a ? 'locked' : 'no');
    setTimeout(() => {}, 60000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((r) => child.stdout.once('data', r));
    assert.equal(hold(config, id), 'busy');
    assert.equal(remove(config, id), 'busy');
    assert.equal(makeDue(config, id), 'busy');
    assert.ok(fs.existsSync(path.join(config.queueDir, `qf${id}`)));
  } finally {
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
  }
  assert.equal(remove(config, id), 'queue', 'its runner gone, the lock is stale at once');
});

test('remove takes an entry from the queue, hold/ or corrupt/; makeDue sets the next try to now', async () => {
  const a = await enqueue(config, msg(6));
  const b = await enqueue(config, msg(7));
  const c = await enqueue(config, msg(8));
  hold(config, b);
  quarantine(config, c);
  assert.equal(remove(config, b), 'hold');
  assert.equal(remove(config, c), 'corrupt');
  assert.equal(remove(config, c), 'missing');
  const later = new Date(Date.now() + 3_600_000);
  fs.utimesSync(path.join(config.queueDir, `qf${a}`), later, later);
  assert.ok(!dueQueueIds(config, Date.now()).includes(a));
  assert.equal(makeDue(config, a), 'done');
  assert.ok(dueQueueIds(config, Date.now()).includes(a));
  hold(config, a);
  assert.equal(makeDue(config, a), 'missing', 'a held entry is released first');
  assert.equal(remove(config, a), 'hold');
  assert.equal(findEntry(config, a), undefined);
});

test('every state in the transition table is reachable from writing', () => {
  const reach = new Set(['writing']);
  for (let i = 0; i < TRANSITIONS.length; i++) for (const [from, to] of TRANSITIONS) if (reach.has(from)) reach.add(to);
  assert.deepEqual([...reach].sort(), ['active', 'corrupt', 'deferred', 'gone', 'held', 'queued', 'writing']);
});

test('SIGKILL at any instant of enqueue leaves whole entries or nothing', async () => {
  const qdir = path.join(dir, 'killq');
  const conf = path.join(dir, 'kill.conf');
  fs.writeFileSync(conf, `queue_dir = ${qdir}\nlog_file = ${dir}/log\n`);
  const script = `
    import { loadConfig } from ${JSON.stringify(path.resolve('src/config/index.ts'))};
    import { enqueue } from ${JSON.stringify(path.resolve('src/queue/index.ts'))};
    const config = loadConfig({ file: ${JSON.stringify(conf)} });
    const data = Buffer.alloc(200000, 120);
    for (let i = 0; ; i++) await enqueue(config, { sender: 's@x', submitter: 's', recipients: [{ address: 'r@x' }], data });
  `;
  const file = path.join(dir, 'killer.mts');
  fs.writeFileSync(file, script);
  for (let round = 0; round < 8; round++) {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { stdio: 'ignore' });
    // Start the clock once the child writes (tsx's start-up takes seconds on a loaded machine),
    // then kill it at a different instant of its writing each round.
    const before = fs.existsSync(qdir) ? fs.readdirSync(qdir).length : 0;
    for (let i = 0; i < 600 && child.exitCode === null && (fs.existsSync(qdir) ? fs.readdirSync(qdir).length : 0) <= before; i++) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 100 + round * 97));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('close', r));
  }
  const names = fs.readdirSync(qdir);
  const committed = names.filter((n) => n.startsWith('qf'));
  assert.ok(committed.length > 0, 'the child committed something before being killed');
  for (const qf of committed) {
    const e = readEntry(path.join(qdir, qf));
    assert.equal(e.control.id, qf.slice(2));
    assert.equal(readMessage(e).length, 200000, `${qf} must be whole`);
  }
});
