// Tests for prepare.ts: the headers sendmail adds on submission, with and
// without -t, -f and -F; header injection through every option; Bcc and
// Resent-Bcc removal; resent messages; input that is empty, all body,
// CRLF, unterminated or starts with a Unix "From " line; hop counting.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getAll, getHeader, splitMessage, type HeaderField } from './headers.ts';
import { prepareSubmission, type SubmissionOptions } from './prepare.ts';

const savedTz = process.env.TZ;
before(() => (process.env.TZ = 'UTC'));
after(() => {
  if (savedTz === undefined) delete process.env.TZ;
  else process.env.TZ = savedTz;
});

const NOW = new Date('2026-11-22T00:03:44Z');
const DATE = 'Sun, 22 Nov 2026 00:03:44 +0000';

function opts(over: Partial<SubmissionOptions> = {}): SubmissionOptions {
  return {
    queueId: 'AQ3k9Zx01',
    hostname: 'mail.example.com',
    envelopeSender: 'root@mail.example.com',
    login: 'root',
    fullName: 'Charlie Root',
    extractRecipients: false,
    receivedFrom: '(from root@localhost)',
    now: NOW,
    bareLocalDomain: 'example.com',
    ...over,
  };
}

function prep(text: string | Buffer, over: Partial<SubmissionOptions> = {}) {
  const r = prepareSubmission(Buffer.isBuffer(text) ? text : Buffer.from(text), opts(over));
  const s = splitMessage(r.data);
  return { ...r, text: r.data.toString(), headers: s.headers, body: s.body.toString() };
}

const names = (hs: HeaderField[]) => hs.map((h) => h.name);

describe('prepareSubmission: headers sendmail adds', () => {
  it('puts the Received line on top, in sendmail\'s local form', () => {
    const r = prep('Subject: hi\n\nbody\n');
    assert.ok(r.text.startsWith(`Received: (from root@localhost)\n\tby mail.example.com (mailtk) id AQ3k9Zx01;\n\t${DATE}\n`));
  });

  it('adds Date, From and Message-ID when missing, then the original fields', () => {
    const r = prep('Subject: hi\nTo: bob@x.org\n\nbody\n');
    assert.deepEqual(names(r.headers), ['Received', 'Date', 'From', 'Message-ID', 'Subject', 'To']);
    assert.equal(getHeader(r.headers, 'Date'), DATE);
    assert.equal(getHeader(r.headers, 'From'), 'Charlie Root <root@mail.example.com>');
    assert.match(getHeader(r.headers, 'Message-ID') ?? '', /^<AQ3k9Zx01\.20261122000344\.[0-9a-f]{6}@mail\.example\.com>$/);
    assert.equal(r.messageId, getHeader(r.headers, 'Message-ID'));
    assert.equal(r.body, 'body\n');
  });

  it('makes a different Message-ID each time', () => {
    const ids = new Set(Array.from({ length: 50 }, () => prep('').messageId));
    assert.equal(ids.size, 50);
  });

  it('keeps the message\'s own From, Date and Message-ID, and reports that Message-ID', () => {
    const r = prep('From: Bob <bob@x.org>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <own@x.org>\n\nb\n');
    assert.deepEqual(names(r.headers), ['Received', 'From', 'Date', 'Message-ID']);
    assert.equal(getHeader(r.headers, 'From'), 'Bob <bob@x.org>');
    assert.equal(r.messageId, '<own@x.org>');
  });

  it('replaces an empty From or Date', () => {
    const r = prep('From:\nDate: \n\nb\n');
    assert.deepEqual(getAll(r.headers, 'From'), ['Charlie Root <root@mail.example.com>']);
    assert.deepEqual(getAll(r.headers, 'Date'), [DATE]);
  });

  it('uses the login without a full name', () => {
    const r = prep('', { fullName: undefined });
    assert.equal(getHeader(r.headers, 'From'), 'root@mail.example.com');
  });

  it('uses the -f sender for From, qualifying a bare name', () => {
    assert.equal(getHeader(prep('', { envelopeSender: 'list-bounces@lists.x.org', fullName: undefined }).headers, 'From'), 'list-bounces@lists.x.org');
    assert.equal(getHeader(prep('', { envelopeSender: 'daemon', fullName: undefined }).headers, 'From'), 'daemon@example.com');
  });

  it('shows the null sender as MAILER-DAEMON', () => {
    assert.equal(getHeader(prep('', { envelopeSender: '', fullName: undefined }).headers, 'From'), 'MAILER-DAEMON@example.com');
  });

  it('quotes a -F name with specials and encodes a non-ASCII one', () => {
    assert.equal(getHeader(prep('', { fullName: 'Root, Charlie Q.' }).headers, 'From'), '"Root, Charlie Q." <root@mail.example.com>');
    assert.equal(getHeader(prep('', { fullName: 'Say "hi"' }).headers, 'From'), '"Say \\"hi\\"" <root@mail.example.com>');
    const from = getHeader(prep('', { fullName: 'Jörg Müller' }).headers, 'From') ?? '';
    assert.equal(from, `=?UTF-8?B?${Buffer.from('Jörg Müller').toString('base64')}?= <root@mail.example.com>`);
  });

  it('splits a long non-ASCII name into encoded-words of at most 75 characters', () => {
    const name = 'Ünïcödé '.repeat(12).trim();
    const from = getHeader(prep('', { fullName: name }).headers, 'From') ?? '';
    const words = from.match(/=\?UTF-8\?B\?[^?]*\?=/g) ?? [];
    assert.ok(words.length > 1);
    for (const w of words) assert.ok(w.length <= 75, w);
    const decoded = words.map((w) => Buffer.from(w.slice(10, -2), 'base64').toString('utf8')).join('');
    assert.equal(decoded, name);
  });

  it('accepts receivedFrom with or without its parentheses', () => {
    assert.match(prep('', { receivedFrom: 'root@localhost' }).text, /^Received: \(from root@localhost\)\n/);
    assert.match(prep('', { receivedFrom: '' }).text, /^Received: \(from root@localhost\)\n/);
  });
});

describe('prepareSubmission: no option can add a header line', () => {
  const evil = 'x\nBcc: victim@evil.example\nX-Injected: 1';
  const fields: Array<keyof SubmissionOptions> = ['fullName', 'login', 'receivedFrom', 'hostname', 'queueId', 'envelopeSender', 'bareLocalDomain'];
  for (const field of fields) {
    it(`${field} with CR/LF and a header inside`, () => {
      for (const nl of ['\n', '\r\n', '\r']) {
        const r = prep('Subject: hi\n\nbody\n', { [field]: evil.replace(/\n/g, nl) });
        assert.equal(getHeader(r.headers, 'Bcc'), undefined);
        assert.equal(getHeader(r.headers, 'X-Injected'), undefined);
        assert.deepEqual(names(r.headers), ['Received', 'Date', 'From', 'Message-ID', 'Subject']);
        assert.equal(r.body, 'body\n');
      }
    });
  }

  it('a -F name "x\\nBcc: victim" stays inside From', () => {
    const r = prep('To: a@x.org\n\nb\n', { fullName: 'x\nBcc: victim', extractRecipients: true });
    assert.deepEqual(r.recipients, ['a@x.org']);
    assert.equal(getHeader(r.headers, 'From'), '"x Bcc: victim" <root@mail.example.com>');
  });
});

describe('prepareSubmission: -t', () => {
  it('takes recipients from To, Cc and Bcc, qualifies bare names, drops duplicates', () => {
    const r = prep('To: Alice <alice@x.org>, bob\nCc: "C, D" <cd@y.org>, alice@x.org\nBcc: secret@z.org, root\nSubject: s\n\nb\n', {
      extractRecipients: true,
    });
    assert.deepEqual(r.recipients, ['alice@x.org', 'bob@example.com', 'cd@y.org', 'secret@z.org', 'root@example.com']);
    assert.deepEqual(r.badRecipients, []);
  });

  it('removes Bcc from what is queued', () => {
    const r = prep('To: a@x.org\nBcc: secret@z.org\nbcc: other@z.org\n\nb\n', { extractRecipients: true });
    assert.equal(getHeader(r.headers, 'Bcc'), undefined);
    assert.ok(!r.text.includes('secret'));
  });

  it('also removes Bcc without -t, so that recipients never see it', () => {
    const r = prep('To: a@x.org\nBcc: secret@z.org\n\nb\n');
    assert.ok(!r.text.includes('secret'));
    assert.deepEqual(r.recipients, []);
  });

  it('takes no recipients without -t', () => {
    assert.deepEqual(prep('To: a@x.org\n\nb\n').recipients, []);
  });

  it('reads groups and folded fields', () => {
    const r = prep('To: undisclosed-recipients:;\nCc: team: a@x.org,\n b@y.org;\n\nb\n', { extractRecipients: true });
    assert.deepEqual(r.recipients, ['a@x.org', 'b@y.org']);
  });

  it('lowers the case of domains when qualifying, so duplicates by case go', () => {
    const r = prep('To: a@X.ORG, a@x.org\n\nb\n', { extractRecipients: true });
    assert.deepEqual(r.recipients, ['a@x.org']);
  });

  it('on a resent message uses only Resent-To/Cc/Bcc, removes Resent-Bcc and adds the Resent- fields', () => {
    const input = 'Resent-To: new@x.org\nResent-Bcc: hidden@y.org\nFrom: orig@z.org\nTo: old@z.org\nDate: Mon, 1 Jan 2024 00:00:00 +0000\nMessage-ID: <orig@z.org>\n\nb\n';
    const r = prep(input, { extractRecipients: true });
    assert.deepEqual(r.recipients, ['new@x.org', 'hidden@y.org']);
    assert.equal(getHeader(r.headers, 'Resent-Bcc'), undefined);
    assert.deepEqual(names(r.headers).slice(0, 4), ['Received', 'Resent-Date', 'Resent-From', 'Resent-Message-ID']);
    assert.equal(getHeader(r.headers, 'From'), 'orig@z.org');
    assert.equal(r.messageId, getHeader(r.headers, 'Resent-Message-ID'));
  });

  it('reports addresses that cannot be envelope addresses instead of dropping them silently', () => {
    const long = 'x'.repeat(300) + '@x.org';
    const r = prep(`To: ok@x.org, ${long}\n\nb\n`, { extractRecipients: true });
    assert.deepEqual(r.recipients, ['ok@x.org']);
    assert.equal(r.badRecipients.length, 1);
    assert.equal(r.badRecipients[0].address, long);
    assert.match(r.badRecipients[0].error, /octets/);
  });
});

describe('prepareSubmission: input shapes', () => {
  it('turns CRLF into LF', () => {
    const r = prep(Buffer.from('Subject: hi\r\nTo: a@x.org\r\n\r\nline 1\r\nline 2\r\n'));
    assert.ok(!r.data.includes('\r'));
    assert.equal(r.body, 'line 1\nline 2\n');
  });

  it('makes a valid message of empty input', () => {
    const r = prep('');
    assert.deepEqual(names(r.headers), ['Received', 'Date', 'From', 'Message-ID']);
    assert.equal(r.body, '');
    assert.ok(r.text.endsWith('>\n\n'));
  });

  it('keeps input that is all body, putting the headers and a blank line before it', () => {
    const r = prep('just some text\nSubject: not a header\n');
    assert.deepEqual(names(r.headers), ['Received', 'Date', 'From', 'Message-ID']);
    assert.equal(r.body, 'just some text\nSubject: not a header\n');
  });

  it('keeps a header-only message without a final newline', () => {
    const r = prep('Subject: hi');
    assert.equal(getHeader(r.headers, 'Subject'), 'hi');
    assert.ok(r.text.endsWith('Subject: hi\n\n'));
  });

  it('ends the body with a newline', () => {
    assert.equal(prep('Subject: s\n\nno newline').body, 'no newline\n');
  });

  it('eats a leading Unix "From " line, as sendmail does', () => {
    const r = prep('From root Sun Nov 22 00:03:44 2026\nSubject: hi\n\nb\n');
    assert.equal(getHeader(r.headers, 'Subject'), 'hi');
    assert.ok(!r.text.includes('From root'));
  });

  it('keeps the body byte for byte, 8-bit and lone CRs included', () => {
    const body = Buffer.from([0x68, 0xff, 0x0d, 0x41, 0x0a, 0x00, 0x0a]);
    const r = prepareSubmission(Buffer.concat([Buffer.from('Subject: s\n\n'), body]), opts());
    assert.deepEqual(splitMessage(r.data).body, body);
  });

  it('counts the trace fields already there as hops', () => {
    const r = prep('Received: from a by b\nReceived: from c\n by d\nVia: x\nSubject: s\nReceived: late\n\nb\n');
    assert.equal(r.hops, 4);
    assert.equal(prep('Subject: s\n\nb\n').hops, 0);
  });
});
