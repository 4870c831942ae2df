// The spine end to end through the real binaries: sendmail submission, the
// queue, aliases and newaliases, local mbox delivery, program and file
// delivery, bounces, mailq and queue runs. Every test runs with -C pointing
// at a sandbox in a temporary directory.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IS_ROOT, type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';

let sb: Sandbox;
before(() => {
  sb = makeSandbox({ users: ['alice', 'bob', 'carol', 'dave'] });
});
after(() => sb.cleanup());

function send(args: string[], input: string | Buffer) {
  return run(sb, 'sendmail', args, input);
}

function messagesOf(user: string): string[] {
  return splitMbox(sb.readMbox(user));
}

function lastMessage(user: string): string {
  const m = messagesOf(user);
  return m[m.length - 1] ?? '';
}

function bodyOf(msg: string): string {
  return msg.slice(msg.indexOf('\n\n') + 2);
}

/** Who runs the tests: the sender of what they submit. */
const ME = os.userInfo().username;

describe('submission', () => {
  test('printf | sendmail -i user: delivered with the headers sendmail adds', () => {
    const r = send(['-odi', '-i', 'bob'], 'Subject: hi\n\nbody line\n');
    assert.equal(r.status, 0, r.stderr);
    const m = lastMessage('bob');
    assert.match(m, new RegExp(`^From ${ME}@mail\\.test \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4}\\n`));
    assert.match(m, new RegExp(`\\nReturn-Path: <${ME}@mail\\.test>\\n`));
    assert.match(m, /\nDelivered-To: bob@mail\.test\n/);
    assert.match(m, new RegExp(`\\nReceived: \\(from ${ME}@localhost\\)\\n\\tby mail\\.test \\(mailtk\\) id \\w{14};\\n\\t`));
    assert.match(m, new RegExp(`\\nFrom: .*${ME}@mail\\.test`));
    assert.match(m, /\nDate: \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}\n/);
    assert.match(m, /\nMessage-ID: <[^>]+@mail\.test>\n/i);
    assert.match(m, /\nSubject: hi\n/);
    assert.equal(bodyOf(m), 'body line\n\n');
  });

  test('the body arrives byte-exact, From lines quoted (mboxrd), CRLF normalised', () => {
    const body = 'line one\r\nFrom the start\r\n>From already\r\n\r\ntabs\tand trailing spaces  \r\nunicode: 你好\r\n';
    const r = send(['-odi', '-i', 'carol'], `Subject: exact\r\n\r\n${body}`);
    assert.equal(r.status, 0, r.stderr);
    const expected = body.replace(/\r\n/g, '\n').replace(/^(>*From )/gm, '>$1');
    assert.equal(bodyOf(lastMessage('carol')), expected + '\n');
  });

  test('without -i a lone dot ends the message; with -i it is kept', () => {
    send(['-odi', 'dave'], 'Subject: dot\n\nbefore\n.\nafter\n');
    assert.equal(bodyOf(lastMessage('dave')), 'before\n\n');
    send(['-odi', '-i', 'dave'], 'Subject: dot2\n\nbefore\n.\nafter\n');
    assert.equal(bodyOf(lastMessage('dave')), 'before\n.\nafter\n\n');
  });

  test('-t reads To/Cc/Bcc, removes Bcc, adds command-line recipients', () => {
    const before = ['alice', 'bob', 'carol', 'dave'].map((u) => messagesOf(u).length);
    const r = send(['-odi', '-t', '-i', 'dave'], 'To: Alice <alice@mail.test>\nCc: bob\nBcc: carol@mail.test\nSubject: t\n\nx\n');
    assert.equal(r.status, 0, r.stderr);
    const after = ['alice', 'bob', 'carol', 'dave'].map((u) => messagesOf(u).length);
    assert.deepEqual(after, before.map((n) => n + 1));
    for (const u of ['alice', 'bob', 'carol', 'dave']) assert.doesNotMatch(lastMessage(u), /^Bcc:/im);
  });

  test('-f, -F and header injection through -F is impossible', () => {
    const r = send(['-odi', '-i', '-f', 'list-bounces@mail.test', '-F', 'Evil\nBcc: carol@mail.test', 'alice'], 'Subject: f\n\nx\n');
    assert.equal(r.status, 0, r.stderr);
    const m = lastMessage('alice');
    assert.match(m, /^From list-bounces@mail\.test /);
    assert.match(m, /\nReturn-Path: <list-bounces@mail\.test>\n/);
    assert.doesNotMatch(m, /\nBcc:/);
    const carolBefore = messagesOf('carol').length;
    assert.equal(messagesOf('carol').length, carolBefore);
  });

  test('default background delivery: sendmail returns at once, mail arrives', async () => {
    const n = messagesOf('alice').length;
    const r = send(['-i', 'alice'], 'Subject: bg\n\nbackground\n');
    assert.equal(r.status, 0, r.stderr);
    await waitFor(() => messagesOf('alice').length === n + 1, 15000, 'background delivery');
  });

  test('six messages queued one after another are delivered in that order', () => {
    const before = messagesOf('dave').length;
    for (let i = 1; i <= 6; i++) assert.equal(send(['-odq', '-i', 'dave'], `Subject: order-${i}\n\nx\n`).status, 0);
    assert.equal(run(sb, 'sendmail', ['-q']).status, 0);
    const got = messagesOf('dave').slice(before).map((m) => /Subject: (order-\d)/.exec(m)?.[1]);
    assert.deepEqual(got, ['order-1', 'order-2', 'order-3', 'order-4', 'order-5', 'order-6']);
  });

  test('a bounce arrives with the background delivery that made it: no other run', async () => {
    const n = messagesOf('alice').length;
    const r = send(['-i', '-f', 'alice@mail.test', 'nosuchuser'], 'Subject: bg-bounce\n\nwhere\n');
    assert.equal(r.status, 0, r.stderr);
    // No daemon and no cron here: only the submission's own background delivery can bring it.
    await waitFor(() => messagesOf('alice').some((m) => /Subject: bg-bounce/.test(m) && /Action: failed/.test(m)), 15000, 'the bounce');
    assert.equal(messagesOf('alice').length, n + 1);
    await waitFor(() => !fs.readdirSync(sb.queue).some((f) => f.startsWith('qf')), 5000, 'an empty queue');
  });

  test('usage errors exit 64; no recipients exits 64', () => {
    assert.equal(send(['-Z'], '').status, 64);
    const r = send(['-t', '-i'], 'Subject: nobody\n\nx\n');
    assert.equal(r.status, 64);
    assert.match(r.stderr, /No recipient addresses found in header/);
  });

  test('a bad config exits 78 naming file and line', () => {
    const bad = path.join(sb.dir, 'bad.conf');
    fs.writeFileSync(bad, 'hostname = x\nspool = /tmp\n');
    const r = run(sb, 'sendmail', ['-C', bad, '-bp']);
    assert.equal(r.status, 78);
    assert.match(r.stderr, new RegExp(`${bad}:2: unknown key "spool"`));
  });
});

describe('aliases', () => {
  test('lists, :include:, |program, /file, \\user and owner-', () => {
    const inc = path.join(sb.dir, 'etc', 'team.inc');
    fs.writeFileSync(inc, '# team\nalice\nbob\n');
    const out = path.join(sb.dir, 'prog-out');
    fs.mkdirSync(out, { mode: 0o777 });
    fs.chmodSync(out, 0o777);
    const file = path.join(out, 'archive.mbox');
    sb.writeAliases(
      [
        'postmaster: root',
        'root: \\root, alice',
        'team: :include:' + inc,
        'all: team, carol',
        'owner-all: dave',
        `pipe: "|/bin/sh -c 'cat > ${out}/piped.$$; id -un > ${out}/whoami'"`,
        `archive: ${file}`,
        'fail: "|exit 1"',
        '',
      ].join('\n'),
    );
    const counts = () => ['alice', 'bob', 'carol'].map((u) => messagesOf(u).length);
    const c0 = counts();
    assert.equal(send(['-odi', '-i', 'all'], 'Subject: to all\n\nhello all\n').status, 0);
    assert.deepEqual(counts(), c0.map((n) => n + 1));
    assert.equal(send(['-odi', '-i', 'pipe'], 'Subject: piped\n\npiped body\n').status, 0);
    const piped = fs.readdirSync(out).filter((f) => f.startsWith('piped.'));
    assert.equal(piped.length, 1);
    const text = fs.readFileSync(path.join(out, piped[0]), 'utf8');
    assert.match(text, new RegExp(`^From ${ME}@mail\\.test `));
    assert.match(text, /\n\npiped body\n$/);
    if (IS_ROOT) assert.equal(fs.readFileSync(path.join(out, 'whoami'), 'utf8').trim(), 'nobody');
    assert.equal(send(['-odi', '-i', 'archive'], 'Subject: filed\n\nfiled body\n').status, 0);
    assert.match(fs.readFileSync(file, 'utf8'), /\n\nfiled body\n\n$/);
  });

  test('~/.forward is honoured for local users', { skip: !IS_ROOT && 'needs root: a .forward counts only when its user owns it' }, () => {
    const bob = sb.users.bob;
    const fwd = path.join(bob.home, '.forward');
    fs.writeFileSync(fwd, 'carol, \\bob\n');
    if (IS_ROOT) fs.chownSync(fwd, bob.uid, bob.gid);
    const c = messagesOf('carol').length;
    const b = messagesOf('bob').length;
    assert.equal(send(['-odi', '-i', 'bob'], 'Subject: fwd\n\nforwarded\n').status, 0);
    assert.equal(messagesOf('carol').length, c + 1);
    assert.equal(messagesOf('bob').length, b + 1);
    fs.rmSync(fwd);
  });

  test('newaliases on a file with errors exits non-zero, names file:line, keeps the old database', () => {
    const good = 'postmaster: root\nfriends: alice, bob\n';
    sb.writeAliases(good);
    fs.writeFileSync(sb.aliases, good + 'broken line without colon\n');
    const r = run(sb, 'newaliases', []);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, new RegExp(`${sb.aliases.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3`));
    const v = run(sb, 'sendmail', ['-bv', 'friends']);
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /alice@mail\.test\.\.\. deliverable: mailer local, user alice/);
    fs.writeFileSync(sb.aliases, good);
    const ok = run(sb, 'newaliases', []);
    assert.equal(ok.status, 0);
    assert.match(ok.stdout, new RegExp(`${sb.aliases.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 2 aliases, longest \\d+ bytes, \\d+ bytes total`));
  });
});

describe('failures', () => {
  test('an unknown user bounces: the DSN arrives in the sender\'s mbox', () => {
    const n = messagesOf('alice').length;
    const r = send(['-odi', '-i', '-f', 'alice@mail.test', 'nosuchuser'], 'Subject: lost\n\nwhere\n');
    assert.equal(r.status, 0, r.stderr);
    // The run that bounced it delivered the bounce: no other run.
    assert.equal(messagesOf('alice').length, n + 1);
    const dsn = lastMessage('alice');
    assert.match(dsn, /^From MAILER-DAEMON /);
    assert.match(dsn, /\nReturn-Path: <>\n/);
    assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status/i);
    assert.match(dsn, /Final-Recipient: rfc822; ?nosuchuser@mail\.test/i);
    assert.match(dsn, /Action: failed/);
    assert.match(dsn, /Status: 5\.1\.1/);
    assert.match(dsn, /Subject: lost/);
    const log = fs.readFileSync(sb.log, 'utf8');
    assert.match(log, /to=<nosuchuser@mail\.test>, .*mailer=error, dsn=5\.1\.1, stat=User unknown/);
  });

  test('mailq shows a deferred message with its reason; it arrives once the cause is gone', () => {
    sb.writeAliases('postmaster: root\nslow: "|exit 75"\n');
    assert.equal(send(['-odi', '-i', 'slow'], 'Subject: later\n\nx\n').status, 0);
    const q = run(sb, 'mailq', []);
    assert.equal(q.status, 0);
    assert.match(q.stdout, new RegExp(`^\\t\\t${sb.queue} \\(1 request\\)\\n-----Q-ID----- --Size-- -----Q-Time----- -+Sender/Recipient-+\\n`));
    assert.match(q.stdout, new RegExp(`\\n\\w{14} +\\d+ \\w{3} \\w{3} [ \\d]\\d \\d\\d:\\d\\d <${ME}@mail\\.test>\\n {17}\\(Deferred: .*exit 75.*\\)\\n {41}<slow@mail\\.test>\\n\\t\\tTotal requests: 1\\n$`));
    sb.writeAliases('postmaster: root\nslow: alice\n');
    const n = messagesOf('alice').length;
    assert.equal(run(sb, 'sendmail', ['-q']).status, 0);
    assert.equal(messagesOf('alice').length, n, 'a plain -q waits for the next try time');
    assert.equal(run(sb, 'sendmail', ['-qf']).status, 0);
    assert.equal(messagesOf('alice').length, n + 1, '-qf flushes');
    const empty = run(sb, 'mailq', []);
    assert.equal(empty.stdout, `${sb.queue} is empty\n\t\tTotal requests: 0\n`);
  });
});
