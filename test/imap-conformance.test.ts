// IMAP where mailtk once answered otherwise than RFC 3501 and Dovecot 2.3
// (with mbox storage) do, each checked on the wire against the in-process
// listeners (as root here, acting for the user, who must own whatever is
// made) and, for RENAME INBOX, in a root daemon's per-user agent:
// - RENAME INBOX moves every message (flags kept) to a new mailbox and leaves
//   INBOX, empty, in place; the new name must not exist; a failure makes nothing.
// - A message sequence number beyond the mailbox in FETCH, STORE, COPY or
//   MOVE is BAD "Invalid messageset"; UID sets beyond it are just empty.
// - SEARCH BODY/TEXT find words in decoded text parts, those of an attached
//   message/rfc822 too, whatever hidden mbox fields (Status:) the top has.
// - An mbox-file folder lists as \NoInferiors, and CREATE below it is NO [CANNOT].

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { addSystemUsers, IS_ROOT, makeSandbox, setMailPassword, removeSystemUsers, run, type RunningDaemon, type Sandbox, startDaemon, type TestUser } from './helpers.ts';
import { deliver, ImapClient, LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

/** uid and gid of a path, not followed. */
function owner(p: string): string {
  const st = fs.lstatSync(p);
  return `${st.uid}:${st.gid}`;
}

/** Every file and directory under `dir` (itself included) with its owner. */
function owners(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string) => {
    out[path.relative(dir, p) || '.'] = owner(p);
    if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return out;
}

describe('IMAP conformance', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob', 'carol', 'dave', 'erin'] });
  });
  after(() => s.close());

  test('RENAME INBOX moves every message, flags kept, to a new mailbox of the user\'s and leaves INBOX empty', async () => {
    const u = s.sb.users.alice;
    deliver(s.sb, 'alice', 'first', 'one\n');
    deliver(s.sb, 'alice', 'second', 'two\n');
    const spoolBefore = owner(s.sb.mbox('alice'));
    const c = await ImapClient.login(s.imap, 'alice');
    try {
      await c.ok('SELECT INBOX');
      await c.ok('STORE 2 +FLAGS (\\Flagged $Work)');
      const renamed = await c.run('RENAME INBOX "Archive/Old Inbox"');
      assert.equal(renamed.status, 'OK', renamed.text);
      assert.deepEqual(renamed.untagged, ['* 2 EXPUNGE', '* 1 EXPUNGE', '* 0 RECENT'], 'the selected INBOX hears of its messages leaving, \\Recent ones with them');
      await c.ok('UNSELECT');
      assert.equal(await c.messages('INBOX'), 0);
      assert.equal(await c.messages('"Archive/Old Inbox"'), 2);
      await c.ok('SELECT "Archive/Old Inbox"');
      const f = await c.ok('FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
      const text = f.untagged.join('\n');
      assert.match(text, /^\* 1 FETCH \(FLAGS \(\\Recent\) BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}\nSubject: first/m);
      assert.match(text, /^\* 2 FETCH \(FLAGS \(\\Flagged \$Work \\Recent\) BODY\[HEADER\.FIELDS \(SUBJECT\)\] \{\d+\}\nSubject: second/m);
      await c.ok('UNSELECT');

      // INBOX stays: the same spool file, now empty, still the user's.
      assert.equal(fs.readFileSync(s.sb.mbox('alice'), 'latin1'), '');
      assert.equal(owner(s.sb.mbox('alice')), spoolBefore);
      // Everything made is the user's (the listener runs as root here), nothing root's.
      const want = `${u.uid}:${u.gid}`;
      for (const [p, o] of Object.entries(owners(path.join(u.home, 'mail')))) assert.equal(o, IS_ROOT ? want : `${process.getuid!()}:${process.getgid!()}`, `~/mail/${p} is the user's`);
      assert.match(fs.readFileSync(path.join(u.home, 'mail/Archive/Old Inbox'), 'latin1'), /Subject: first[\s\S]*Subject: second/);

      // The new name must not exist; a second RENAME INBOX moves nothing.
      deliver(s.sb, 'alice', 'third', 'three\n');
      const again = await c.run('RENAME INBOX "Archive/Old Inbox"');
      assert.equal(again.status, 'NO');
      assert.match(again.text, /^\[ALREADYEXISTS\]/);
      assert.equal(await c.messages('INBOX'), 1);
      assert.equal(await c.messages('"Archive/Old Inbox"'), 2);
      // INBOX is still there to be renamed again (RFC 3501 6.3.5).
      await c.ok('RENAME INBOX Later');
      assert.equal(await c.messages('INBOX'), 0);
      assert.equal(await c.messages('Later'), 1);
      const list = (await c.ok('LIST "" *')).untagged;
      assert.ok(list.includes('* LIST (\\NoInferiors) "/" INBOX'), list.join('\n'));
    } finally {
      c.close();
    }
  });

  test('RENAME INBOX that cannot read INBOX, or would go below an mbox file, makes nothing', async () => {
    const u = s.sb.users.dave;
    deliver(s.sb, 'dave', 'kept', 'kept\n');
    const c = await ImapClient.login(s.imap, 'dave');
    try {
      // Sent exists already: made at login (SPECIAL-USE).
      const below = await c.run('RENAME INBOX Sent/inbox');
      assert.equal(below.status, 'NO');
      assert.match(below.text, /^\[CANNOT\]/);
      // INBOX as a symbolic link: refused before any new folder is made.
      const spool = s.sb.mbox('dave');
      const real = `${spool}.real`;
      fs.renameSync(spool, real);
      fs.symlinkSync(real, spool);
      try {
        const r = await c.run('RENAME INBOX Moved');
        assert.notEqual(r.status, 'OK', r.text);
      } finally {
        fs.rmSync(spool);
        fs.renameSync(real, spool);
      }
      assert.deepEqual(fs.readdirSync(path.join(u.home, 'mail')).filter((n) => !n.startsWith('.')).sort(), ['Drafts', 'Junk', 'Sent', 'Trash']);
      assert.equal(await c.messages('INBOX'), 1);
      // With INBOX back, the same RENAME works: nothing was left in the way.
      await c.ok('RENAME INBOX Moved');
      assert.equal(await c.messages('Moved'), 1);
    } finally {
      c.close();
    }
  });

  test('a message sequence number beyond the mailbox is BAD in FETCH, STORE, COPY and MOVE; UID sets are just empty', async () => {
    deliver(s.sb, 'bob', 'b1');
    deliver(s.sb, 'bob', 'b2');
    const c = await ImapClient.login(s.imap, 'bob');
    try {
      await c.ok('CREATE Other');
      await c.ok('SELECT INBOX');
      const invalid: Array<[string, string]> = [
        ['FETCH 3 FLAGS', 'FETCH'], ['FETCH 1:3 FLAGS', 'FETCH'], ['FETCH 1,5 (UID)', 'FETCH'], ['FETCH 3:* FLAGS', 'FETCH'],
        ['STORE 3 +FLAGS (\\Seen)', 'STORE'], ['STORE 2:3 +FLAGS.SILENT (\\Seen)', 'STORE'],
        ['COPY 3 Other', 'COPY'], ['MOVE 1:7 Other', 'MOVE'],
      ];
      for (const [cmd, verb] of invalid) {
        const r = await c.run(cmd);
        assert.equal(`${r.status} ${r.text}`, `BAD Error in IMAP command ${verb}: Invalid messageset`, cmd);
        assert.deepEqual(r.untagged, [], `${cmd}: nothing answered`);
      }
      // Nothing was stored, copied or moved by the refused commands.
      const flags = await c.ok('FETCH 1:* (FLAGS)');
      assert.deepEqual(flags.untagged, ['* 1 FETCH (FLAGS (\\Recent))', '* 2 FETCH (FLAGS (\\Recent))']);
      assert.equal(await c.messages('Other'), 0);
      // In range: as before. "*" is the last message, "2:*" and "*:1" are fine.
      assert.equal((await c.ok('FETCH * (UID)')).untagged[0], '* 2 FETCH (UID 2)');
      assert.equal((await c.ok('FETCH *:1 (UID)')).untagged.length, 2);
      await c.ok('STORE 2:* +FLAGS.SILENT (\\Seen)');
      // UID sets out of range are not errors (RFC 3501 6.4.8).
      for (const cmd of ['UID FETCH 3:99 FLAGS', 'UID STORE 50 +FLAGS (\\Seen)', 'UID COPY 7 Other', 'UID MOVE 9:10 Other']) {
        const r = await c.run(cmd);
        assert.equal(r.status, 'OK', `${cmd}: ${r.text}`);
      }
      assert.equal((await c.ok('UID FETCH 2:99 (FLAGS)')).untagged[0], '* 2 FETCH (UID 2 FLAGS (\\Seen \\Recent))');
      // SEARCH with numbers beyond the mailbox finds nothing; it is not an error.
      assert.deepEqual((await c.ok('SEARCH 5:9')).untagged, ['* SEARCH']);
      // An empty mailbox has no valid message numbers at all (Dovecot: "when there are no messages, all messagesets are invalid").
      await c.ok('SELECT Other');
      for (const cmd of ['FETCH 1 FLAGS', 'FETCH 1:* FLAGS', 'FETCH * FLAGS']) assert.equal((await c.run(cmd)).status, 'BAD', cmd);
      assert.equal((await c.run('UID FETCH 1:* FLAGS')).status, 'OK');
    } finally {
      c.close();
    }
  });

  test('SEARCH BODY and TEXT find words of decoded text parts, an attached message\'s included, after Status: was written', async () => {
    const body = [
      'preamble',
      '--outer',
      'Content-Type: text/plain; charset=us-ascii',
      '',
      'see the forwarded message',
      '--outer',
      'Content-Type: message/rfc822',
      'Content-Disposition: attachment',
      '',
      'From: inner@else.test',
      'Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe_aus_Z=C3=BCrich?=',
      'MIME-Version: 1.0',
      'Content-Type: multipart/alternative; boundary="inner"',
      '',
      '--inner',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      'the hidden word is Supercali=',
      'fragilistic, and caf=C3=A9 cr=C3=A8me',
      '--inner',
      'Content-Type: text/html; charset=iso-8859-1',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      '<p>Sch=F6ne Gr=FC=DFe</p>',
      '--inner--',
      '--outer',
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      Buffer.from('a base64 part says Kümmelbrot\n').toString('base64'),
      '--outer--',
      '',
    ].join('\n');
    const headers = 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="outer"\n';
    deliver(s.sb, 'carol', 'forwarded', body, headers);
    deliver(s.sb, 'carol', 'plain one', 'nothing to see\n');
    deliver(s.sb, 'carol', 'to be expunged');
    // Flags go into the top header as Status:/X-Status: (hidden from IMAP) when the mbox is rewritten.
    const c = await ImapClient.login(s.imap, 'carol');
    try {
      await c.ok('SELECT INBOX');
      await c.ok('STORE 1:2 +FLAGS (\\Seen \\Answered)');
      await c.ok('STORE 3 +FLAGS (\\Deleted)');
      await c.ok('CLOSE');
      assert.match(fs.readFileSync(s.sb.mbox('carol'), 'latin1'), /Status: RO\nX-Status: A\n/, 'the flags are in the mbox headers');
      await c.ok('SELECT INBOX');
      const hits = async (key: string) => (await c.ok(`SEARCH ${key}`)).untagged.join(' ');
      assert.equal(await hits('BODY supercalifragilistic'), '* SEARCH 1', 'quoted-printable soft line break, inside the attached message');
      assert.equal(await hits('TEXT SUPERCALIFRAGILISTIC'), '* SEARCH 1');
      assert.equal(await hits('CHARSET UTF-8 BODY "café crème"'), '* SEARCH 1', 'UTF-8 decoded from =XX');
      assert.equal(await hits('CHARSET UTF-8 BODY "schöne grüße"'), '* SEARCH 1', 'ISO-8859-1 quoted-printable, converted');
      assert.equal(await hits('CHARSET UTF-8 TEXT "Grüße aus Zürich"'), '* SEARCH 1', "the attached message's encoded Subject");
      assert.equal(await hits('CHARSET UTF-8 BODY kümmelbrot'), '* SEARCH 1', 'base64 text part');
      assert.equal(await hits('BODY forwarded'), '* SEARCH 1');
      assert.equal(await hits('BODY "to see"'), '* SEARCH 2');
      assert.equal(await hits('BODY zebra'), '* SEARCH');
      // BODY is the body only: the top header's words (and its hidden fields) are not in it.
      assert.equal(await hits('BODY "plain one"'), '* SEARCH');
      assert.equal(await hits('BODY "X-Status"'), '* SEARCH');
      assert.equal(await hits('TEXT "plain one"'), '* SEARCH 2');
      // The hidden fields are in no header search either: FETCH never shows them.
      assert.equal(await hits('HEADER Status ""'), '* SEARCH');
      assert.equal(await hits('HEADER X-Status A'), '* SEARCH');
      assert.equal(await hits('TEXT "X-Status"'), '* SEARCH');
      assert.equal(await hits('HEADER Subject plain'), '* SEARCH 2');
    } finally {
      c.close();
    }
  });

  test('an mbox-file folder lists as \\NoInferiors, and CREATE below it is NO [CANNOT], not a server bug', async () => {
    const u = s.sb.users.erin;
    const c = await ImapClient.login(s.imap, 'erin');
    try {
      // Sent exists already: made at login (SPECIAL-USE).
      await c.ok('CREATE Projects/2024');
      await c.ok('CREATE Empty/');
      for (const name of ['Sent/sub', 'Sent/sub/', 'Sent/a/b']) {
        const r = await c.run(`CREATE "${name}"`);
        assert.equal(r.status, 'NO', `CREATE ${name}: ${r.text}`);
        assert.match(r.text, /^\[CANNOT\] .*Sent.*\\NoInferiors/, `CREATE ${name}`);
        assert.doesNotMatch(r.text, /SERVERBUG|ENOTDIR/);
      }
      assert.ok(fs.statSync(path.join(u.home, 'mail/Sent')).isFile(), 'Sent is still the mbox file it was');
      const list = (await c.ok('LIST "" *')).untagged;
      assert.deepEqual(list, [
        '* LIST (\\NoInferiors) "/" INBOX',
        '* LIST (\\NoInferiors \\Drafts) "/" Drafts',
        '* LIST (\\Noselect \\HasNoChildren) "/" Empty',
        '* LIST (\\NoInferiors \\Junk) "/" Junk',
        '* LIST (\\Noselect \\HasChildren) "/" Projects',
        '* LIST (\\NoInferiors) "/" Projects/2024',
        '* LIST (\\NoInferiors \\Sent) "/" Sent',
        '* LIST (\\NoInferiors \\Trash) "/" Trash',
      ]);
      assert.deepEqual((await c.ok('LIST "" %')).untagged.filter((l) => l.endsWith(' Sent')), ['* LIST (\\NoInferiors \\Sent) "/" Sent']);
    } finally {
      c.close();
    }
  });

  test('a keyword new to the mailbox is announced with FLAGS and PERMANENTFLAGS, to every session, before the FETCH that carries it', async () => {
    deliver(s.sb, 'dave', 'keywords');
    const a = await ImapClient.login(s.imap, 'dave');
    const b = await ImapClient.login(s.imap, 'dave');
    try {
      await a.ok('SELECT INBOX');
      await b.ok('EXAMINE INBOX');
      const flags = '\\Answered \\Flagged \\Deleted \\Seen \\Draft $Urgent';
      assert.deepEqual((await a.ok('STORE 1 +FLAGS ($Urgent)')).untagged, [
        `* FLAGS (${flags})`,
        `* OK [PERMANENTFLAGS (${flags} \\*)] Flags permitted`,
        '* 1 FETCH (FLAGS ($Urgent \\Recent))',
      ]);
      assert.deepEqual((await a.ok('STORE 1 -FLAGS ($Urgent)')).untagged, ['* 1 FETCH (FLAGS (\\Recent))'], 'told once');
      const news = (await b.ok('NOOP')).untagged;
      assert.deepEqual(news.slice(0, 2), [`* FLAGS (${flags})`, '* OK [PERMANENTFLAGS ()] Read-only mailbox']);
      const appended = await a.run('APPEND INBOX ($Later)', 'Subject: x\r\n\r\nbody\r\n');
      assert.equal(appended.status, 'OK', appended.text);
      assert.ok(appended.untagged.includes(`* FLAGS (${flags} $Later)`), appended.untagged.join('\n'));
    } finally {
      a.close();
      b.close();
    }
  });
});

// ------------------------------------------------------------ in a root daemon's per-user agent

const PW = 'Conformance-s3cret';
let sb: Sandbox | undefined;
let daemon: RunningDaemon | undefined;
let A: TestUser;

describe('RENAME INBOX in the user\'s own agent', { skip: IS_ROOT ? false : 'needs root' }, () => {
  before(async () => {
    sb = makeSandbox({ users: [] });
    [A] = addSystemUsers(sb, ['r']);
    setMailPassword(sb, A.name, PW);
    for (const subject of ['r one', 'r two']) assert.equal(run(sb, 'sendmail', ['-odi', '-i', A.name], `Subject: ${subject}\n\nbody\n`).status, 0);
    daemon = await startDaemon(sb, ['-bD', '-q1h']);
  });

  after(async () => {
    await daemon?.stop();
    const left = removeSystemUsers();
    sb?.cleanup();
    assert.deepEqual(left, []);
  });

  test('moves the messages into a folder file of the user\'s, not root\'s, and leaves INBOX empty', async () => {
    const c = await ImapClient.login(daemon!.ports.imap, A.name, PW);
    try {
      const r = await c.run('RENAME INBOX Old');
      assert.equal(r.status, 'OK', r.text);
      assert.equal(await c.messages('Old'), 2);
      assert.equal(await c.messages('INBOX'), 0);
      assert.equal((await c.run('RENAME INBOX Old')).text.slice(0, 15), '[ALREADYEXISTS]');
    } finally {
      c.close();
    }
    const mail = path.join(A.home, 'mail');
    for (const [p, o] of Object.entries(owners(mail))) assert.equal(o, `${A.uid}:${A.gid}`, `~/mail/${p} is the user's`);
    assert.equal(fs.lstatSync(sb!.mbox(A.name)).uid, A.uid);
    assert.equal(fs.readFileSync(sb!.mbox(A.name), 'latin1'), '');
  });
});
