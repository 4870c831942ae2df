// IMAP keywords kept in the mbox as Dovecot keeps them: X-Keywords: with the
// names separated by spaces. A message stored with that field (as Sieve's
// imap4flags files it) FETCHes FLAGS with those keywords, while a sender's own
// X-Keywords:/Status:/X-Status: are dropped at delivery; a STORE goes back
// into the field when the mbox is next rewritten (here: the session's close);
// a change of the field by another program wins over the index, as Status:
// does; APPEND writes the keywords it is given into the field.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { waitFor } from './helpers.ts';
import { deliver, ImapClient, type MailboxServer, startMailboxServer } from './mailbox/harness.ts';

let s: MailboxServer;
const FORGED = 'Status: RO\nX-Status: DF\nX-Keywords: $Junk\n  NonJunk\nX-UID: 7\nContent-Length: 1\n';
before(async () => {
  s = await startMailboxServer({ users: ['alice'] });
  deliver(s.sb, 'alice', 'labelled');
  deliver(s.sb, 'alice', 'plain');
  deliver(s.sb, 'alice', 'forged', 'hello\n', FORGED);
  // The field as a Sieve filter or Dovecot leaves it in the mbox.
  const mbox = s.sb.mbox('alice');
  fs.writeFileSync(mbox, fs.readFileSync(mbox, 'utf8').replace('Subject: labelled\n', 'Subject: labelled\nX-Keywords: $label1 work\n'));
});
after(() => s.close());

const flagsOf = (lines: string[]) => lines.map((l) => /FLAGS \(([^)]*)\)/.exec(l)?.[1]);

test("a sender's Status:, X-Status:, X-Keywords:, X-UID: and Content-Length: are dropped at delivery", () => {
  const text = fs.readFileSync(s.sb.mbox('alice'), 'utf8');
  const forged = text.slice(text.indexOf('Subject: forged\n'));
  assert.doesNotMatch(forged, /^(Status|X-Status|X-Keywords|X-UID|Content-Length):|NonJunk/m);
  assert.match(forged, /^Subject: forged\n\nhello\n/, 'the other fields and the body are kept');
});

test('X-Keywords: in the mbox are the keywords; STORE and APPEND write the field', async () => {
  const mbox = s.sb.mbox('alice');
  let c = await ImapClient.login(s.imap, 'alice');
  try {
    const sel = (await c.ok('SELECT INBOX')).untagged.join('\n');
    assert.match(sel, /^\* FLAGS \(\\Answered \\Flagged \\Deleted \\Seen \\Draft \$label1 work\)/m);
    assert.deepEqual(flagsOf((await c.ok('FETCH 1:3 (FLAGS)')).untagged), ['$label1 work \\Recent', '\\Recent', '\\Recent']);
    await c.ok('STORE 1 -FLAGS (work)');
    await c.ok('STORE 2 +FLAGS ($Done)');
    await c.ok('LOGOUT');
  } finally {
    c.close();
  }
  // The last session's close rewrote the headers: the field says what the index says.
  await waitFor(() => /Subject: plain\n(?:.*\n)*?X-Keywords: \$Done\n/.test(fs.readFileSync(mbox, 'utf8')), 5000);
  const text = fs.readFileSync(mbox, 'utf8');
  assert.match(text, /Subject: labelled\n(?:.*\n)*?X-Keywords: \$label1\n/);
  assert.equal(text.match(/^X-Keywords:/gm)?.length, 2, 'one field a message, the old one replaced');

  // Another program (Dovecot, or a Sieve filter's re-run) changes the field: the headers win.
  fs.writeFileSync(mbox, text.replace('X-Keywords: $label1\n', 'X-Keywords: $label1 urgent\n'));
  c = await ImapClient.login(s.imap, 'alice');
  try {
    await c.ok('SELECT INBOX');
    assert.deepEqual(flagsOf((await c.ok('FETCH 1:2 (FLAGS)')).untagged), ['$label1 urgent', '$Done']);
    assert.equal((await c.run('APPEND INBOX ($Forwarded \\Seen)', 'Subject: appended\r\n\r\nhi\r\n')).status, 'OK');
    assert.match(flagsOf((await c.ok('FETCH 4 (FLAGS)')).untagged)[0] ?? '', /^\\Seen \$Forwarded( \\Recent)?$/);
    await c.ok('LOGOUT');
  } finally {
    c.close();
  }
  assert.match(fs.readFileSync(mbox, 'utf8'), /Subject: appended\nStatus: RO\nX-Keywords: \$Forwarded\n\nhi\n/);
});
