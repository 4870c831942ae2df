// Tests for dsn-parse.ts: the failed recipients of a DSN, its per-recipient
// blocks read as header fields (so a folded field counts, as RFC 5322
// allows in a message/delivery-status part).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { failedRecipients } from './dsn-parse.ts';

describe('failedRecipients', () => {
  const head = 'Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; h\r\n\r\n';

  it('names the recipients of the blocks that say Action: failed, LF or CRLF', () => {
    const dsn = `${head}Final-Recipient: rfc822; Ghost@Mail.Test\r\nOriginal-Recipient: rfc822;<alias@mail.test>\r\nAction: failed\r\n\r\nFinal-Recipient: rfc822; ok@h\r\nAction: delayed\r\n`;
    assert.deepEqual(failedRecipients(Buffer.from(dsn)), ['ghost@mail.test', 'alias@mail.test']);
    assert.deepEqual(failedRecipients(Buffer.from(dsn.replace(/\r\n/g, '\n'))), ['ghost@mail.test', 'alias@mail.test']);
  });

  it('reads a folded Final-Recipient and Action', () => {
    const dsn = `${head}Final-Recipient: rfc822;\r\n\tlong.name@mail.test\r\nAction:\r\n failed\r\n`;
    assert.deepEqual(failedRecipients(Buffer.from(dsn)), ['long.name@mail.test']);
  });

  it('finds nothing without a delivery-status part', () => {
    assert.deepEqual(failedRecipients(Buffer.from('Subject: x\n\nFinal-Recipient: rfc822; a@b\nAction: failed\n')), []);
  });
});
