// `mailtk queue` and `mailtk status` through the real binaries, in a sandbox
// (-C), loopback only. Mail goes to a smart host on a loopback port with
// nothing behind it, with delivery_mode = queue, so entries stay queued
// until a run tries them (and defers them). A held entry is out of every
// run, forced (-qf) too; release brings it back; delete -y removes it and
// the log names who; --json says what the plain listing says; an ordinary
// user may list (as mailq) but not change the queue.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { BIN, IS_ROOT, type Result, type Sandbox, makeSandbox, run, runAsync, startDaemon } from './helpers.ts';

/** A loopback port with nothing listening: connections to it are refused. */
async function deadPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

interface Row {
  id: string;
  state: string;
  size?: number;
  sender?: string;
  status?: string;
  recipients: string[];
}

/** The plain listing read back into rows: ID + mark, size, sender, (status), recipients. */
function parsePlain(text: string): Row[] {
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const head = /^([0-9A-Za-x]{14})([ *!])\s+(\d+) \w{3} \w{3} [ \d]\d \d\d:\d\d <(.*)>$/.exec(line);
    if (head) {
      rows.push({ id: head[1], state: { '*': 'active', '!': 'held', ' ': '' }[head[2]]!, size: Number(head[3]), sender: head[4], recipients: [] });
      continue;
    }
    const status = /^ {17}\((.*)\)$/.exec(line);
    if (status && rows.length) rows[rows.length - 1].status = status[1];
    const rcpt = /^ {41}<(.*)>$/.exec(line);
    if (rcpt && rows.length) rows[rows.length - 1].recipients.push(rcpt[1]);
  }
  return rows;
}

function listJson(sb: Sandbox): { queue: string; entries: Row[]; total: number } {
  const r = mailtk(sb, ['queue', 'list', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

function mailtk(sb: Sandbox, args: string[]): Result {
  return run(sb, 'mailtk', args);
}

function submit(sb: Sandbox, to: string, subject: string): string {
  const before = new Set(listJson(sb).entries.map((e) => e.id));
  const r = run(sb, 'sendmail', ['-f', 'alice@mail.test', to], `Subject: ${subject}\n\nhello\n`);
  assert.equal(r.status, 0, r.stderr);
  const fresh = listJson(sb).entries.filter((e) => !before.has(e.id));
  assert.equal(fresh.length, 1);
  return fresh[0].id;
}

const logText = (sb: Sandbox) => (fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '');

describe('mailtk queue', () => {
  let sb: Sandbox;
  before(async () => {
    sb = makeSandbox({ extraConf: `delivery_mode = queue\nsmart_host = [127.0.0.1]:${await deadPort()}\n` });
  });
  after(() => sb.cleanup());

  test('--help everywhere; no command or a bad one is a usage error (64)', () => {
    for (const args of [['--help'], ['queue', '--help'], ['queue', 'hold', '--help'], ['status', '--help']]) {
      const r = mailtk(sb, args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stdout, /mailtk/);
    }
    assert.equal(mailtk(sb, []).status, 64);
    assert.equal(mailtk(sb, ['queue', 'frobnicate']).status, 64);
    const bad = mailtk(sb, ['queue', 'hold', 'not-an-id']);
    assert.equal(bad.status, 64);
    assert.match(bad.stderr, /"not-an-id" is not a queue ID/);
  });

  test('list: the plain listing is mailq\'s, and --json says the same', () => {
    const a = submit(sb, 'far@remote.test', 'one');
    const b = submit(sb, 'other@remote.test', 'two');
    const plain = mailtk(sb, ['queue', 'list']);
    assert.equal(plain.status, 0, plain.stderr);
    assert.equal(plain.stdout, run(sb, 'mailq', []).stdout, 'the same text as mailq');
    const json = listJson(sb);
    assert.equal(json.total, 2);
    assert.equal(json.queue, sb.queue);
    const fromJson = json.entries.map((e) => ({ ...e, state: e.state === 'held' || e.state === 'active' ? e.state : '' }));
    for (const e of fromJson) delete (e as { arrival?: number }).arrival;
    assert.deepEqual(parsePlain(plain.stdout), fromJson);
    assert.deepEqual(json.entries.map((e) => e.id), [a, b]);
    assert.deepEqual(json.entries[0].recipients, ['far@remote.test']);
    mailtk(sb, ['queue', 'delete', '-y', a, b]);
  });

  test('hold keeps an entry out of forced runs until release; requeue; delete -y logs who', () => {
    const id = submit(sb, 'far@remote.test', 'held');
    const held = mailtk(sb, ['queue', 'hold', id]);
    assert.equal(held.status, 0, held.stderr);
    assert.match(held.stdout, new RegExp(`^${id}: placed on hold$`, 'm'));
    assert.ok(fs.existsSync(path.join(sb.queue, 'hold', `qf${id}`)));
    assert.match(mailtk(sb, ['queue', 'list']).stdout, new RegExp(`^${id}!`, 'm'), "mailq marks it '!'");
    assert.match(run(sb, 'mailq', []).stdout, /\(held\)/);
    assert.equal(mailtk(sb, ['queue', 'hold', id]).status, 66, 'held already: nothing to hold');

    for (const q of ['-qf', `-qI${id}`]) {
      const r = run(sb, 'sendmail', [q]);
      assert.equal(r.status, 0, r.stderr);
    }
    for (const args of [['queue', 'flush'], ['queue', 'flush', id]]) {
      const r = mailtk(sb, args);
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.doesNotMatch(logText(sb), new RegExp(`${id}: to=`), 'not attempted');
    const shown = JSON.parse(mailtk(sb, ['queue', 'show', '--json', id]).stdout);
    assert.equal(shown.state, 'held');
    assert.equal(shown.attempts, 0);
    assert.match(shown.message, /^Subject: held$/m);

    const released = mailtk(sb, ['queue', 'release', id]);
    assert.equal(released.status, 0, released.stderr);
    const flushed = mailtk(sb, ['queue', 'flush', '-v', id]);
    assert.equal(flushed.status, 0, flushed.stderr);
    assert.match(flushed.stdout, /far@remote\.test\.\.\. Deferred: /, '-v shows the delivery');
    assert.match(logText(sb), new RegExp(`${id}: to=<far@remote.test>.*stat=Deferred`), 'tried once released');
    const after = JSON.parse(mailtk(sb, ['queue', 'show', '--json', id]).stdout);
    assert.equal(after.state, 'deferred');
    assert.ok(Date.parse(after.nextTry) > Date.now(), 'deferred: next try to come');
    assert.equal(mailtk(sb, ['queue', 'requeue', id]).status, 0);
    const due = JSON.parse(mailtk(sb, ['queue', 'show', '--json', id]).stdout);
    assert.ok(Date.parse(due.nextTry) <= Date.now() + 1000, 'requeued: due now');

    const text = mailtk(sb, ['queue', 'show', id]);
    assert.match(text.stdout, new RegExp(`^Queue-ID:\\s+${id}$`, 'm'));
    assert.match(text.stdout, /^Recipient:\s+<far@remote.test> pending$/m);
    assert.match(text.stdout, /^Recipient:.*\n\nReceived: /m, 'the envelope, an empty line, the message');
    assert.match(text.stdout, /^Subject: held\n\nhello\n$/m);

    const refused = mailtk(sb, ['queue', 'delete', id]);
    assert.equal(refused.status, 64, 'not at a terminal: -y is needed');
    assert.match(refused.stderr, /add -y/);
    assert.ok(listJson(sb).entries.some((e) => e.id === id), 'nothing deleted');
    const del = mailtk(sb, ['queue', 'delete', '-y', id]);
    assert.equal(del.status, 0, del.stderr);
    assert.ok(!listJson(sb).entries.some((e) => e.id === id));
    const who = IS_ROOT ? 'root' : (process.env.LOGNAME ?? process.env.USER ?? '');
    assert.match(logText(sb), new RegExp(`mailtk\\[\\d+\\]: ${id}: removed by ${who}\\b.*\\(mailtk queue delete\\)`));
    const gone = mailtk(sb, ['queue', 'show', id]);
    assert.equal(gone.status, 66);
    assert.match(gone.stderr, new RegExp(`${id}: no such entry`));
  });

  test('ALL: hold ALL, release ALL, delete -y ALL; --json results', () => {
    const ids = [submit(sb, 'a@remote.test', 'a'), submit(sb, 'b@remote.test', 'b')];
    const h = JSON.parse(mailtk(sb, ['queue', 'hold', '--json', 'ALL']).stdout);
    assert.deepEqual(h, { action: 'hold', results: ids.map((id) => ({ id, result: 'done' })) });
    assert.deepEqual(listJson(sb).entries.map((e) => e.state), ['held', 'held']);
    assert.equal(mailtk(sb, ['queue', 'release', 'ALL']).status, 0);
    assert.deepEqual(listJson(sb).entries.map((e) => e.state), ['queued', 'queued']);
    mailtk(sb, ['queue', 'hold', ids[0]]);
    const d = mailtk(sb, ['queue', 'delete', '-y', 'ALL']);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout, new RegExp(`${ids[0]}: removed \\(was in hold/\\)`));
    assert.equal(listJson(sb).total, 0);
    assert.equal(mailtk(sb, ['queue', 'hold', 'ALL', ids[0]]).status, 64, 'ALL stands alone');
  });

  test('at a terminal: delete asks (n keeps, y deletes), and the listing has colour', { skip: spawnSync('script', ['--version']).status !== 0 && 'needs script(1) for a terminal' }, () => {
    const id = submit(sb, 'e@remote.test', 'e');
    const env: NodeJS.ProcessEnv = { ...sb.env, COLUMNS: '100' };
    delete env.NO_COLOR;
    delete env.CI; // chalk gives no colour under a CI variable it does not know, terminal or not
    const atTerminal = (cmd: string, input: string) =>
      spawnSync('script', ['-qec', `${path.join(BIN, 'mailtk')} -C ${sb.conf} ${cmd}`, '/dev/null'], { env, input, encoding: 'utf8', timeout: 60_000 });
    const no = atTerminal(`queue delete ${id}`, 'n\n');
    assert.match(no.stdout, new RegExp(`Delete 1 queue entry \\(${id}\\)\\? This cannot be undone \\[y/N\\]`));
    assert.match(no.stdout, /not confirmed; nothing deleted/);
    assert.ok(listJson(sb).entries.some((e) => e.id === id), 'kept');
    assert.match(atTerminal('queue list', '').stdout, new RegExp(`\\u001b\\[1m${id}\\u001b\\[22m`), 'the ID in bold');
    const yes = atTerminal(`queue delete ${id}`, 'y\n');
    assert.match(yes.stdout, new RegExp(`${id}: removed`));
    assert.ok(!listJson(sb).entries.some((e) => e.id === id), 'deleted');
  });

  test('status: the queue by state; no daemon', () => {
    const id = submit(sb, 'c@remote.test', 'c');
    mailtk(sb, ['queue', 'hold', id]);
    const r = mailtk(sb, ['status', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const s = JSON.parse(r.stdout);
    assert.equal(s.daemon.running, false);
    assert.equal(s.queue.held, 1);
    assert.equal(s.queue.queued + s.queue.deferred + s.queue.active, 0);
    const plain = mailtk(sb, ['status']);
    assert.match(plain.stdout, /^daemon: +not running \(no pid file .*mailtk\.pid; start it with sendmail -bd -q20m\)$/m);
    assert.match(plain.stdout, /^queue: +1 in .*: 0 active, 0 queued, 0 deferred, 1 held; 0 in the maildrop, 0 corrupt$/m);
    mailtk(sb, ['queue', 'delete', '-y', id]);
  });

  test('an ordinary user may list as mailq does, and not change the queue', { skip: !IS_ROOT && 'needs root: runs mailtk as nobody against a queue owned by mail_owner' }, async () => {
    const id = submit(sb, 'd@remote.test', 'd');
    const nobody = { uid: 65534, gid: 65534 };
    for (const action of ['hold', 'delete', 'requeue']) {
      const r = await runAsync(sb, 'mailtk', ['queue', action, '-y', id].filter((a) => a !== '-y' || action === 'delete'), '', nobody);
      assert.equal(r.status, 77, `${action}: ${r.stderr}`);
      assert.match(r.stderr, /only root or the queue's owner \(mailtk\) may change/);
    }
    // No daemon here to ask for the run (test/domain-admin.test.ts asks one).
    const flush = await runAsync(sb, 'mailtk', ['queue', 'flush'], '', nobody);
    assert.equal(flush.status, 77, flush.stderr);
    assert.match(flush.stderr, /no mailtk daemon answers/);
    const list = await runAsync(sb, 'mailtk', ['queue', 'list'], '', nobody);
    const mailq = await runAsync(sb, 'mailq', [], '', nobody);
    assert.equal(list.status, mailq.status, `as mailq: ${list.stderr} / ${mailq.stderr}`);
    assert.ok(listJson(sb).entries.some((e) => e.id === id), 'still there');
    mailtk(sb, ['queue', 'delete', '-y', id]);
  });
});

describe('mailtk status with a daemon', () => {
  let sb: Sandbox;
  before(() => {
    sb = makeSandbox({ extraConf: 'delivery_mode = queue\n' });
  });
  after(() => sb.cleanup());

  test('pid, uptime and the listeners it logged', async () => {
    const d = await startDaemon(sb);
    try {
      const r = mailtk(sb, ['status', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const s = JSON.parse(r.stdout);
      assert.equal(s.daemon.running, true);
      assert.equal(s.daemon.pid, Number(fs.readFileSync(path.join(sb.dir, 'mailtk.pid'), 'utf8').trim()));
      assert.ok(s.daemon.started <= Date.now() && s.daemon.started > Date.now() - 120_000, `started ${s.daemon.started}`);
      for (const [kind, port] of Object.entries(d.ports)) {
        assert.ok(s.daemon.listeners.some((l: { kind: string; address: string }) => l.kind === kind && l.address === `127.0.0.1:${port}`), `${kind} on ${port}`);
      }
      const plain = mailtk(sb, ['status']);
      assert.match(plain.stdout, new RegExp(`^daemon: +running, pid ${s.daemon.pid}, up `, 'm'));
      assert.match(plain.stdout, new RegExp(`smtp +127\\.0\\.0\\.1:${d.ports.smtp}$`, 'm'));
    } finally {
      await d.stop();
    }
  });
});
