// vacation(1) through the real binaries in a sandbox: bob's ~/.forward is
// `\bob, "|.../bin/vacation bob"` with a ~/.vacation.msg. Root (or the test's
// own user) submits with -odi, so bob's copy and the program run before
// sendmail exits; the program runs as bob, and its reply, dropped in the
// maildrop when bob may not write the queue, is delivered by `sendmail -q`.
// As an ordinary user the test's own uid is bob's (a .forward counts only
// when its user owns it), and everything runs as that uid. One reply to a
// person, with RFC 3834's fields and the null envelope sender; none for a
// second message within the interval, a list's message, a bulk one, an
// auto-reply, a bounce or a message not addressed to bob; bob gets every
// original. Then the same through the daemon: SMTP on a loopback port, its
// runner delivering, the reply picked up from the maildrop by the daemon.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, binFor, IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, run, splitMbox, startDaemon, waitFor } from './helpers.ts';
import { LineClient } from './mailbox/harness.ts';

let sb: Sandbox;
let seq = 0;

/** A file of bob's, as he would write it. */
function putBobs(name: string, text: string, box: Sandbox = sb): void {
  const bob = box.users.bob;
  const file = path.join(bob.home, name);
  fs.writeFileSync(file, text, { mode: 0o644 });
  if (IS_ROOT) fs.chownSync(file, bob.uid, bob.gid);
}

/** A sandbox where bob is away: his .forward runs vacation, his reply is ~/.vacation.msg. */
function awaySandbox(extraConf: string): Sandbox {
  const box = makeSandbox({ users: ['alice', 'bob', 'carol'], extraConf });
  if (!IS_ROOT) {
    // A .forward counts only when its user owns it: as an ordinary user, the test's own uid is bob's.
    const bob = box.users.bob;
    const passwd = path.join(box.dir, 'etc/passwd');
    const me = `${process.getuid!()}:${process.getgid!()}`;
    fs.writeFileSync(passwd, fs.readFileSync(passwd, 'utf8').replace(`bob:x:${bob.uid}:${bob.gid}:`, `bob:x:${me}:`));
  }
  putBobs('.forward', `\\bob, "|${path.join(IS_ROOT ? binFor(box.users.bob.uid) : BIN, 'vacation')} bob"\n`, box);
  putBobs('.vacation.msg', 'Subject: Away from my mail ($SUBJECT)\n\nI am away until Monday; your mail about "$SUBJECT" will wait.\n-- Bob\n', box);
  return box;
}

before(() => {
  sb = awaySandbox('delivery_mode = interactive');
});
after(() => sb?.cleanup());

const messagesOf = (u: string) => splitMbox(sb.readMbox(u));

/** `sender` writes to bob (envelope), with these header lines; then a queue run delivers any reply. Returns the Message-ID. */
function mailBob(sender: string, headers: string): string {
  const id = `<vac${process.pid}.${++seq}@mail.test>`;
  const text = `${headers}Subject: note ${seq}\nMessage-ID: ${id}\n\nhello bob\n`;
  const before = messagesOf('bob').length;
  const r = run(sb, 'sendmail', ['-odi', '-i', '-f', sender, 'bob'], text);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(messagesOf('bob').length, before + 1, 'bob gets the original');
  const q = run(sb, 'sendmail', ['-q']);
  assert.equal(q.status, 0, q.stderr);
  const prog = fs.readFileSync(sb.log, 'utf8').split('\n').filter((l) => /mailer=prog/.test(l));
  assert.ok(prog.length > 0 && prog.every((l) => /stat=Sent/.test(l)), `vacation ran and exited 0 each time:\n${prog.join('\n')}`);
  return id;
}

/** Every reply in `user`'s mailbox. */
const repliesTo = (user: string) => messagesOf(user).filter((m) => /\nAuto-Submitted: auto-replied\n/.test(m));

describe('vacation in ~/.forward', () => {
  test('a person gets one reply, with RFC 3834 fields, from the null sender', () => {
    const id = mailBob('alice@mail.test', 'From: Alice <alice@mail.test>\nTo: Bob <bob@mail.test>\n');
    const replies = repliesTo('alice');
    assert.equal(replies.length, 1, `one reply; log:\n${fs.readFileSync(sb.log, 'utf8')}`);
    const reply = replies[0];
    assert.match(reply, /^From MAILER-DAEMON /, 'the envelope sender is <>');
    assert.match(reply, /\nReturn-Path: <>\n/);
    assert.match(reply, /\nTo: <alice@mail\.test>\n/);
    assert.match(reply, new RegExp(`\\nIn-Reply-To: ${id}\\n`));
    assert.match(reply, new RegExp(`\\nReferences: ${id}\\n`));
    assert.match(reply, /\nSubject: Away from my mail \(note 1\)\n/);
    assert.match(reply, /\nFrom: .*bob@mail\.test/);
    assert.match(reply, /your mail about "note 1" will wait/);
    assert.ok(fs.existsSync(path.join(sb.users.bob.home, '.vacation.db')));
    if (IS_ROOT) assert.equal(fs.statSync(path.join(sb.users.bob.home, '.vacation.db')).uid, sb.users.bob.uid, "the database is bob's");
  });

  test('a second message within the interval: no second reply', () => {
    mailBob('alice@mail.test', 'From: alice@mail.test\nTo: bob@mail.test\n');
    assert.equal(repliesTo('alice').length, 1);
  });

  const none: Array<[string, string, string]> = [
    ["a list's message (List-Id)", 'carol@mail.test', 'From: carol@mail.test\nTo: bob@mail.test\nList-Id: <dev.lists.mail.test>\n'],
    ['Precedence: bulk', 'carol@mail.test', 'From: carol@mail.test\nTo: bob@mail.test\nPrecedence: bulk\n'],
    ['an auto-reply', 'carol@mail.test', 'From: carol@mail.test\nTo: bob@mail.test\nAuto-Submitted: auto-replied\n'],
    ['a bounce (the null envelope sender), whatever its From: says', '<>', 'From: carol@mail.test\nTo: bob@mail.test\n'],
    ['bob in neither To: nor Cc:', 'carol@mail.test', 'From: carol@mail.test\nTo: team@mail.test\n'],
    ['a list robot (-request)', 'dev-request@mail.test', 'From: carol@mail.test\nTo: bob@mail.test\n'],
  ];
  for (const [what, sender, headers] of none) {
    test(`no reply to ${what}`, () => {
      mailBob(sender, headers);
      assert.equal(repliesTo('carol').length, 0);
      assert.equal(repliesTo('alice').length, 1);
    });
  }

  test('...and carol, who was refused each time above, is answered for a plain message', () => {
    mailBob('carol@mail.test', 'From: carol@mail.test\nCc: bob@mail.test\n');
    assert.equal(repliesTo('carol').length, 1);
  });

  test('vacation -i forgets who was answered; -l lists them', () => {
    const bob = sb.users.bob;
    const asBob = (args: string[]) =>
      spawnSync(path.join(IS_ROOT ? binFor(bob.uid) : BIN, 'vacation'), args, {
        env: { ...sb.env, HOME: bob.home },
        encoding: 'utf8',
        ...(IS_ROOT ? { uid: bob.uid, gid: bob.gid } : {}),
      });
    const l = asBob(['-l']);
    assert.equal(l.status, 0, l.stderr);
    assert.match(l.stdout, /^alice@mail\.test +\w{3} \w{3} /m);
    assert.match(l.stdout, /^carol@mail\.test /m);
    const i = asBob(['-i', '-r', '0']);
    assert.equal(i.status, 0, i.stderr);
    assert.doesNotMatch(asBob(['-l']).stdout, /alice/);
    mailBob('alice@mail.test', 'From: alice@mail.test\nTo: bob@mail.test\n');
    mailBob('alice@mail.test', 'From: alice@mail.test\nTo: bob@mail.test\n');
    assert.equal(repliesTo('alice').length, 3, 'answered again, and with -r 0 every time');
  });
});

describe('vacation under the daemon', () => {
  let box: Sandbox;
  let daemon: RunningDaemon | undefined;
  before(async () => {
    box = awaySandbox('');
    daemon = await startDaemon(box, ['-bD', '-q1h'], ['smtp']);
  });
  after(async () => {
    await daemon?.stop();
    box?.cleanup();
  });

  test('mail over SMTP on loopback: bob keeps it, alice is answered once by the daemon\'s own runs', async () => {
    const send = async (n: number) => {
      const c = await LineClient.connect(daemon!.ports.smtp);
      try {
        const say = async (line: string | undefined) => {
          if (line !== undefined) c.send(line);
          for (;;) {
            const l = await c.line(10_000);
            if (l === undefined || /^\d{3} /.test(l)) return l ?? '';
          }
        };
        await say(undefined);
        await say('EHLO client.test');
        assert.match(await say('MAIL FROM:<alice@mail.test>'), /^250 /);
        assert.match(await say('RCPT TO:<bob@mail.test>'), /^250 /);
        assert.match(await say('DATA'), /^354 /);
        c.send(`From: alice@mail.test\r\nTo: bob@mail.test\r\nSubject: over smtp ${n}\r\nMessage-ID: <smtp${n}.${process.pid}@mail.test>\r\n\r\nhello`);
        assert.match(await say('.'), /^250 /);
        await say('QUIT');
      } finally {
        c.close();
      }
    };
    const mbox = (u: string) => splitMbox(box.readMbox(u));
    await send(1);
    await waitFor(() => mbox('alice').length === 1, 30_000, "vacation's reply to alice");
    assert.match(mbox('alice')[0], /\nAuto-Submitted: auto-replied\n/);
    assert.match(mbox('alice')[0], /\nIn-Reply-To: <smtp1\./);
    await send(2);
    await waitFor(() => mbox('bob').length === 2, 30_000, 'the second message in bob\'s mailbox');
    await waitFor(() => /mailer=prog[^\n]*stat=Sent[\s\S]*mailer=prog[^\n]*stat=Sent/.test(fs.readFileSync(box.log, 'utf8')), 30_000, 'vacation to run twice');
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(mbox('alice').length, 1, 'no second reply');
  });
});
