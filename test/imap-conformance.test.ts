// IMAP where mailtk once answered otherwise than RFC 3501 and Dovecot 2.3
// (with mbox storage) do, each checked on the wire against the in-process
// listeners:
// - A message sequence number beyond the mailbox in FETCH, STORE, COPY or
//   MOVE is BAD "Invalid messageset"; UID sets beyond it are just empty.
// - SEARCH BODY/TEXT find words in decoded text parts, those of an attached
//   message/rfc822 too, whatever hidden mbox fields (Status:) the top has.
// - An mbox-file folder lists as \NoInferiors, and CREATE below it is NO [CANNOT].

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deliver, LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

interface Reply {
  status: string;
  text: string;
  untagged: string[];
}

class Imap {
  private n = 0;
  private constructor(private readonly c: LineClient) {}

  static async login(port: number, user: string, password = PASSWORD): Promise<Imap> {
    const c = await LineClient.connect(port);
    assert.match((await c.line())!, /^\* OK /);
    const s = new Imap(c);
    const r = await s.run(`LOGIN ${user} ${password}`);
    assert.equal(r.status, 'OK', r.text);
    return s;
  }

  async run(command: string): Promise<Reply> {
    const tag = `t${++this.n}`;
    this.c.send(`${tag} ${command}`);
    const untagged: string[] = [];
    for (;;) {
      const line = await this.c.line();
      if (line === undefined) throw new Error(`connection closed during ${command}`);
      const m = /^(\S+) (OK|NO|BAD) ?(.*)$/.exec(line);
      if (m && m[1] === tag) return { status: m[2], text: m[3], untagged };
      untagged.push(line);
    }
  }

  async ok(command: string): Promise<Reply> {
    const r = await this.run(command);
    assert.equal(r.status, 'OK', `${command}: ${r.status} ${r.text}`);
    return r;
  }

  async messages(mailbox: string): Promise<number> {
    const r = await this.ok(`STATUS ${mailbox} (MESSAGES)`);
    return Number(/MESSAGES (\d+)/.exec(r.untagged.join(' '))?.[1]);
  }

  close(): void {
    this.c.close();
  }
}
describe('IMAP conformance', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob', 'carol', 'dave', 'erin'] });
  });
  after(() => s.close());

  test('a message sequence number beyond the mailbox is BAD in FETCH, STORE, COPY and MOVE; UID sets are just empty', async () => {
    deliver(s.sb, 'bob', 'b1');
    deliver(s.sb, 'bob', 'b2');
    const c = await Imap.login(s.imap, 'bob');
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
    const c = await Imap.login(s.imap, 'carol');
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
    } finally {
      c.close();
    }
  });

  test('an mbox-file folder lists as \\NoInferiors, and CREATE below it is NO [CANNOT], not a server bug', async () => {
    const u = s.sb.users.erin;
    const c = await Imap.login(s.imap, 'erin');
    try {
      await c.ok('CREATE Sent');
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
        '* LIST (\\Noselect \\HasNoChildren) "/" Empty',
        '* LIST (\\Noselect \\HasChildren) "/" Projects',
        '* LIST (\\NoInferiors) "/" Projects/2024',
        '* LIST (\\NoInferiors) "/" Sent',
      ]);
      assert.deepEqual((await c.ok('LIST "" %')).untagged.filter((l) => l.endsWith(' Sent')), ['* LIST (\\NoInferiors) "/" Sent']);
    } finally {
      c.close();
    }
  });
});
