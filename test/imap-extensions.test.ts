// IMAP extensions current clients use, each on the wire against the
// in-process listeners and with a real client where one is here (imapflow,
// Python's imaplib): ID (RFC 2971), ENABLE (RFC 5161), SPECIAL-USE (RFC 6154),
// LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819), ESEARCH (RFC 4731),
// SORT and THREAD (RFC 5256).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { deliver, ImapClient, LineClient, type MailboxServer, PASSWORD, python, startMailboxServer } from './mailbox/harness.ts';

function flow(port: number, user: string): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false }, clientInfo: { name: 'ext-test', version: '1' } });
}

describe('IMAP extensions', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob', 'carol', 'dave', 'erin'] });
  });
  after(() => s.close());

  test('ID: the server names itself for NIL and for a client list, in any state; bad forms are BAD', async () => {
    const c = await ImapClient.connect(s.imap);
    try {
      const caps = (await c.ok('CAPABILITY')).untagged[0];
      assert.match(caps, / ID( |$)/);
      assert.deepEqual((await c.ok('ID NIL')).untagged, ['* ID ("name" "mailtk" "version" "0.1.0")']);
      assert.deepEqual((await c.ok('ID ("name" "test" "version" NIL)')).untagged, ['* ID ("name" "mailtk" "version" "0.1.0")']);
      assert.equal((await c.run('ID')).status, 'BAD');
      assert.equal((await c.run('ID ("name")')).status, 'BAD');
      assert.equal((await c.run('ID (name "x")')).status, 'BAD');
      assert.equal((await c.run(`ID ("${'x'.repeat(31)}" "y")`)).status, 'BAD');
      await c.ok(`LOGIN alice ${PASSWORD}`);
      assert.equal((await c.ok('ID NIL')).untagged.length, 1);
    } finally {
      c.close();
    }
    const f = flow(s.imap, 'alice');
    await f.connect();
    try {
      assert.deepEqual(f.serverInfo, { name: 'mailtk', version: '0.1.0' });
    } finally {
      await f.logout();
    }
  });

  test('ENABLE: only after login and before SELECT, at least one name, ENABLED lists what it turned on', async () => {
    const c = await ImapClient.connect(s.imap);
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / ENABLE( |$)/);
      assert.equal((await c.run('ENABLE FOO')).status, 'BAD', 'not before login');
      await c.ok(`LOGIN alice ${PASSWORD}`);
      assert.equal((await c.run('ENABLE')).status, 'BAD');
      assert.equal((await c.run('ENABLE "FOO"')).status, 'BAD');
      assert.deepEqual((await c.ok('ENABLE FOO CONDSTORE')).untagged, ['* ENABLED CONDSTORE']);
      assert.deepEqual((await c.ok('ENABLE CONDSTORE')).untagged, ['* ENABLED'], 'already on');
      await c.ok('SELECT INBOX');
      assert.equal((await c.run('ENABLE FOO')).status, 'BAD', 'not in the selected state');
    } finally {
      c.close();
    }
    const r = await python(`
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice', '${PASSWORD}')
typ, data = m.enable('X-NOTHING')
print(typ, data)
m.logout()
`, [String(s.imap)]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /^OK /);
  });
  test('SPECIAL-USE: Drafts, Junk, Sent and Trash made at login, owned by the user, and listed with their attributes', async () => {
    const c = await ImapClient.login(s.imap, 'bob');
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / SPECIAL-USE /);
      const list = (await c.ok('LIST "" *')).untagged;
      assert.deepEqual(list, [
        '* LIST (\\NoInferiors) "/" INBOX',
        '* LIST (\\NoInferiors \\Drafts) "/" Drafts',
        '* LIST (\\NoInferiors \\Junk) "/" Junk',
        '* LIST (\\NoInferiors \\Sent) "/" Sent',
        '* LIST (\\NoInferiors \\Trash) "/" Trash',
      ]);
      const bob = s.sb.users.bob;
      for (const n of ['Drafts', 'Junk', 'Sent', 'Trash']) {
        const st = fs.lstatSync(path.join(bob.home, 'mail', n));
        assert.ok(st.isFile() && st.size === 0, n);
        // Only root can give bob his files; an ordinary user's test server makes them as that user.
        if (process.geteuid?.() === 0) assert.equal(`${st.uid}:${st.gid}`, `${bob.uid}:${bob.gid}`, `${n} is bob's`);
        assert.equal(st.mode & 0o777, 0o600);
      }
      await c.ok('CREATE Archive');
      assert.deepEqual((await c.ok('LIST (SPECIAL-USE) "" *')).untagged, list.slice(1));
      assert.deepEqual((await c.ok('LIST "" * RETURN (SPECIAL-USE)')).untagged.length, 6);
      await c.ok('DELETE Junk');
      assert.equal((await c.ok('LIST "" Junk')).untagged.length, 0);
    } finally {
      c.close();
    }
    // A deleted one comes back at the next login (Dovecot's auto = create); imapflow finds them by their use.
    const f = flow(s.imap, 'bob');
    await f.connect();
    try {
      const uses = Object.fromEntries((await f.list()).filter((m) => m.specialUseSource === 'extension').map((m) => [m.specialUse, m.path]));
      assert.deepEqual(uses, { '\\Drafts': 'Drafts', '\\Junk': 'Junk', '\\Sent': 'Sent', '\\Trash': 'Trash' });
    } finally {
      await f.logout();
    }
  });

  test('LIST-EXTENDED and LIST-STATUS: selection and return options, several patterns, STATUS after LIST', async () => {
    deliver(s.sb, 'carol', 'one');
    deliver(s.sb, 'carol', 'two');
    const c = await ImapClient.login(s.imap, 'carol');
    try {
      const caps = (await c.ok('CAPABILITY')).untagged[0];
      assert.match(caps, / LIST-EXTENDED /);
      assert.match(caps, / LIST-STATUS( |$)/);
      await c.ok('CREATE Work/2024');
      await c.ok('CREATE Work/2025');
      await c.ok('CREATE Old/');
      await c.ok('SUBSCRIBE INBOX');
      await c.ok('SUBSCRIBE Work/2024');
      await c.ok('SUBSCRIBE Sent');
      await c.ok('SUBSCRIBE Gone');
      assert.deepEqual((await c.ok('LIST (SUBSCRIBED) "" *')).untagged, [
        '* LIST (\\NoInferiors \\Subscribed) "/" INBOX',
        '* LIST (\\NoInferiors \\Subscribed \\Sent) "/" Sent',
        '* LIST (\\NoInferiors \\Subscribed) "/" Work/2024',
        '* LIST (\\NonExistent \\Subscribed) "/" Gone',
      ]);
      assert.deepEqual((await c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" %')).untagged, [
        '* LIST (\\NoInferiors \\Subscribed) "/" INBOX',
        '* LIST (\\NoInferiors \\Subscribed \\Sent) "/" Sent',
        '* LIST (\\Noselect \\HasChildren) "/" Work ("CHILDINFO" ("SUBSCRIBED"))',
        '* LIST (\\NonExistent \\Subscribed) "/" Gone',
      ]);
      // A descendant the pattern matches is listed itself: no CHILDINFO for its parent (as Dovecot).
      assert.deepEqual((await c.ok('LIST (SUBSCRIBED RECURSIVEMATCH) "" W*')).untagged, ['* LIST (\\NoInferiors \\Subscribed) "/" Work/2024']);
      assert.deepEqual((await c.ok('LIST (REMOTE) "" ("Work/*" "Old" "INBOX") RETURN (CHILDREN SUBSCRIBED)')).untagged, [
        '* LIST (\\NoInferiors \\Subscribed) "/" INBOX',
        '* LIST (\\Noselect \\HasNoChildren) "/" Old',
        '* LIST (\\NoInferiors \\Subscribed) "/" Work/2024',
        '* LIST (\\NoInferiors) "/" Work/2025',
      ]);
      assert.deepEqual((await c.ok('LIST "" (INBOX Work Work/2025) RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))')).untagged, [
        '* LIST (\\NoInferiors) "/" INBOX',
        '* STATUS INBOX (MESSAGES 2 UNSEEN 2 UIDNEXT 3)',
        '* LIST (\\Noselect \\HasChildren) "/" Work',
        '* LIST (\\NoInferiors) "/" Work/2025',
        '* STATUS Work/2025 (MESSAGES 0 UNSEEN 0 UIDNEXT 1)',
      ]);
      for (const bad of ['LIST (RECURSIVEMATCH) "" *', 'LIST (FOO) "" *', 'LIST "" * RETURN (FOO)', 'LIST "" * RETURN (STATUS (BOGUS))', 'LIST "" * RETURN', 'LIST "" ()']) {
        assert.equal((await c.run(bad)).status, 'BAD', bad);
      }
      assert.deepEqual((await c.ok('LIST "" ""')).untagged, ['* LIST (\\Noselect) "/" ""']);
    } finally {
      c.close();
    }
    const r = await python(`
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('carol', '${PASSWORD}')
typ, data = m._simple_command('LIST', '(SPECIAL-USE)', '""', '*', 'RETURN', '(STATUS (MESSAGES))')
print(typ, m._untagged_response(typ, data, 'LIST')[1], m._untagged_response(typ, data, 'STATUS')[1])
m.logout()
`, [String(s.imap)]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /^OK \[b'\(\\\\NoInferiors \\\\Drafts\) "\/" Drafts', .*b'\(\\\\NoInferiors \\\\Trash\) "\/" Trash'\] \[b'Drafts \(MESSAGES 0\)'/);
  });
  test('ESEARCH: SEARCH and UID SEARCH RETURN (MIN MAX COUNT ALL), ranges compressed; imapflow and imaplib read it', async () => {
    for (let i = 1; i <= 7; i++) deliver(s.sb, 'dave', `m${i}`, i % 3 === 0 ? 'blue\n' : 'red\n');
    const c = await ImapClient.login(s.imap, 'dave');
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / ESEARCH( |$)/);
      await c.ok('SELECT INBOX');
      await c.ok('STORE 1:2,4,7 +FLAGS (\\Seen)');
      const one = async (cmd: string) => {
        const r = await c.ok(cmd);
        assert.equal(r.untagged.length, 1, r.untagged.join('\n'));
        return r.untagged[0].replace(/TAG "t\d+"/, 'TAG "x"');
      };
      assert.equal(await one('SEARCH RETURN (MIN MAX COUNT ALL) SEEN'), '* ESEARCH (TAG "x") MIN 1 MAX 7 ALL 1:2,4,7 COUNT 4');
      assert.equal(await one('SEARCH RETURN () ALL'), '* ESEARCH (TAG "x") ALL 1:7');
      assert.equal(await one('SEARCH RETURN (COUNT) CHARSET UTF-8 BODY blue'), '* ESEARCH (TAG "x") COUNT 2');
      assert.equal(await one('SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing'), '* ESEARCH (TAG "x") COUNT 0');
      assert.equal(await one('UID SEARCH RETURN (MAX ALL) UNSEEN'), '* ESEARCH (TAG "x") UID MAX 6 ALL 3,5:6');
      assert.equal(await one('SEARCH UNSEEN'), '* SEARCH 3 5 6');
      assert.equal((await c.run('SEARCH RETURN (FOO) ALL')).status, 'BAD');
      assert.equal((await c.run('SEARCH RETURN ALL')).status, 'BAD');
      assert.equal((await c.run('SEARCH RETURN (ALL) CHARSET KOI8-R ALL')).status, 'NO');
    } finally {
      c.close();
    }
    const f = flow(s.imap, 'dave');
    await f.connect();
    try {
      await f.mailboxOpen('INBOX');
      const r = await f.search({ seen: false }, { uid: true, returnOptions: ['min', 'max', 'count', 'all'] } as never);
      assert.deepEqual({ ...(r as object) }, { min: 3, max: 6, count: 3, all: '3,5:6' });
    } finally {
      await f.logout();
    }
    const p = await python(`
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('dave', '${PASSWORD}')
m.select('INBOX')
typ, data = m.uid('SEARCH', 'RETURN', '(COUNT ALL)', 'SEEN')
print(typ, m.untagged_responses.get('ESEARCH'))
m.logout()
`, [String(s.imap)]);
    assert.equal(p.code, 0, p.err + p.out);
    assert.match(p.out, /^OK \[b'\(TAG "\S+"\) UID ALL 1:2,4,7 COUNT 4'\]/);
  });
  test('SORT and THREAD (RFC 5256): keys, REVERSE, search program, UID forms, both algorithms; imaplib sort() and thread()', async () => {
    const mail = (subject: string, from: string, date: string, extra = '') => deliver(s.sb, 'erin', subject, `${subject} body\n`, `Date: ${date}\nMessage-ID: <${subject.replace(/\W/g, '')}.${date.slice(5, 7)}@x>\n${extra}`);
    // deliver() writes From: sender@mail.test; a second From: would be ignored, so senders differ by Reply-To only: sort by SIZE/DATE/SUBJECT here.
    mail('Zebra', 'z', 'Mon, 01 Jan 2024 10:00:00 +0000'); // 1
    mail('Re: apple', 'a', 'Wed, 03 Jan 2024 10:00:00 +0000', 'References: <apple.02@x>\n'); // 2
    mail('apple', 'a', 'Tue, 02 Jan 2024 10:00:00 +0000'); // 3
    mail('[fwd: Zebra]', 'z', 'Thu, 04 Jan 2024 10:00:00 +0000', 'In-Reply-To: <Zebra.01@x>\n'); // 4
    mail('Re: Re: apple', 'a', 'Fri, 05 Jan 2024 08:00:00 -0500', 'References: <apple.02@x> <Reapple.03@x>\nCc: Bob <bob@x>\n'); // 5
    const c = await ImapClient.login(s.imap, 'erin');
    try {
      const caps = (await c.ok('CAPABILITY')).untagged[0];
      assert.match(caps, / SORT THREAD=ORDEREDSUBJECT THREAD=REFERENCES( |$)/);
      await c.ok('SELECT INBOX');
      await c.ok('STORE 4 +FLAGS (\\Seen)');
      const one = async (cmd: string) => {
        const r = await c.ok(cmd);
        assert.equal(r.untagged.length, 1, r.untagged.join('\n'));
        return r.untagged[0];
      };
      assert.equal(await one('SORT (SUBJECT) UTF-8 ALL'), '* SORT 2 3 5 1 4', 'equal base subjects in mailbox order');
      assert.equal(await one('SORT (REVERSE DATE) UTF-8 ALL'), '* SORT 5 4 2 3 1');
      assert.equal(await one('SORT (ARRIVAL) US-ASCII UNSEEN'), '* SORT 1 2 3 5');
      assert.equal(await one('SORT (CC REVERSE DATE) UTF-8 ALL'), '* SORT 4 2 3 1 5');
      assert.equal(await one('SORT (SUBJECT REVERSE SIZE) UTF-8 SUBJECT apple'), '* SORT 5 2 3');
      const uids = (await one('UID SEARCH ALL')).split(' ').slice(2).map(Number);
      assert.equal(await one('UID SORT (REVERSE SUBJECT) UTF-8 ALL'), `* SORT ${[1, 4, 2, 3, 5].map((n) => uids[n - 1]).join(' ')}`);
      assert.equal(await one('SORT (SUBJECT) UTF-8 SUBJECT nothing'), '* SORT');
      assert.equal(await one('THREAD ORDEREDSUBJECT UTF-8 ALL'), '* THREAD (1 4)(3 (2)(5))');
      assert.equal(await one('THREAD REFERENCES UTF-8 ALL'), '* THREAD (1 4)(3 2 5)');
      assert.equal(await one('THREAD REFERENCES UTF-8 NOT SUBJECT "Re: apple"'), '* THREAD (1 4)(3)');
      assert.equal(await one(`UID THREAD REFERENCES UTF-8 ALL`), `* THREAD (${uids[0]} ${uids[3]})(${uids[2]} ${uids[1]} ${uids[4]})`);
      for (const bad of ['SORT SUBJECT UTF-8 ALL', 'SORT () UTF-8 ALL', 'SORT (FOO) UTF-8 ALL', 'SORT (REVERSE) UTF-8 ALL', 'SORT (DATE) UTF-8', 'THREAD FOO UTF-8 ALL', 'THREAD REFERENCES UTF-8']) {
        assert.equal((await c.run(bad)).status, 'BAD', bad);
      }
      const cs = await c.run('SORT (DATE) KOI8-R ALL');
      assert.equal(cs.status, 'NO');
      assert.match(cs.text, /^\[BADCHARSET/);
    } finally {
      c.close();
    }
    const p = await python(`
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('erin', '${PASSWORD}')
m.select('INBOX')
print(m.sort('(REVERSE DATE)', 'UTF-8', 'ALL')[1][0].decode())
print(m.thread('REFERENCES', 'UTF-8', 'ALL')[1][0].decode())
m.logout()
`, [String(s.imap)]);
    assert.equal(p.code, 0, p.err + p.out);
    assert.equal(p.out, '5 4 2 3 1\n(1 4)(3 2 5)\n');
  });
});
