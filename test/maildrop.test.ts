// The maildrop through the real binaries, with an ordinary user as the
// attacker: every entry below is made by a process running as alice's uid
// (mkfifo, ln, mkdir, a shell writing a forged drop file), beside a real
// submission of hers (`sendmail` as alice). Root's `sendmail -q` must not
// block, must create nothing outside the queue, must deliver the real
// submission and the forged one under a fresh ID, and must quarantine and
// log each bad entry once across two runs.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IS_ROOT, type Sandbox, makeSandbox, run, runAsync, splitMbox } from './helpers.ts';

let sb: Sandbox;
before(() => {
  sb = makeSandbox({ users: ['alice', 'bob'] });
});
after(() => sb?.cleanup());

/** Run a command as alice; fails the test when it fails. */
function asAlice(cmd: string, args: string[], input = ''): void {
  const a = sb.users.alice;
  const r = spawnSync(cmd, args, { uid: a.uid, gid: a.gid, input, encoding: 'utf8', cwd: a.home });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} as alice: ${r.stderr}`);
}

/** Every name under root, recursively; symlinks not followed. */
function listing(root: string, skip: string[]): string[] {
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

describe('the maildrop against a local attacker', { skip: !IS_ROOT && 'needs root to act as another user' }, () => {
  test('bad entries are quarantined and logged once; real and forged-ID submissions are delivered', async () => {
    const alice = sb.users.alice;
    fs.chmodSync(sb.conf, 0o644);
    fs.chmodSync(path.join(sb.dir, 'etc', 'passwd'), 0o644);
    assert.equal(run(sb, 'sendmail', ['-odq', '-i', 'bob'], 'Subject: root first\n\nx\n').status, 0); // makes the queue
    const drop = path.join(sb.queue, 'maildrop');

    // A real submission of alice's, through the maildrop.
    const real = await runAsync(sb, 'sendmail', ['-i', 'bob'], 'Subject: real from alice\n\nhello\n', { uid: alice.uid, gid: alice.gid });
    assert.equal(real.status, 0, real.stderr);
    const [realName] = fs.readdirSync(drop);
    const realFile = fs.readFileSync(path.join(drop, realName), 'utf8');

    // A forged one: its own queue ID pointing out of the queue, an old arrival time, a hop count.
    fs.mkdirSync(path.join(sb.dir, 'spool', 'x'));
    const records = realFile.slice(0, realFile.indexOf('\n\n') + 1).split('\n');
    const text = 'Received: from a.test\nReceived: from b.test\nSubject: forged by alice\n\nforged\n';
    const forged = records
      .map((l) => (l[0] === 'I' ? 'I/../../x/y' : l[0] === 'T' ? 'T1000' : l[0] === 'H' ? 'H99' : l[0] === 'L' ? `L${text.length}` : l))
      .join('\n');
    asAlice('sh', ['-c', 'cat > "$1"', 'sh', path.join(drop, 'forged')], `${forged}\n${text}`);

    // The rest of the attack.
    const secret = path.join(sb.dir, 'secret');
    fs.writeFileSync(secret, 'root only\n', { mode: 0o600 });
    const secretBefore = fs.statSync(secret);
    asAlice('mkfifo', [path.join(drop, 'fifo')]);
    asAlice('ln', ['-s', secret, path.join(drop, 'link')]);
    asAlice('mkdir', [path.join(drop, 'dir')]);
    asAlice('sh', ['-c', 'cp "$1" "$2" && ln "$2" "$3"', 'sh', path.join(drop, realName), path.join(alice.home, 'copy'), path.join(drop, 'hardlink')]);
    asAlice('sh', ['-c', 'echo garbage > "$1"', 'sh', path.join(drop, 'garbage')]);
    const bad = ['fifo', 'link', 'dir', 'hardlink', 'garbage'];

    const outside = listing(sb.dir, [sb.queue, sb.spool, sb.log]);
    for (let i = 0; i < 2; i++) {
      const t0 = Date.now();
      const r = run(sb, 'sendmail', ['-q']);
      assert.equal(r.status, 0, r.stderr);
      assert.ok(Date.now() - t0 < 15_000, `queue run ${i} took ${Date.now() - t0} ms`);
    }
    assert.deepEqual(listing(sb.dir, [sb.queue, sb.spool, sb.log]), outside, 'nothing made outside the queue');
    assert.deepEqual(fs.readdirSync(path.join(sb.dir, 'spool', 'x')), []);

    const mbox = splitMbox(sb.readMbox('bob'));
    const realMsg = mbox.filter((m) => m.includes('Subject: real from alice'));
    const forgedMsg = mbox.filter((m) => m.includes('Subject: forged by alice'));
    assert.equal(realMsg.length, 1, 'the real submission is delivered once');
    assert.equal(forgedMsg.length, 1, 'the forged one is delivered once, under an ID of pickup’s');
    assert.ok(!mbox.some((m) => m.includes('root only')), 'the symlink was not followed');

    const log = fs.readFileSync(sb.log, 'utf8');
    for (const name of bad) {
      const lines = log.split('\n').filter((l) => l.includes(`maildrop/${name}: quarantined:`));
      assert.equal(lines.length, 1, `${name} logged once:\n${log}`);
      assert.match(lines[0], new RegExp(`\\(owner uid ${alice.uid}\\)`));
    }
    const forgedId = /sendmail\[\d+\]: (\w+): from=<alice@mail\.test>, size=(\d+),/.exec(
      log.split('\n').filter((l) => l.includes(`size=${Buffer.byteLength(text)},`)).join('\n'),
    )?.[1];
    assert.ok(forgedId, `a from= line for the forged message:\n${log}`);
    assert.notEqual(forgedId, '/../../x/y');
    assert.match(forgedMsg[0], new RegExp(`^From alice@mail\\.test `));

    // The maildrop is empty but for a directory a picker that is not root may not move (renamed in place).
    assert.deepEqual(fs.readdirSync(drop).filter((n) => !n.startsWith('.refused.')), []);
    const corrupt = fs.readdirSync(path.join(sb.queue, 'corrupt'));
    const refusedInPlace = fs.readdirSync(drop).filter((n) => n.endsWith('.dir'));
    assert.equal(corrupt.filter((n) => n.endsWith('.dir')).length + refusedInPlace.length, 1, 'the directory is quarantined once');
    for (const name of ['fifo', 'link', 'hardlink', 'garbage']) assert.equal(corrupt.filter((n) => n.endsWith(`.${name}`)).length, 1, name);
    assert.equal(fs.readlinkSync(path.join(sb.queue, 'corrupt', corrupt.find((n) => n.endsWith('.link'))!)), secret);
    assert.equal(fs.statSync(path.join(sb.queue, 'corrupt')).mode & 0o777, 0o700);

    const secretAfter = fs.statSync(secret);
    assert.equal(fs.readFileSync(secret, 'utf8'), 'root only\n');
    assert.deepEqual([secretAfter.uid, secretAfter.gid, secretAfter.mode], [secretBefore.uid, secretBefore.gid, secretBefore.mode]);
  });
});
