// FETCH BODY[section] and BODYSTRUCTURE over the wire for the messages that
// tell servers apart (RFC 3501 6.4.5, 7.4.2): a message that is one
// message/rfc822 part, where part 1 is the whole enclosed message; and a
// multipart whose parts' sizes and lines must match what BODY[n] returns.
// The expected answers are Dovecot 2.3's.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deliver, fetchedLiteral as literal, imapCommand as command, LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';


/** A forwarded multipart message, an empty part and a part with no body at all. */
const NESTED_BODY = [
  '--outer',
  'Content-Type: text/plain',
  '',
  'see below',
  '',
  '--outer',
  'Content-Type: message/rfc822',
  '',
  'From: b@y.test',
  'Subject: inner',
  'MIME-Version: 1.0',
  'Content-Type: multipart/alternative; boundary=inner',
  '',
  'preamble',
  '--inner',
  'Content-Type: text/plain',
  '',
  'one',
  'two',
  '--inner',
  'Content-Type: text/html',
  '',
  '<p>one two</p>',
  '--inner--',
  'epilogue',
  '',
  '--outer',
  'Content-Type: text/plain',
  '',
  '',
  '--outer',
  'Content-Type: text/plain',
  '',
  '--outer--',
  '',
].join('\n');

/** CRLF-ended lines, and a last line without CRLF when not empty. */
function lines(t: string): number {
  return t.split('\r\n').length - 1 + (t !== '' && !t.endsWith('\r\n') ? 1 : 0);
}

const INNER = 'From: b@y.test\nSubject: inner\nMIME-Version: 1.0\nContent-Type: text/plain\n\ninner body\n';

describe('IMAP sections', () => {
  let s: MailboxServer;
  let c: LineClient;
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    deliver(s.sb, 'alice', 'forwarded whole', INNER, 'MIME-Version: 1.0\nContent-Type: message/rfc822\n');
    deliver(s.sb, 'alice', 'nested', NESTED_BODY, 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=outer\n');
    c = await LineClient.connect(s.imap);
    await c.line();
    await command(c, 'a1', `LOGIN alice ${PASSWORD}`);
    await command(c, 'a2', 'EXAMINE INBOX');
  });
  after(async () => {
    c.close();
    await s.close();
  });

  test('part 1 of a message/rfc822 message is the enclosed message (RFC 3501 6.4.5)', async () => {
    const [resp] = await command(c, 'a3', 'FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[1.1] BODY.PEEK[HEADER] BODYSTRUCTURE)');
    const crlf = (t: string) => t.replace(/\n/g, '\r\n');
    assert.equal(literal(resp, 'BODY[1]'), crlf(INNER));
    assert.equal(literal(resp, 'BODY[1.MIME]'), literal(resp, 'BODY[HEADER]'), '1.MIME: the top-level header, as Dovecot answers');
    assert.match(literal(resp, 'BODY[1.MIME]'), /^Return-Path: [^]*\r\nFrom: sender@mail.test\r\n[^]*Content-Type: message\/rfc822\r\n\r\n$/);
    assert.equal(literal(resp, 'BODY[1.HEADER]'), crlf(INNER.slice(0, INNER.indexOf('\n\n') + 2)));
    assert.equal(literal(resp, 'BODY[1.TEXT]'), 'inner body\r\n');
    assert.equal(literal(resp, 'BODY[1.1]'), 'inner body\r\n');
    // The top-level body: the whole enclosed message, 6 lines, then its own text part of 1 line.
    const size = Buffer.byteLength(crlf(INNER));
    assert.match(resp, new RegExp(`BODYSTRUCTURE \\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${size} \\(.*\\) \\("TEXT" "PLAIN" \\("CHARSET" "us-ascii"\\) NIL NIL "7BIT" 12 1 NIL NIL NIL NIL\\) 6 NIL NIL NIL NIL\\)`));
  });

  test('the sizes and lines of BODYSTRUCTURE are those of the bytes BODY[n] returns', async () => {
    const [resp] = await command(c, 'a4', 'FETCH 2 (BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[2.2] BODY.PEEK[3] BODY.PEEK[4])');
    const part = (n: string) => literal(resp, `BODY[${n}]`);
    const sl = (n: string) => `${Buffer.byteLength(part(n), 'latin1')} ${lines(part(n))}`;
    assert.equal(part('1'), 'see below\r\n');
    assert.equal(part('2.1'), 'one\r\ntwo');
    assert.equal(part('3'), '');
    assert.equal(part('4'), '');
    assert.equal(lines(part('2')), 17);
    const text = (n: string, sub = 'PLAIN') => `\\("TEXT" "${sub}" \\("CHARSET" "us-ascii"\\) NIL NIL "7BIT" ${sl(n)} NIL NIL NIL NIL\\)`;
    const fwd = `\\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${Buffer.byteLength(part('2'), 'latin1')} \\(.*\\) \\(${text('2.1')}${text('2.2', 'HTML')} "ALTERNATIVE" \\("BOUNDARY" "inner"\\) NIL NIL NIL\\) ${lines(part('2'))} NIL NIL NIL NIL\\)`;
    assert.match(resp, new RegExp(`BODYSTRUCTURE \\(${text('1')}${fwd}${text('3')}${text('4')} "MIXED"`));
  });
});
