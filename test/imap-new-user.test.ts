// A new Unix user who has never had mail, logged in to the daemon started as
// root: the session runs as the user without the mail group, so it can
// neither create /var/mail/USER in a 2775 root:mail spool nor lock a mailbox
// that does not exist with dotlockfile(1). Before it hands the login to the
// user's session agent, the master has the user's delivery agent make the
// empty mailbox (user:mail 0600), as a first delivery would, and APPEND and
// COPY to INBOX work at once (they answered NO [SERVERBUG] "dotlockfile could
// not lock the mailbox"). A symbolic link planted in the spool where that
// mailbox would be is not followed by anyone.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { IS_ROOT, type RunningDaemon, type Sandbox, type TestUser, addSystemUsers, makeSandbox, removeSystemUsers, run, startDaemon } from './helpers.ts';

const PASSWORD = 'New-user-s3cret';
let sb: Sandbox;
let daemon: RunningDaemon | undefined;
let C: TestUser;
let D: TestUser;

before(async () => {
  if (!IS_ROOT) return;
  sb = makeSandbox({ users: [] });
  [C, D] = addSystemUsers(sb, ['c', 'd']);
  for (const u of [C, D]) assert.equal(run(sb, 'mailpasswd', [u.name], `${PASSWORD}\n`).status, 0);
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

  test('a symbolic link where the mailbox would be is not followed: the login works, APPEND is refused, the target is untouched', async () => {
    const target = path.join(sb.dir, 'elsewhere');
    fs.writeFileSync(target, 'not a mailbox\n', { mode: 0o644 });
    fs.symlinkSync(target, sb.mbox(D.name));
    const f = client(D);
    await f.connect();
    try {
      await assert.rejects(f.append('INBOX', Buffer.from('Subject: x\r\n\r\ny\r\n')));
    } finally {
      await f.logout();
    }
    assert.equal(fs.readFileSync(target, 'utf8'), 'not a mailbox\n');
    assert.equal(fs.statSync(target).uid, 0);
    assert.equal(fs.statSync(target).mode & 0o777, 0o644);
    fs.rmSync(sb.mbox(D.name));
  });
});
