// SEARCH BODY and TEXT inside a message/global part (RFC 6532, the UTF-8
// counterpart of message/rfc822): its enclosed message is searched as an
// attached message/rfc822 one is, text parts decoded from quoted-printable
// and their charset, in IMAP4rev1 sessions (where BODYSTRUCTURE shows
// message/global as a plain part) and IMAP4rev2 ones alike.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deliver, ImapClient, type MailboxServer, startMailboxServer } from './mailbox/harness.ts';

/** A multipart message whose second part is `type`, enclosing a message with a quoted-printable UTF-8 body. */
function attaching(type: string): string {
  return [
    '--outer',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    'a message is attached',
    '--outer',
    `Content-Type: ${type}`,
    '',
    'From: =?utf-8?Q?J=C3=B6rg?= <joerg@example.org>',
    'Subject: =?utf-8?Q?Gr=C3=BC=C3=9Fe_aus_M=C3=BCnchen?=',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'the hidden word is hippo=',
    'potamus, and sch=C3=B6ne Gr=C3=BC=C3=9Fe',
    '--outer--',
    '',
  ].join('\n');
}

describe('SEARCH inside message/global parts', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    const headers = 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="outer"\n';
    deliver(s.sb, 'alice', 'global', attaching('message/global'), headers);
    deliver(s.sb, 'alice', 'rfc822', attaching('message/rfc822'), headers);
    deliver(s.sb, 'alice', 'plain', 'nothing hidden here\n');
  });
  after(async () => {
    await s.close();
  });

  for (const rev2 of [false, true]) {
    test(`finds quoted-printable and encoded words of the enclosed message, as in message/rfc822 (${rev2 ? 'IMAP4rev2' : 'IMAP4rev1'})`, async () => {
      const c = await ImapClient.login(s.imap, 'alice');
      try {
        if (rev2) await c.ok('ENABLE IMAP4rev2');
        await c.ok('EXAMINE INBOX');
        /** The answer's untagged line, its ESEARCH tag left out. */
        const hits = async (key: string, literal?: string) => {
          const r = await c.run(`SEARCH ${key}`, literal);
          assert.equal(r.status, 'OK', `SEARCH ${key}: ${r.text}`);
          return r.untagged.filter((l) => /^\* E?SEARCH\b/.test(l)).join('\n').replace(/ \(TAG "[^"]*"\)/, '');
        };
        // IMAP4rev2 answers SEARCH with ESEARCH (RFC 9051 6.4.4).
        const both = rev2 ? '* ESEARCH ALL 1:2' : '* SEARCH 1 2';
        const none = rev2 ? '* ESEARCH' : '* SEARCH';
        assert.equal(await hits('BODY hippopotamus'), both, 'a word split by a soft line break');
        assert.equal(await hits('TEXT HIPPOPOTAMUS'), both);
        assert.equal(await hits('CHARSET UTF-8 BODY', 'schöne grüße'), both, 'UTF-8 decoded from =XX');
        assert.equal(await hits('CHARSET UTF-8 TEXT', 'Grüße aus München'), both, "the enclosed message's encoded Subject");
        assert.equal(await hits('BODY "hippo=potamus"'), none, 'the encoded form is not what is searched for');
        assert.equal(await hits('BODY attached'), both);
      } finally {
        c.close();
      }
    });
  }
});
