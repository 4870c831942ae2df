// Concurrency and crashes through the real binaries: concurrent submitters
// and queue runners deliver every message exactly once; a runner killed with
// SIGKILL mid-run loses nothing and duplicates at most the message in flight;
// a full disk leaves the mailbox byte-identical and the message queued.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { BIN, IS_ROOT, type Sandbox, makeSandbox, run, runAsync, splitMbox, waitFor } from './helpers.ts';

const sandboxes: Sandbox[] = [];
after(() => {
  for (const sb of sandboxes) sb.cleanup();
});

function sandbox(extraConf = ''): Sandbox {
  const sb = makeSandbox({ users: ['alice', 'bob'], extraConf });
  sandboxes.push(sb);
  return sb;
}

function subjects(sb: Sandbox, user: string): string[] {
  return splitMbox(sb.readMbox(user)).map((m) => /\nSubject: (.*)\n/.exec(m)?.[1] ?? '?');
}

function queueCount(sb: Sandbox): number {
  try {
    return fs.readdirSync(sb.queue).filter((f) => f.startsWith('qf') && !f.endsWith('.lock')).length;
  } catch {
    return 0;
  }
}

describe('concurrency', () => {
  test('200 messages from 4 concurrent sendmails while 2 queue runners run: each delivered once', async () => {
    const sb = sandbox('delivery_mode = queue\n');
    const PER = 50;
    const submitters = Array.from({ length: 4 }, async (_, s) => {
      for (let i = 0; i < PER; i++) {
        const r = await runAsync(sb, 'sendmail', ['-i', 'alice'], `Subject: m-${s}-${i}\n\nbody ${s} ${i}\n`);
        assert.equal(r.status, 0, r.stderr);
      }
    });
    let submitting = true;
    const runners = Array.from({ length: 2 }, async () => {
      while (submitting || queueCount(sb) > 0) {
        const r = await runAsync(sb, 'sendmail', ['-q']);
        assert.equal(r.status, 0, r.stderr);
      }
    });
    await Promise.all(submitters);
    submitting = false;
    await Promise.all(runners);
    const got = subjects(sb, 'alice');
    assert.equal(got.length, 200, 'the mbox parses into exactly 200 messages');
    assert.equal(new Set(got).size, 200, 'no message delivered twice');
    assert.equal(queueCount(sb), 0);
  });

  test('SIGKILL of a runner mid-delivery loses nothing, duplicates at most the message in flight', async () => {
    const sb = sandbox('delivery_mode = queue\n');
    const out = path.join(sb.dir, 'slow.out');
    fs.writeFileSync(out, '');
    fs.chmodSync(out, 0o666);
    // A slow program delivery and a fast mailbox delivery for each message.
    sb.writeAliases(`postmaster: root\nslow: bob, "|sleep 0.05; grep '^Subject' >> ${out}"\n`);
    const N = 30;
    for (let i = 0; i < N; i++) assert.equal(run(sb, 'sendmail', ['-i', 'slow'], `Subject: k-${i}\n\nx\n`).status, 0);
    let kills = 0;
    for (let round = 0; round < 40 && queueCount(sb) > 0; round++) {
      const child = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-qf'], { env: sb.env, stdio: 'ignore' });
      await new Promise((r) => setTimeout(r, 600 + ((round * 137) % 800)));
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        kills++;
      }
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('close', r)));
    }
    assert.ok(kills > 0, 'at least one runner was killed mid-run');
    // On a loaded machine a runner may be killed before it gets going, round after round: runs
    // that nobody kills must then finish what the killed ones left (an entry a live process still
    // holds, such as a killed runner's child finishing its delivery, is skipped until it lets go).
    await waitFor(() => queueCount(sb) === 0 || (run(sb, 'sendmail', ['-qf']).status === 0 && queueCount(sb) === 0), 120_000, 'the queue to empty').catch(() => undefined);
    assert.equal(queueCount(sb), 0, 'everything was delivered in the end');
    const mbox = subjects(sb, 'bob');
    assert.equal(new Set(mbox).size, N, 'every message reached the mailbox');
    assert.equal(mbox.length, N, 'the mailbox has no duplicate: placements are checked after a crash');
    const piped = fs.readFileSync(out, 'utf8').trim().split('\n');
    assert.equal(new Set(piped).size, N, 'every message reached the program');
    assert.ok(piped.length - N <= kills, `program duplicates ${piped.length - N} must not exceed kills ${kills}`);
  });
});

describe('disk full', { skip: !IS_ROOT && 'needs root to mount a tmpfs' }, () => {
  test('a write that fails for lack of space leaves the mbox byte-identical and the message queued', async () => {
    const sb = sandbox('delivery_mode = queue\n');
    // Debian's spool: 2775 root:mail (deliveries run as the recipient, with the mail group).
    const mail = spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2] || '0';
    const mnt = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=48k,mode=2775,gid=${mail}`, 'tmpfs', sb.spool]);
    if (mnt.status !== 0) return; // no mount in this sandbox: nothing to test here
    assert.equal(run(sb, 'sendmail', ['-odi', '-i', 'alice'], 'Subject: small\n\nfits\n').status, 0);
    const before = fs.readFileSync(sb.mbox('alice'));
    const big = 'Subject: big\n\n' + 'y'.repeat(70).concat('\n').repeat(1200);
    assert.equal(run(sb, 'sendmail', ['-i', 'alice'], big).status, 0);
    const q = run(sb, 'sendmail', ['-qf']);
    assert.equal(q.status, 0);
    assert.deepEqual(fs.readFileSync(sb.mbox('alice')), before, 'mailbox byte-identical after ENOSPC');
    assert.equal(queueCount(sb), 1, 'the message stays queued');
    assert.match(run(sb, 'mailq', []).stdout, /\(Deferred: .*(space|full)/i);
    spawnSync('umount', ['-l', sb.spool]);
    await waitFor(() => run(sb, 'sendmail', ['-qf']).status === 0 && queueCount(sb) === 0, 10_000, 'delivery after space returns');
    assert.deepEqual(subjects(sb, 'alice'), ['big']);
  });
});
