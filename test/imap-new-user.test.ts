// A new Unix user who has never had mail, logged in to the daemon started as
// root: the session runs as the user without the mail group, so it can
// neither create /var/mail/USER in a 2775 root:mail spool nor lock a mailbox
// that does not exist with dotlockfile(1). Before it hands the login to the
// user's session agent, the master has the user's delivery agent make the
// empty mailbox (user:mail 0600), as a first delivery would, and APPEND and
// COPY to INBOX work at once (they answered NO [SERVERBUG] "dotlockfile could
// not lock the mailbox"). A symbolic link planted in the spool where that
// mailbox would be is not followed by anyone. And a session agent that dies
// before it takes a login (stopped, then killed) disconnects the client at
// once: the master kept its copy of the session's socket open, and the
// login waited forever for an answer.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { IS_ROOT, type RunningDaemon, type Sandbox, type TestUser, addSystemUsers, makeSandbox, setMailPassword, processTree, removeSystemUsers, startDaemon, waitFor } from './helpers.ts';
import { LineClient } from './mailbox/harness.ts';

const PASSWORD = 'New-user-s3cret';
let sb: Sandbox;
let daemon: RunningDaemon | undefined;
let C: TestUser;
let D: TestUser;
let E: TestUser;

before(async () => {
  if (!IS_ROOT) return;
  sb = makeSandbox({ users: [] });
  [C, D, E] = addSystemUsers(sb, ['c', 'd', 'e']);
  for (const u of [C, D, E]) setMailPassword(sb, u.name, PASSWORD);
  daemon = await startDaemon(sb, ['-bD', '-q1h']);
});

after(async () => {
  const code = await daemon?.stop();
  const left = IS_ROOT ? removeSystemUsers() : [];
  sb?.cleanup();
  assert.deepEqual(left, [], 'every account made for the test is removed');
  if (daemon) assert.equal(code, 0, `the daemon exits 0 on SIGTERM (stderr: ${daemon.stderr()})`);
});

const client = (u: TestUser) =>
  new ImapFlow({ host: '127.0.0.1', port: daemon!.ports.imap, secure: false, auth: { user: u.name, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });

describe('a new user with no mailbox yet', { skip: IS_ROOT ? false : 'needs root: real accounts, and a session that runs as one' }, () => {
  test('APPEND and COPY to INBOX work at the first login; the mailbox is the user\'s, group mail, 0600', async () => {
    assert.equal(fs.existsSync(sb.mbox(C.name)), false, 'no mailbox before the login');
    const f = client(C);
    await f.connect();
    try {
      const appended = await f.append('INBOX', Buffer.from('From: c@else.test\r\nSubject: kept in INBOX\r\n\r\nhello\r\n'), ['\\Seen']);
      assert.ok(appended && appended.uid, 'APPEND answered with a UID');
      await f.mailboxCreate('Archive');
      await f.append('Archive', Buffer.from('Subject: from the archive\r\n\r\nold\r\n'));
      await f.mailboxOpen('Archive');
      await f.messageCopy('1', 'INBOX');
      await f.mailboxOpen('INBOX');
      const subjects: string[] = [];
      for await (const m of f.fetch('1:*', { envelope: true })) subjects.push(m.envelope?.subject ?? '');
      assert.deepEqual(subjects, ['kept in INBOX', 'from the archive']);
    } finally {
      await f.logout();
    }
    const st = fs.statSync(sb.mbox(C.name));
    const mailGid = Number(spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2]);
    assert.equal(st.uid, C.uid);
    assert.equal(st.gid, mailGid);
    assert.equal(st.mode & 0o777, 0o600);
    assert.match(fs.readFileSync(sb.mbox(C.name), 'utf8'), /Subject: kept in INBOX/);
  });

  test('a symbolic link another user plants where the mailbox would be is not followed: the login works, APPEND is refused, the target is untouched', async () => {
    const target = path.join(sb.dir, 'elsewhere');
    fs.writeFileSync(target, 'not a mailbox\n', { mode: 0o644 });
    // The older layout without a mail group, a 1777 spool, is the one where an ordinary user
    // can plant anything: E, as E, points D's mailbox-to-be at a root-owned file.
    const spool = path.dirname(sb.mbox(D.name));
    const mode = fs.statSync(spool).mode & 0o7777;
    fs.chmodSync(spool, 0o1777);
    try {
      const planted = spawnSync('ln', ['-s', target, sb.mbox(D.name)], { uid: E.uid, gid: E.gid, encoding: 'utf8' });
      assert.equal(planted.status, 0, planted.stderr);
      const f = client(D);
      await f.connect();
      try {
        await assert.rejects(f.append('INBOX', Buffer.from('Subject: x\r\n\r\ny\r\n')));
      } finally {
        await f.logout();
      }
    } finally {
      fs.chmodSync(spool, mode);
    }
    assert.equal(fs.readFileSync(target, 'utf8'), 'not a mailbox\n');
    assert.equal(fs.statSync(target).uid, 0);
    assert.equal(fs.statSync(target).mode & 0o777, 0o644);
    assert.ok(fs.lstatSync(sb.mbox(D.name)).isSymbolicLink(), 'nobody replaced the link either');
    fs.rmSync(sb.mbox(D.name));
  });
});

describe('a session agent that dies before it takes the login', { skip: IS_ROOT ? false : 'needs root: only a root daemon has session agents' }, () => {
  test('the client is disconnected at once, not left waiting for an answer that cannot come', async () => {
    const spare = await waitForSpare();
    // Stopped, it cannot read the login handed to it; killed, it never will.
    process.kill(spare, 'SIGSTOP');
    const c = await LineClient.connect(daemon!.ports.imap);
    try {
      assert.match((await c.line()) ?? '', /^\* OK/);
      c.send(`a1 LOGIN ${E.name} ${PASSWORD}`); // E has no agent yet: the spare is to become E's
      await waitFor(() => processTree(daemon!.child.pid!).some((p) => p.pid === spare && p.uid[0] === 0 && p.argv.includes('--spare')) && fs.readFileSync(`/proc/${spare}/status`, 'utf8').includes('State:\tT'), 5_000, 'the stopped spare');
      // The login reached the master and was handed to the stopped spare once the master has started
      // the next spare (a fixed wait was too short on a loaded machine: the login then went to a new agent).
      await waitFor(() => processTree(daemon!.child.pid!).some((p) => p.argv.includes('--spare') && p.uid[0] === 0 && p.pid !== spare), 10_000, 'the next spare');
      process.kill(spare, 'SIGKILL');
      const started = Date.now();
      const answer = await c.line(20_000);
      assert.ok(answer === undefined || /^(\* BYE|a1 NO)/.test(answer), `after the agent died: ${answer}`);
      assert.ok(Date.now() - started < 10_000, `the client waited ${Date.now() - started} ms`);
    } finally {
      c.close();
    }
    // The next login gets a new agent and works.
    const f = client(E);
    await f.connect();
    await f.mailboxOpen('INBOX');
    await f.logout();
  });
});

/** The pid of the daemon's spare session agent (root, --spare), waiting for it to be started. */
async function waitForSpare(): Promise<number> {
  let pid = 0;
  await waitFor(() => {
    pid = processTree(daemon!.child.pid!).find((p) => p.argv.includes('--spare') && p.uid[0] === 0)?.pid ?? 0;
    return pid > 0;
  }, 10_000, 'a spare session agent');
  return pid;
}
