// STATUS items beyond RFC 3501's: SIZE (RFC 8438, capability STATUS=SIZE),
// the sum of RFC822.SIZE over the mailbox, and DELETED (RFC 9051 6.3.11),
// the messages flagged \Deleted; in STATUS and in LIST RETURN (STATUS ...).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deliver, ImapClient, type MailboxServer, startMailboxServer } from './mailbox/harness.ts';

describe('STATUS SIZE and DELETED', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    for (const x of ['one', 'two', 'three']) deliver(s.sb, 'alice', x, `body ${x}\n`);
  });
  after(() => s.close());

  test('SIZE is the sum of RFC822.SIZE, DELETED counts \\Deleted; both in LIST-STATUS too', async () => {
    const c = await ImapClient.login(s.imap, 'alice');
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / STATUS=SIZE( |$)/);
      await c.ok('SELECT INBOX');
      const sizes = (await c.ok('FETCH 1:* (RFC822.SIZE)')).untagged.map((l) => Number(/RFC822\.SIZE (\d+)/.exec(l)?.[1]));
      const total = sizes.reduce((a, b) => a + b, 0);
      await c.ok('STORE 2:3 +FLAGS (\\Deleted)');
      assert.deepEqual((await c.ok('STATUS INBOX (SIZE DELETED MESSAGES)')).untagged, [`* STATUS INBOX (SIZE ${total} DELETED 2 MESSAGES 3)`]);
      const listed = (await c.ok('LIST "" INBOX RETURN (STATUS (SIZE DELETED))')).untagged;
      assert.ok(listed.includes(`* STATUS INBOX (SIZE ${total} DELETED 2)`), listed.join('\n'));
      await c.ok('EXPUNGE');
      assert.deepEqual((await c.ok('STATUS INBOX (SIZE DELETED)')).untagged, [`* STATUS INBOX (SIZE ${sizes[0]} DELETED 0)`]);
    } finally {
      c.close();
    }
  });
});
