// IMAP against symlinks a local user plants in their own mail tree, the
// server acting for them (as root here, as the user after privilege
// separation): ~/mail itself, a folder file, a folder directory (one into the
// spool too), ~/mail/.imap and a folder's index directory, and
// ~/mail/.subscriptions. Every command that takes a mailbox name and would go
// through the symlink answers NO, and a canary directory outside (files with
// known bytes, owner and mode) is the same afterwards. LIST's matcher answers
// a pattern built to make a backtracking matcher explode at once.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IS_ROOT } from './helpers.ts';
import { deliver, ImapClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

const USERS = ['ann', 'ben', 'cat', 'dan', 'eve', 'fay', 'gil', 'bob'];
const MBOX = 'From canary@example.org Mon Jan  1 00:00:00 2024\nSubject: canary\n\ncanary body\n\n';

/** Every entry below `dir` (and itself): type, mode, owner, and content or link target. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    const what = st.isSymbolicLink()
      ? `link ${fs.readlinkSync(p)}`
      : st.isFile()
        ? `file ${crypto.createHash('sha256').update(fs.readFileSync(p)).digest('hex')}`
        : 'dir';
    out.push(`${rel} ${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.nlink}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), `${rel}/${n}`);
  };
  walk(dir, '.');
  return out;
}

describe('IMAP and symlinks in the mail tree', () => {
  let s: MailboxServer;
  let bob: { uid: number; gid: number };

  /** A directory outside every home, shaped like a mail tree, owned by bob, with known bytes. */
  function canary(name: string): string {
    const dir = path.join(s.sb.dir, `canary-${name}`);
    const files: Record<string, string> = {
      Folder: MBOX,
      'sub/Inner': MBOX,
      '.subscriptions': 'Canary\n',
      '.imap/INBOX/mailtk.index': 'canary index\n',
      '.imap/Folder/mailtk.index': 'canary index\n',
      '.imap/Folder/mailtk.cache': 'canary cache\n',
      'Work/Inner': MBOX,
    };
    for (const [rel, text] of Object.entries(files)) {
      const file = path.join(dir, rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text, { mode: 0o640 });
    }
    const own = (p: string) => {
      const st = fs.lstatSync(p);
      fs.chmodSync(p, st.isDirectory() ? 0o750 : 0o640);
      if (IS_ROOT) fs.chownSync(p, bob.uid, bob.gid);
      if (st.isDirectory()) for (const n of fs.readdirSync(p)) own(path.join(p, n));
    };
    own(dir);
    return dir;
  }

  const home = (user: string) => s.sb.users[user].home;

  before(async () => {
    s = await startMailboxServer({ users: USERS });
    bob = s.sb.users.bob;
    for (const u of USERS) deliver(s.sb, u, `hello ${u}`);
  });
  after(() => s.close());

  test('~/mail itself a symlink: every mailbox command answers NO [NOPERM], nothing outside changes', async () => {
    const dir = canary('home');
    const before = snapshot(dir);
    const c = await ImapClient.login(s.imap, 'ann');
    assert.equal((await c.run('CREATE Folder')).status, 'OK');
    assert.equal((await c.run('SELECT INBOX')).status, 'OK');
    const mail = path.join(home('ann'), 'mail');
    fs.renameSync(mail, `${mail}.real`);
    fs.symlinkSync(dir, mail);
    const replies = await c.refused([
      'COPY 1 Folder', 'MOVE 1 Folder', 'UID COPY 1 Folder', 'UID MOVE 1 Folder',
      'SELECT Folder', 'EXAMINE Folder', 'SELECT INBOX', 'EXAMINE INBOX', 'SELECT Work/Inner',
      'CREATE New', 'CREATE NewDir/', 'CREATE sub/New', 'DELETE Folder', 'DELETE sub', 'DELETE sub/Inner',
      'RENAME Folder Other', 'RENAME Other Folder', 'RENAME INBOX Other', 'RENAME sub/Inner Other',
      'SUBSCRIBE Folder', 'UNSUBSCRIBE Folder', 'LIST "" "*"', 'LIST "" "%"', 'LIST "sub/" "%"', 'LSUB "" "*"',
      'STATUS Folder (MESSAGES)', 'STATUS INBOX (MESSAGES UIDNEXT)',
      ['APPEND Folder', 'Subject: x\r\n\r\nx\r\n'], ['APPEND INBOX', 'Subject: x\r\n\r\nx\r\n'],
    ]);
    assert.match(replies[0].text, /^\[NOPERM\] ~\/mail is a symbolic link; refusing to follow it$/);
    for (const r of replies) {
      assert.ok(!r.untagged.some((l) => /canary|Canary|Inner|Folder/.test(l) && !l.startsWith('* OK')), r.untagged.join('\n'));
    }
    assert.equal((await c.run('NOOP')).status, 'OK');
    await c.logout();
    await new Promise((r) => setTimeout(r, 500)); // index saves are due 300 ms after a change
    assert.deepEqual(snapshot(dir), before);
  });

  test('a folder file that is a symlink: NO for every command naming it, and LIST leaves it out', async () => {
    const dir = canary('file');
    const before = snapshot(dir);
    const c = await ImapClient.login(s.imap, 'ben');
    assert.equal((await c.run('CREATE Real')).status, 'OK');
    assert.equal((await c.run('SELECT INBOX')).status, 'OK');
    fs.symlinkSync(path.join(dir, 'Folder'), path.join(home('ben'), 'mail', 'Folder'));
    const replies = await c.refused([
      'COPY 1 Folder', 'MOVE 1 Folder', 'SELECT Folder', 'EXAMINE Folder', 'CREATE Folder', 'DELETE Folder',
      'RENAME Folder Other', 'RENAME Real Folder', 'RENAME INBOX Folder', 'SUBSCRIBE Folder', 'UNSUBSCRIBE Folder',
      'STATUS Folder (MESSAGES)', ['APPEND Folder', 'Subject: x\r\n\r\nx\r\n'],
    ]);
    for (const r of replies) assert.match(r.text, /^\[NOPERM\] ~\/mail\/Folder is a symbolic link/);
    const list = await c.run('LIST "" "*"');
    assert.equal(list.status, 'OK');
    // The symlink is left out; the special-use folders made at login (RFC 6154) are there.
    assert.deepEqual(list.untagged.filter((l) => !/\\(Drafts|Junk|Sent|Trash)\)/.test(l)), ['* LIST (\\NoInferiors) "/" INBOX', '* LIST (\\NoInferiors) "/" Real']);
    assert.ok(!list.untagged.some((l) => / Folder$/.test(l)));
    assert.equal((await c.run('LSUB "" "*"')).status, 'OK');
    await c.logout();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(snapshot(dir), before);
    assert.ok(fs.lstatSync(path.join(home('ben'), 'mail', 'Folder')).isSymbolicLink());
  });

  test('a folder directory that is a symlink, elsewhere or into the spool: NO, and nothing there changes', async () => {
    const dir = canary('dir');
    const before = snapshot(dir);
    const spoolBefore = snapshot(s.sb.spool).filter((l) => l.startsWith('./bob '));
    const c = await ImapClient.login(s.imap, 'cat');
    assert.equal((await c.run('CREATE Real')).status, 'OK');
    assert.equal((await c.run('SELECT INBOX')).status, 'OK');
    fs.symlinkSync(dir, path.join(home('cat'), 'mail', 'sub'));
    fs.symlinkSync(s.sb.spool, path.join(home('cat'), 'mail', 'sp'));
    const replies = await c.refused([
      'COPY 1 sub/Inner', 'MOVE 1 sub/Inner', 'COPY 1 sp/bob', 'MOVE 1 sp/bob',
      'SELECT sub/Inner', 'EXAMINE sub/Inner', 'SELECT sp/bob', 'EXAMINE sp/bob',
      'CREATE sub/New', 'CREATE sub/NewDir/', 'CREATE sp/mallory', 'DELETE sub/Inner', 'DELETE sub', 'DELETE sp/bob', 'DELETE sp',
      'RENAME sub/Inner Moved', 'RENAME Real sub/New', 'RENAME sp/bob Stolen', 'RENAME sub Other',
      'SUBSCRIBE sub/Inner', 'UNSUBSCRIBE sub/Inner', 'SUBSCRIBE sp/bob',
      'STATUS sub/Inner (MESSAGES)', 'STATUS sp/bob (MESSAGES)',
      ['APPEND sub/Inner', 'Subject: x\r\n\r\nx\r\n'], ['APPEND sp/bob', 'Subject: x\r\n\r\nx\r\n'],
    ]);
    for (const r of replies) assert.match(r.text, /^\[NOPERM\] ~\/mail\/(sub|sp) is a symbolic link/);
    for (const pattern of ['"" "*"', '"" "sub/*"', '"sub/" "%"', '"" "sp/%"']) {
      const list = await c.run(`LIST ${pattern}`);
      assert.equal(list.status, 'OK');
      assert.ok(!list.untagged.some((l) => /sub|sp/.test(l)), list.untagged.join('\n'));
    }
    await c.logout();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(snapshot(dir), before);
    assert.deepEqual(snapshot(s.sb.spool).filter((l) => l.startsWith('./bob ')), spoolBefore);
  });

  test('~/mail/.imap a symlink: NO for every mailbox, DELETE removes nothing elsewhere', async () => {
    const dir = canary('index');
    const before = snapshot(dir);
    const c = await ImapClient.login(s.imap, 'dan');
    assert.equal((await c.run('CREATE Folder')).status, 'OK');
    assert.equal((await c.run('SELECT INBOX')).status, 'OK');
    const index = path.join(home('dan'), 'mail', '.imap');
    fs.renameSync(index, `${index}.real`);
    fs.symlinkSync(path.join(dir, '.imap'), index);
    const replies = await c.refused([
      'COPY 1 Folder', 'MOVE 1 Folder', 'COPY 1 INBOX', 'SELECT INBOX', 'EXAMINE INBOX', 'SELECT Folder', 'EXAMINE Folder',
      'CREATE New', 'DELETE Folder', 'RENAME Folder Other', 'RENAME INBOX Other', 'SUBSCRIBE Folder', 'UNSUBSCRIBE Folder',
      'STATUS Folder (MESSAGES)', 'STATUS INBOX (MESSAGES)',
      ['APPEND Folder', 'Subject: x\r\n\r\nx\r\n'], ['APPEND INBOX', 'Subject: x\r\n\r\nx\r\n'],
    ]);
    for (const r of replies) assert.match(r.text, /^\[NOPERM\] ~\/mail\/\.imap is a symbolic link/);
    assert.equal((await c.run('LIST "" "*"')).status, 'OK');
    assert.equal((await c.run('LSUB "" "*"')).status, 'OK');
    await c.logout();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(snapshot(dir), before);
    assert.ok(fs.existsSync(path.join(home('dan'), 'mail', 'Folder')));
  });

  test('a folder\'s index directory, or a level above it, a symlink: NO', async () => {
    const dir = canary('folder-index');
    const before = snapshot(dir);
    const c = await ImapClient.login(s.imap, 'fay');
    for (const cmd of ['CREATE Folder', 'CREATE Work/Inner', 'SELECT INBOX']) assert.equal((await c.run(cmd)).status, 'OK', cmd);
    const index = path.join(home('fay'), 'mail', '.imap');
    fs.rmSync(path.join(index, 'Folder'), { recursive: true, force: true });
    fs.symlinkSync(path.join(dir, '.imap', 'Folder'), path.join(index, 'Folder'));
    fs.rmSync(path.join(index, 'Work'), { recursive: true, force: true });
    fs.symlinkSync(path.join(dir, 'Work'), path.join(index, 'Work'));
    const replies = await c.refused([
      'COPY 1 Folder', 'MOVE 1 Work/Inner', 'SELECT Folder', 'EXAMINE Work/Inner', 'DELETE Folder', 'DELETE Work/Inner',
      'RENAME Folder Other', 'RENAME Work/Inner Other', 'SUBSCRIBE Folder', 'STATUS Folder (MESSAGES)', 'STATUS Work/Inner (MESSAGES)',
      ['APPEND Folder', 'Subject: x\r\n\r\nx\r\n'], ['APPEND Work/Inner', 'Subject: x\r\n\r\nx\r\n'],
    ]);
    for (const r of replies) assert.match(r.text, /^\[NOPERM\] ~\/mail\/\.imap\/(Folder|Work) is a symbolic link/);
    await c.logout();
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(snapshot(dir), before);
  });

  test('.subscriptions a symlink, a second hard link or someone else\'s file: SUBSCRIBE, UNSUBSCRIBE and LSUB answer NO', async () => {
    const dir = canary('subscriptions');
    const before = snapshot(dir);
    const c = await ImapClient.login(s.imap, 'eve');
    assert.equal((await c.run('CREATE Folder')).status, 'OK');
    const subs = path.join(home('eve'), 'mail', '.subscriptions');
    const plants: Array<[string, () => void]> = [
      ['a symlink', () => fs.symlinkSync(path.join(dir, '.subscriptions'), subs)],
      ['a hard link', () => fs.linkSync(path.join(dir, '.subscriptions'), subs)],
    ];
    if (IS_ROOT) {
      plants.push(['bob\'s file', () => {
        fs.writeFileSync(subs, 'Canary\n');
        fs.chownSync(subs, bob.uid, bob.gid);
      }]);
    }
    for (const [what, plant] of plants) {
      plant();
      const replies = await c.refused(['SUBSCRIBE Folder', 'UNSUBSCRIBE Folder', 'LSUB "" "*"']);
      for (const r of replies) {
        assert.match(r.text, /^\[(NOPERM|CANNOT)\] /, what);
        assert.ok(!r.untagged.some((l) => l.includes('Canary')), what);
      }
      fs.rmSync(subs);
    }
    assert.deepEqual(snapshot(dir), before);
    // A plain file of the user's works as before.
    assert.equal((await c.run('SUBSCRIBE Folder')).status, 'OK');
    const lsub = await c.run('LSUB "" "*"');
    assert.deepEqual(lsub.untagged, ['* LSUB () "/" Folder']);
    assert.equal(fs.readFileSync(subs, 'utf8'), 'Folder\n');
    if (IS_ROOT) assert.equal(fs.statSync(subs).uid, s.sb.users.eve.uid);
    await c.logout();
  });

  test('LIST with a pattern built for a backtracking matcher, against a 200-character name, answers at once', async () => {
    const c = await ImapClient.login(s.imap, 'gil');
    const long = 'a'.repeat(200);
    assert.equal((await c.run(`CREATE ${long}`)).status, 'OK');
    assert.equal((await c.run(`SUBSCRIBE ${long}`)).status, 'OK');
    const pattern = `"${'*a'.repeat(17)}*ab"`;
    for (const cmd of [`LIST "" ${pattern}`, `LSUB "" ${pattern}`]) {
      const start = process.hrtime.bigint();
      const r = await c.run(cmd);
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      assert.equal(r.status, 'OK');
      assert.deepEqual(r.untagged, []);
      // A backtracking matcher takes hours on this pattern; 2 s leaves room for a loaded machine.
      assert.ok(ms < 2000, `${cmd.slice(0, 4)} took ${ms.toFixed(1)} ms`);
    }
    const hit = await c.run(`LIST "" "${'*a'.repeat(17)}*"`);
    assert.deepEqual(hit.untagged, [`* LIST (\\NoInferiors) "/" ${long}`]);
    await c.logout();
  });
});
