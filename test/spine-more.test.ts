// More of the spine through the real binaries: an ordinary user's
// submission through the maildrop, delay warnings and returns, DSN NOTIFY,
// -bv, and the exit codes scripts test.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IS_ROOT, type Sandbox, makeSandbox, run, runAsync, splitMbox } from './helpers.ts';

let sb: Sandbox;
before(() => {
  sb = makeSandbox({ users: ['alice', 'bob'], extraConf: 'min_backoff = 1s\n' });
});
after(() => sb.cleanup());

const count = (u: string) => splitMbox(sb.readMbox(u)).length;
const last = (u: string) => splitMbox(sb.readMbox(u)).at(-1) ?? '';

describe('an ordinary user', { skip: !IS_ROOT && 'needs root to act as another user' }, () => {
  test("submits through the maildrop; root's queue run picks it up; the sender cannot be forged", async () => {
    const alice = sb.users.alice;
    // The sandbox tree must be reachable by alice, as /etc/mail and /var/spool are.
    fs.chmodSync(sb.conf, 0o644);
    fs.chmodSync(path.join(sb.dir, 'etc', 'passwd'), 0o644);
    assert.equal(run(sb, 'sendmail', ['-odq', '-i', 'bob'], 'Subject: root first\n\nx\n').status, 0); // creates the queue as root
    const q0 = fs.statSync(sb.queue);
    assert.equal(q0.mode & 0o7777, 0o711);
    assert.equal(fs.statSync(path.join(sb.queue, 'maildrop')).mode & 0o7777, 0o1733);
    const r = await runAsync(sb, 'sendmail', ['-i', '-f', 'bob@mail.test', 'bob'], 'Subject: from alice\n\nhello bob\n', { uid: alice.uid, gid: alice.gid });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readdirSync(path.join(sb.queue, 'maildrop')).length, 1, 'the message waits in the maildrop');
    const n = count('bob');
    assert.equal(run(sb, 'sendmail', ['-q']).status, 0);
    assert.equal(count('bob'), n + 2);
    const m = splitMbox(sb.readMbox('bob')).find((x) => x.includes('Subject: from alice'))!;
    assert.match(m, /^From alice@mail\.test /, 'envelope sender is the submitting user, not the forged one');
    assert.match(m, /X-Authentication-Warning: mail\.test: alice set sender to bob@mail\.test using -f/);
    assert.equal(fs.readdirSync(path.join(sb.queue, 'maildrop')).length, 0);
  });
});

describe('retries', () => {
  // Retries, the delay warning and the return are tested with a clock the test moves: src/deliver/queue-run.test.ts.
  test('NOTIFY=SUCCESS sends a delivery notice; NOTIFY=NEVER suppresses the bounce', () => {
    sb.writeAliases('postmaster: root\n');
    const n = count('alice');
    assert.equal(run(sb, 'sendmail', ['-odi', '-i', '-N', 'success', '-f', 'alice@mail.test', 'bob'], 'Subject: receipt\n\nx\n').status, 0);
    run(sb, 'sendmail', ['-q']);
    assert.equal(count('alice'), n + 1);
    assert.match(last('alice'), /Action: delivered/);
    assert.equal(run(sb, 'sendmail', ['-odi', '-i', '-N', 'never', '-f', 'alice@mail.test', 'nobody-here'], 'Subject: q\n\nx\n').status, 0);
    run(sb, 'sendmail', ['-q']);
    assert.equal(count('alice'), n + 1, 'no bounce with NOTIFY=NEVER');
  });

  test('a bounce is never sent to the null sender; it goes once to postmaster', () => {
    sb.writeAliases('postmaster: alice\n');
    const n = count('alice');
    assert.equal(run(sb, 'sendmail', ['-odi', '-i', '-f', '<>', 'no-such-one'], 'Subject: from null\n\nx\n').status, 0);
    run(sb, 'sendmail', ['-q']);
    run(sb, 'sendmail', ['-q']);
    assert.equal(count('alice'), n + 1, 'postmaster got exactly one notice');
    assert.match(last('alice'), /Final-Recipient: rfc822; ?no-such-one@mail\.test/);
    assert.match(run(sb, 'mailq', []).stdout, /is empty/);
  });
});

describe('verification and exit codes', () => {
  test('-bv says what would happen; unknown users exit 67', () => {
    sb.writeAliases('postmaster: root\nfriends: alice, bob\n');
    const ok = run(sb, 'sendmail', ['-bv', 'friends']);
    assert.equal(ok.status, 0);
    assert.equal(ok.stdout, 'alice@mail.test... deliverable: mailer local, user alice\nbob@mail.test... deliverable: mailer local, user bob\n');
    const bad = run(sb, 'sendmail', ['-bv', 'nobody-at-all']);
    assert.equal(bad.status, 67);
    assert.match(bad.stdout, /nobody-at-all@mail\.test\.\.\. User unknown/);
  });

  test('bad address syntax exits 65; an unwritable queue exits 75 and nothing is claimed', () => {
    const r = run(sb, 'sendmail', ['-i', 'a\u0001b@mail.test'], 'Subject: x\n\nx\n');
    assert.equal(r.status, 65, r.stderr);
    const q = run(sb, 'sendmail', ['-O', 'queue_dir=/dev/null/q', '-i', 'alice'], 'Subject: x\n\nx\n');
    assert.equal(q.status, 75, q.stderr);
    assert.match(q.stderr, /queue/);
  });
});
