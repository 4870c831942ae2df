// SEARCHRES (RFC 5182): SEARCH RETURN (SAVE) keeps its result (MIN and MAX
// alone keep only those), "$" names it as the message set of FETCH, STORE,
// COPY and UID EXPUNGE and as a search key, a failed SEARCH (SAVE) empties
// it, and SELECT starts afresh.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deliver, ImapClient, type MailboxServer, startMailboxServer } from './mailbox/harness.ts';

describe('SEARCHRES', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    for (const x of ['one', 'two', 'three', 'four']) deliver(s.sb, 'alice', x);
  });
  after(() => s.close());

  test('RETURN (SAVE), then $ in FETCH, STORE, SEARCH, COPY and UID EXPUNGE', async () => {
    const c = await ImapClient.login(s.imap, 'alice');
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / SEARCHRES( |$)/);
      await c.ok('SELECT INBOX');
      await c.ok('STORE 2,4 +FLAGS (\\Flagged)');
      assert.deepEqual((await c.ok('SEARCH RETURN (SAVE) FLAGGED')).untagged, [], 'SAVE alone answers nothing');
      assert.deepEqual((await c.ok('FETCH $ (UID)')).untagged, ['* 2 FETCH (UID 2)', '* 4 FETCH (UID 4)']);
      assert.deepEqual((await c.ok('SEARCH $ SUBJECT four')).untagged, ['* SEARCH 4']);
      assert.deepEqual((await c.ok('UID SEARCH UID $')).untagged, ['* SEARCH 2 4']);
      await c.ok('STORE $ +FLAGS (\\Deleted)');
      assert.match((await c.ok('COPY $ Trash')).text, /^\[COPYUID \d+ 2,4 \d+:\d+\]/);
      // MIN alone beside SAVE keeps the first only; with ALL, everything is kept and answered.
      assert.match((await c.ok('SEARCH RETURN (SAVE MIN) DELETED')).untagged[0], /ESEARCH \(TAG "t\d+"\) MIN 2$/);
      assert.deepEqual((await c.ok('FETCH $ (UID)')).untagged, ['* 2 FETCH (UID 2)']);
      assert.match((await c.ok('UID SEARCH RETURN (SAVE ALL) DELETED')).untagged[0], /UID ALL 2,4$/);
      await c.ok('UID EXPUNGE $');
      assert.equal(await c.messages('INBOX'), 2);
      assert.deepEqual((await c.ok('FETCH $ (UID)')).untagged, [], 'expunged messages leave the saved result');
      // A failed SEARCH (SAVE) empties it; SELECT does too.
      await c.ok('SEARCH RETURN (SAVE) ALL');
      assert.equal((await c.run('SEARCH RETURN (SAVE) NOSUCHKEY')).status, 'BAD');
      assert.deepEqual((await c.ok('UID SEARCH UID $')).untagged, ['* SEARCH']);
      await c.ok('SEARCH RETURN (SAVE) ALL');
      await c.ok('SELECT INBOX');
      assert.deepEqual((await c.ok('UID SEARCH UID $')).untagged, ['* SEARCH']);
    } finally {
      c.close();
    }
  });
});
