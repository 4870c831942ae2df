// The maildrop as an attacker sees it: a local user plants entries in the
// world-writable maildrop and the picker (here in-process, as root) must
// take only well-formed submissions, under its own ID, time and hop count,
// and refuse everything else once, without following, opening or
// blocking on it. Entries are planted as an ordinary uid with chown.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { type Config, loadConfig } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { readEntry, readMessage } from './entry-file.ts';
import { DROP_MAX_RECIPIENTS, DROP_TEMP_PREFIX, MAILDROP_MAGIC, dropMessage, ensureQueueDirs, type NewMessage } from './enqueue.ts';
import { isQueueId, newQueueId } from './id.ts';
import { pickup } from './pickup.ts';

const IS_ROOT = process.geteuid?.() === 0;
const ALICE = 54320; // in user_db
const STRANGER = 54321; // in no user database

let dir: string;
let config: Config;
let drop: string;
let corrupt: string;

before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-pickup-'));
  fs.writeFileSync(path.join(dir, 'passwd'), `root:x:0:0:root:/root:/bin/sh\nalice:x:${ALICE}:${ALICE}:Alice:/nonexistent:/bin/sh\n`);
  fs.writeFileSync(path.join(dir, 'local-host-names'), 'mail.test\n');
  fs.writeFileSync(
    path.join(dir, 'c.conf'),
    [
      'hostname = mail.test',
      `queue_dir = ${dir}/spool/mqueue`,
      `log_file = ${dir}/log`,
      `user_db = ${dir}/passwd`,
      `local_host_names_file = ${dir}/local-host-names`,
      'max_message_size = 100000',
      '',
    ].join('\n'),
  );
  config = loadConfig({ file: path.join(dir, 'c.conf') });
  ensureQueueDirs(config);
  drop = config.maildropDir;
  corrupt = path.join(config.queueDir, 'corrupt');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every test starts with an empty maildrop, queue and log (this process's lock token stays). */
beforeEach(() => {
  for (const n of fs.readdirSync(config.queueDir)) {
    if (n !== 'maildrop' && !n.startsWith('rt')) fs.rmSync(path.join(config.queueDir, n), { recursive: true, force: true });
  }
  for (const n of fs.readdirSync(drop)) fs.rmSync(path.join(drop, n), { recursive: true, force: true });
  fs.writeFileSync(config.logFile, '');
});

const message = (over: Partial<NewMessage> = {}): NewMessage => ({
  sender: 'alice@mail.test',
  submitter: 'alice',
  recipients: [{ address: 'bob@mail.test' }],
  data: Buffer.from('Received: (from alice@localhost)\n\tby mail.test (mailtk) id X;\n\tSun, 1 Nov 2026 00:00:00 +0000\nSubject: hi\n\nhello\n'),
  ...over,
});

/** What the real writer (dropMessage) puts in the maildrop, and its name there; taken out again unless kept. */
function written(m = message(), keep = false): { name: string; bytes: Buffer } {
  const before = new Set(fs.readdirSync(drop));
  dropMessage(config, m);
  const name = fs.readdirSync(drop).find((n) => !before.has(n))!;
  const bytes = fs.readFileSync(path.join(drop, name));
  if (!keep) fs.rmSync(path.join(drop, name));
  return { name, bytes };
}

/** The writer's file with its records edited (L follows the text unless an edit sets it). */
function forged(edit: (records: string[]) => string[], data?: string): Buffer {
  const { bytes } = written();
  const end = bytes.indexOf('\n\n', MAILDROP_MAGIC.length);
  const text = data === undefined ? bytes.subarray(end + 2) : Buffer.from(data);
  const records = bytes
    .subarray(MAILDROP_MAGIC.length, end)
    .toString()
    .split('\n')
    .map((r) => (r.startsWith('L') ? `L${text.length}` : r));
  return Buffer.concat([Buffer.from(`${MAILDROP_MAGIC}${edit(records).join('\n')}\n\n`), text]);
}

function plant(name: string, bytes: Buffer | string, uid = ALICE): string {
  const p = path.join(drop, name);
  fs.writeFileSync(p, bytes, { mode: 0o600 });
  fs.chownSync(p, uid, uid);
  return p;
}

const logText = () => fs.readFileSync(config.logFile, 'utf8');
const quarantineLines = (name: string) => logText().split('\n').filter((l) => l.includes(`maildrop/${name}: quarantined:`));
const queued = () => fs.readdirSync(config.queueDir).filter((n) => n.startsWith('qf') && !n.endsWith('.lock'));
const corruptNames = () => (fs.existsSync(corrupt) ? fs.readdirSync(corrupt) : []);
const corruptEntry = (name: string) => {
  const found = corruptNames().filter((n) => n.endsWith(`.${name}`));
  assert.equal(found.length, 1, `one corrupt entry for ${name}: ${corruptNames().join(' ')}`);
  return path.join(corrupt, found[0]);
};

/** Every name under root, recursively, as relative paths; symlinks are not followed. */
function listing(root: string, skip: string[] = []): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (skip.includes(p)) continue;
      out.push(path.relative(root, p));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(root);
  return out.sort();
}

describe('pickup, with the maildrop as untrusted input', { skip: !IS_ROOT && 'needs root to plant files as another uid' }, () => {
  test("a drop from the real writer is queued under pickup's own ID, with its owner as the submitter", async () => {
    const { name } = written(message({ envid: 'env-1', ret: 'hdrs', recipients: [{ address: 'bob@mail.test', notify: 'SUCCESS,FAILURE', orcpt: 'rfc822;bob@mail.test' }] }), true);
    fs.chownSync(path.join(drop, name), ALICE, ALICE);
    assert.equal(fs.statSync(path.join(drop, name)).mode & 0o777, 0o644, 'readable by a picker that is not root');
    const ids = await pickup(config);
    assert.equal(ids.length, 1);
    const c = readEntry(path.join(config.queueDir, `qf${ids[0]}`)).control;
    assert.equal(c.submitter, 'alice');
    assert.equal(c.sender, 'alice@mail.test');
    assert.equal(c.envid, 'env-1');
    assert.equal(c.ret, 'hdrs');
    assert.deepEqual(c.recipients, [{ address: 'bob@mail.test', notify: 'SUCCESS,FAILURE', orcpt: 'rfc822;bob@mail.test' }]);
    assert.equal(c.hops, 0, "the writer's own Received field is not a hop");
    assert.deepEqual(fs.readdirSync(drop), []);
    assert.deepEqual(fs.readdirSync(path.join(config.queueDir, 'pickup')), []);
    assert.match(logText(), new RegExp(`${ids[0]}: from=<alice@mail.test>, size=\\d+, class=0, nrcpts=1, .*relay=alice@localhost`));
    assert.deepEqual(await pickup(config), [], 'nothing is picked up twice');
  });

  test('the queue ID, arrival time and hop count in the file are not used', async () => {
    // A canary beside the queue: the path the forged ID points at.
    fs.mkdirSync(path.join(dir, 'spool', 'x'), { recursive: true });
    const outside = listing(dir, [config.queueDir, config.logFile]);
    const text = 'Received: (from alice@localhost)\n\tby mail.test (mailtk) id X;\n\tSun, 1 Nov 2026 00:00:00 +0000\nReceived: from a.test\nReceived: from b.test\nSubject: hops\n\nx\n';
    const forgedIds = ['/../../x/y', '../../../x/z', 'qf/../../x/w'];
    for (const [i, id] of forgedIds.entries()) {
      plant(`evil${i}`, forged((r) => r.map((l) => (l[0] === 'I' ? `I${id}` : l[0] === 'T' ? 'T1000' : l[0] === 'H' ? 'H99' : l)), text));
    }
    const t0 = Date.now();
    const ids = await pickup(config);
    assert.deepEqual(listing(dir, [config.queueDir, config.logFile]), outside, 'nothing made outside the queue');
    assert.deepEqual(fs.readdirSync(path.join(dir, 'spool', 'x')), []);
    assert.equal(ids.length, forgedIds.length);
    for (const id of ids) {
      assert.ok(isQueueId(id), id);
      const c = readEntry(path.join(config.queueDir, `qf${id}`)).control;
      assert.equal(c.id, id);
      assert.ok(c.arrival >= t0 - 1000, `arrival ${c.arrival} is pickup's time`);
      assert.equal(c.hops, 2, 'hops counted in the text, without the writer’s own Received');
    }
  });

  test('a FIFO does not block the picker; it is quarantined without being opened', async () => {
    const fifo = path.join(drop, 'fifo');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    fs.chownSync(fifo, ALICE, ALICE);
    plant('good', written().bytes);
    const t0 = Date.now();
    const ids = await pickup(config);
    assert.ok(Date.now() - t0 < 1000, `pickup took ${Date.now() - t0} ms`);
    assert.equal(ids.length, 1, 'the good drop beside it is queued');
    assert.ok(fs.lstatSync(corruptEntry('fifo')).isFIFO());
    assert.match(quarantineLines('fifo')[0], /quarantined: not a regular file: a FIFO \(owner uid 54320\); kept as corrupt\//);
  });

  test('a symbolic link is quarantined as a link: its target is neither read nor changed', async () => {
    const secret = path.join(dir, 'secret');
    fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
    // A well-formed drop file of root's, outside the maildrop: followed, it would be root's submission.
    const rootDrop = path.join(dir, 'root-drop');
    fs.writeFileSync(rootDrop, forged((r) => r.map((l) => (l[0] === 'S' ? 'Sroot@mail.test' : l))), { mode: 0o600 });
    const before = [secret, rootDrop].map((p) => ({ bytes: fs.readFileSync(p), st: fs.statSync(p) }));
    for (const [name, target] of [['to-secret', secret], ['to-root-drop', rootDrop]]) {
      fs.symlinkSync(target, path.join(drop, name));
      fs.lchownSync(path.join(drop, name), ALICE, ALICE);
    }
    assert.deepEqual(await pickup(config), []);
    assert.deepEqual(queued(), []);
    for (const [i, p] of [secret, rootDrop].entries()) {
      const st = fs.statSync(p);
      assert.deepEqual(fs.readFileSync(p), before[i].bytes);
      assert.deepEqual([st.uid, st.gid, st.mode, st.nlink], [before[i].st.uid, before[i].st.gid, before[i].st.mode, 1]);
    }
    assert.equal(fs.readlinkSync(corruptEntry('to-secret')), secret);
    assert.equal(fs.readlinkSync(corruptEntry('to-root-drop')), rootDrop);
    assert.match(quarantineLines('to-secret')[0], /not a regular file: a symbolic link \(owner uid 54320\)/);
  });

  test('a directory, a socket, a device and a hard-linked file are quarantined, themselves', async () => {
    const d = path.join(drop, 'adir');
    fs.mkdirSync(path.join(d, 'inner'), { recursive: true });
    fs.writeFileSync(path.join(d, 'inner', 'f'), 'x');
    fs.chownSync(d, ALICE, ALICE);
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(path.join(drop, 'sock'), r));
    const device = spawnSync('mknod', [path.join(drop, 'dev'), 'c', '1', '3']).status === 0;
    const elsewhere = path.join(dir, 'linked');
    fs.writeFileSync(elsewhere, written().bytes);
    fs.chownSync(elsewhere, ALICE, ALICE);
    fs.linkSync(elsewhere, path.join(drop, 'hardlink'));
    try {
      assert.deepEqual(await pickup(config), []);
    } finally {
      server.close();
    }
    assert.deepEqual(fs.readdirSync(drop), []);
    assert.deepEqual(fs.readdirSync(path.join(corruptEntry('adir'), 'inner')), ['f'], 'the directory moved whole');
    assert.ok(fs.lstatSync(corruptEntry('sock')).isSocket());
    assert.match(quarantineLines('sock')[0], /not a regular file: a socket/);
    if (device) assert.ok(fs.lstatSync(corruptEntry('dev')).isCharacterDevice());
    assert.match(quarantineLines('hardlink')[0], /a file with 2 hard links \(owner uid 54320\)/);
    assert.equal(fs.statSync(elsewhere).nlink, 2, 'the other link is untouched');
    assert.match(quarantineLines('adir')[0], /not a regular file: a directory/);
  });

  test('records out of grammar or over the limits are quarantined, each logged once across two pickups', async () => {
    const edit = (f: (l: string) => string) => forged((r) => r.map(f));
    const bad: Record<string, [Buffer, RegExp]> = {
      garbage: [Buffer.from('not a maildrop file at all\n'), /not a mailtk maildrop file/],
      'nul-in-sender': [edit((l) => (l[0] === 'S' ? 'Salice\0@mail.test' : l)), /a control character/],
      'cr-in-recipient': [edit((l) => (l[0] === 'R' ? 'R\t\tbob@mail.test\r' : l)), /a control character/],
      'bad-address': [edit((l) => (l[0] === 'R' ? 'R\t\tbob@@mail.test>' : l)), /recipient/],
      'long-address': [edit((l) => (l[0] === 'R' ? `R\t\t${'b'.repeat(300)}@mail.test` : l)), /longer than/],
      'bad-notify': [edit((l) => (l[0] === 'R' ? 'RSOMETIMES\t\tbob@mail.test' : l)), /bad NOTIFY/],
      'commit-log-record': [forged((r) => [...r, 'C../../../etc/passwd 0']), /unknown record/],
      'journal-record': [forged((r) => [...r, 'X0\tlocal:bob']), /unknown record/],
      'two-senders': [forged((r) => [...r, 'Sroot@mail.test']), /two S records/],
      'no-recipient': [forged((r) => r.filter((l) => l[0] !== 'R')), /no R record/],
      'not-utf8': [Buffer.concat([Buffer.from(`${MAILDROP_MAGIC}V1\nIx\nS`), Buffer.from([0xff, 0xfe]), Buffer.from('\nL0\nR\t\tb@mail.test\n\n')]), /not UTF-8/],
      truncated: [forged((r) => r.map((l) => (l[0] === 'L' ? 'L999' : l))), /L record says 999/],
      'too-many-recipients': [
        forged((r) => [...r, ...Array.from({ length: DROP_MAX_RECIPIENTS }, (_, i) => `R\t\tr${i}@mail.test`)]),
        new RegExp(`${DROP_MAX_RECIPIENTS + 1} recipients \\(at most ${DROP_MAX_RECIPIENTS}\\)`),
      ],
      'big-message': [forged((r) => r, `Subject: big\n\n${'x'.repeat(200_000)}\n`), /message of \d+ bytes/],
      'huge-file': [Buffer.alloc(5 << 20, 'x'), /\d+ bytes \(at most \d+\)/],
    };
    for (const [name, [bytes]] of Object.entries(bad)) plant(name, bytes);
    plant('stranger', written().bytes, STRANGER);
    const first = await pickup(config);
    const second = await pickup(config);
    assert.equal(first.length, 1, 'only the good drop is queued');
    assert.deepEqual(second, []);
    assert.deepEqual(fs.readdirSync(drop), []);
    for (const [name, [, why]] of Object.entries(bad)) {
      const lines = quarantineLines(name);
      assert.equal(lines.length, 1, `${name} logged once: ${lines.join('\n')}`);
      assert.match(lines[0], why, name);
      assert.match(lines[0], /\(owner uid 54320\)/);
      corruptEntry(name);
    }
    assert.equal(corruptNames().length, Object.keys(bad).length);
    const c = readEntry(path.join(config.queueDir, `qf${first[0]}`)).control;
    assert.equal(c.submitter, `#${STRANGER}`, 'an owner in no user database is named by uid');
  });

  test('a submission still being written is left alone for an hour, then quarantined', async () => {
    const { name, bytes } = written();
    // The writer between its link and its unlink: NAME and .tmp.NAME are one file.
    const tmp = plant(DROP_TEMP_PREFIX + name, bytes);
    fs.linkSync(tmp, path.join(drop, name));
    const lone = plant(`${DROP_TEMP_PREFIX}lone`, 'half written');
    await pickup(config);
    await pickup(config);
    assert.deepEqual(fs.readdirSync(drop).sort(), [`${DROP_TEMP_PREFIX}lone`, DROP_TEMP_PREFIX + name, name].sort());
    assert.equal(logText(), '');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    for (const p of [tmp, lone]) fs.utimesSync(p, old, old);
    await pickup(config);
    await pickup(config);
    assert.deepEqual(fs.readdirSync(drop), []);
    assert.deepEqual(queued(), []);
    for (const n of [name, DROP_TEMP_PREFIX + name, `${DROP_TEMP_PREFIX}lone`]) assert.equal(quarantineLines(n).length, 1, n);
    assert.match(quarantineLines(`${DROP_TEMP_PREFIX}lone`)[0], /an unfinished submission over an hour old/);
  });

  test("another local user's sender is replaced and flagged; root's drop keeps its sender", async () => {
    for (const [name, sender] of [['lower', 'bob@mail.test'], ['upper', 'BOB@MAIL.TEST'], ['bare', 'bob']]) {
      plant(name, written(message({ sender })).bytes);
    }
    plant('root', written(message({ sender: 'bob@mail.test', data: Buffer.from('Subject: from root\n\nx\n') })).bytes, 0);
    const ids = await pickup(config);
    assert.equal(ids.length, 4);
    let warned = 0;
    for (const id of ids) {
      const c = readEntry(path.join(config.queueDir, `qf${id}`)).control;
      const data = readMessage(readEntry(path.join(config.queueDir, `qf${id}`))).toString('utf8');
      if (c.submitter === 'root') {
        assert.equal(c.sender, 'bob@mail.test');
        continue;
      }
      assert.equal(c.sender, 'alice@mail.test');
      assert.match(data, /^X-Authentication-Warning: mail\.test: alice set sender to \S+ using -f\n/);
      warned++;
    }
    assert.equal(warned, 3);
  });

  test('a claim left by a stopped picker is finished, or discarded when its entry is queued already', async () => {
    const claims = path.join(config.queueDir, 'pickup');
    fs.mkdirSync(claims, { mode: 0o700, recursive: true });
    const a = newQueueId();
    const b = newQueueId();
    for (const id of [a, b]) {
      fs.writeFileSync(path.join(claims, id), written().bytes);
      fs.chownSync(path.join(claims, id), ALICE, ALICE);
    }
    fs.writeFileSync(path.join(config.queueDir, `qf${b}`), 'committed before the crash\n');
    assert.deepEqual(await pickup(config), [a]);
    assert.deepEqual(fs.readdirSync(claims), []);
    assert.deepEqual(queued().sort(), [`qf${a}`, `qf${b}`].sort());
    assert.equal(fs.readFileSync(path.join(config.queueDir, `qf${b}`), 'utf8'), 'committed before the crash\n');
  });
});

test("the writer refuses what pickup would quarantine, so an honest user's mail is never refused silently", () => {
  const refused = (m: NewMessage) => assert.throws(() => dropMessage(config, m), (e) => e instanceof MailError && /cannot submit/.test(e.message));
  refused(message({ recipients: [{ address: 'bob@mail.test', notify: 'SOMETIMES' }] }));
  refused(message({ bodyType: 'BINARY' }));
  refused(message({ envid: 'x'.repeat(101) }));
  refused(message({ recipients: Array.from({ length: DROP_MAX_RECIPIENTS + 1 }, (_, i) => ({ address: `r${i}@mail.test` })) }));
  refused(message({ data: Buffer.alloc(config.maxMessageSize + (64 << 10) + 1, 'x') }));
  assert.deepEqual(fs.readdirSync(drop), []);
});
