// Unit tests for vacation's pure parts: the command line, the decision
// (RFC 3834 2), the database's records and interval, the envelope sender
// as a program receives it, and the reply's fields (RFC 3834 3.1).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { splitMessage } from '../message/headers.ts';
import { parseVacationArgs } from '../cli/vacation.ts';
import { parseInterval } from './args.ts';
import { FOREVER, emptyDb, formatDb, isExcluded, parseDb, prune, repliedRecently } from './db.ts';
import { readIncoming } from './incoming.ts';
import { judge, ownAddresses } from './policy.ts';
import { buildReply } from './reply.ts';
import { addExclusions, initDb, listDb, respond, vacationFiles } from './respond.ts';

const DAY = 86400;
const headersOf = (text: string) => splitMessage(Buffer.from(text)).headers;
const mine = ownAddresses('bob', ['robert', 'boss@example.org'], new Set(['mail.test', 'localhost']));

describe('command line', () => {
  test('the .forward form, -a twice, -r, -j, -C, clustered flags', () => {
    const a = parseVacationArgs(['-a', 'robert', '-aboss@x.org', '-r', '3', '-jd', '-C', '/etc/m.conf', 'bob']);
    assert.deepEqual(a.aliases, ['robert', 'boss@x.org']);
    assert.equal(a.interval, 3 * DAY);
    assert.equal(a.skipAddressCheck, true);
    assert.equal(a.debug, true);
    assert.equal(a.configFile, '/etc/m.conf');
    assert.equal(a.login, 'bob');
  });
  test('-i needs no login; a message run does; bad options are usage errors', () => {
    assert.equal(parseVacationArgs(['-i']).init, true);
    assert.equal(parseVacationArgs(['-I', '-r', 'infinite']).interval, FOREVER);
    assert.throws(() => parseVacationArgs([]), /no login/);
    assert.throws(() => parseVacationArgs(['-q', 'bob']), /illegal option -- q/);
    assert.throws(() => parseVacationArgs(['-r']), /requires an argument -- r/);
  });
  test('intervals: days, 0 for every message, anything else once', () => {
    assert.equal(parseInterval('7'), 7 * DAY);
    assert.equal(parseInterval('0'), 0);
    assert.equal(parseInterval('infinite'), FOREVER);
  });
});

describe('whether to answer', () => {
  const person = headersOf('From: Alice <alice@mail.test>\nTo: Bob <bob@mail.test>\nSubject: hi\n\nx\n');
  const verdict = (text: string, sender = 'alice@mail.test', check = true) => judge({ headers: headersOf(text), sender }, mine, check);

  test('a person who wrote to the user is answered', () => {
    assert.deepEqual(judge({ headers: person, sender: 'alice@mail.test' }, mine), { answer: true });
    assert.deepEqual(verdict('To: a@x, robert\n'), { answer: true });
    assert.deepEqual(verdict('Cc: "Boss" <BOSS@example.org>\n'), { answer: true });
    assert.deepEqual(verdict('Resent-To: bob@localhost\n'), { answer: true });
  });
  test('not when the user is in neither To nor Cc, unless -j', () => {
    assert.match((verdict('To: team@mail.test\n') as { why: string }).why, /neither To: nor Cc:/);
    assert.equal(verdict('To: bob@elsewhere.org\n').answer, false);
    assert.deepEqual(verdict('To: team@mail.test\n', 'alice@mail.test', false), { answer: true });
  });
  test('never lists, bulk, auto-replies, bounces or robots', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['To: bob\nList-Id: <dev.lists.example.org>\n', 'alice@x.org', /list's mail/],
      ['To: bob\nList-Unsubscribe: <mailto:u@x>\n', 'alice@x.org', /list's mail/],
      ['To: bob\nPrecedence: bulk\n', 'alice@x.org', /Precedence: bulk/],
      ['To: bob\nPrecedence: junk\n', 'alice@x.org', /Precedence: junk/],
      ['To: bob\nAuto-Submitted: auto-replied\n', 'alice@x.org', /Auto-Submitted: auto-replied/],
      ['To: bob\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\n', 'alice@x.org', /bounce/],
      ['To: bob\n', '', /envelope sender is <>/],
      ['To: bob\n', 'MAILER-DAEMON@x.org', /robot/],
      ['To: bob\n', 'owner-dev@x.org', /robot/],
      ['To: bob\n', 'dev-request@x.org', /robot/],
    ];
    for (const [text, sender, why] of cases) {
      const v = verdict(text, sender);
      assert.equal(v.answer, false, text);
      assert.match((v as { why: string }).why, why, text);
    }
    assert.equal(verdict('To: bob\nAuto-Submitted: no\n').answer, true);
    assert.match((verdict('To: bob\n', 'bob@mail.test') as { why: string }).why, /the sender is the user/);
  });
});

describe('database', () => {
  test('round trip through the text form', () => {
    const db = emptyDb(FOREVER);
    db.excluded.push('@spam.example', 'boss@x.org');
    db.replies.set('alice@mail.test', 1765000000);
    assert.deepEqual(parseDb(formatDb(db)), db);
    assert.deepEqual(parseDb('garbage\nreply only-one-field\nreply a@b notanumber\n'), emptyDb());
  });
  test('once per interval; 0 answers every time; infinite answers once', () => {
    const db = emptyDb();
    db.replies.set('alice@mail.test', 1000);
    assert.equal(repliedRecently(db, 'Alice@Mail.Test', 1000 + DAY, 7 * DAY), true);
    assert.equal(repliedRecently(db, 'alice@mail.test', 1000 + 7 * DAY, 7 * DAY), false);
    assert.equal(repliedRecently(db, 'alice@mail.test', 1001, 0), false);
    assert.equal(repliedRecently(db, 'alice@mail.test', 1000 + 1000 * DAY, FOREVER), true);
    assert.equal(repliedRecently(db, 'carol@mail.test', 1001, FOREVER), false);
    prune(db, 1000 + 8 * DAY, 7 * DAY);
    assert.equal(db.replies.size, 0);
  });
  test('exclusions by address and by @domain', () => {
    const db = emptyDb();
    db.excluded.push('@spam.example', 'boss@x.org');
    assert.equal(isExcluded(db, 'anyone@SPAM.example'), true);
    assert.equal(isExcluded(db, 'Boss@x.org'), true);
    assert.equal(isExcluded(db, 'alice@x.org'), false);
  });
});

describe('the incoming message', () => {
  const framed = Buffer.from('From alice@mail.test Sun Dec  6 10:00:00 2026\nReturn-Path: <alice@mail.test>\nSubject: hi\n\nbody\n');
  test('SENDER first, then the From_ line, then Return-Path', () => {
    assert.equal(readIncoming(framed, { SENDER: 'x@y.org' }).sender, 'x@y.org');
    assert.equal(readIncoming(framed, { SENDER: '' }).sender, '');
    const m = readIncoming(framed, {});
    assert.equal(m.sender, 'alice@mail.test');
    assert.equal(m.headers.find((h) => h.name === 'Subject')?.value, 'hi');
    assert.equal(readIncoming(Buffer.from('From MAILER-DAEMON Sun Dec  6 10:00:00 2026\nSubject: x\n\n'), {}).sender, '');
    assert.equal(readIncoming(Buffer.from('Return-Path: <>\nSubject: x\n\n'), {}).sender, '');
    assert.equal(readIncoming(Buffer.from('Subject: x\n\n'), {}).sender, undefined);
  });
});

describe('the reply', () => {
  const original = headersOf('From: alice@mail.test\nTo: bob@mail.test\nSubject: Lunch?\nMessage-ID: <m2@mail.test>\nReferences: <m1@mail.test>\n\nx\n');
  test('RFC 3834 3.1 fields; To: is the answered address; the file\'s To/Cc are dropped; $SUBJECT filled in', () => {
    const template = Buffer.from('Subject: Away: $SUBJECT\r\nTo: someone@else.org\r\nCc: x@y\r\n\r\nAbout "$SUBJECT": back on Monday.\r\n');
    const out = buildReply({ template, original, to: 'alice@mail.test', from: 'Bob <bob@mail.test>' }).toString();
    assert.match(out, /^From: Bob <bob@mail\.test>\nTo: <alice@mail\.test>\n/);
    assert.match(out, /\nSubject: Away: Lunch\?\n/);
    assert.match(out, /\nIn-Reply-To: <m2@mail\.test>\n/);
    assert.match(out, /\nReferences: <m1@mail\.test> <m2@mail\.test>\n/);
    assert.match(out, /\nAuto-Submitted: auto-replied\n\n/);
    assert.match(out, /\n\nAbout "Lunch\?": back on Monday\.\n$/);
    assert.doesNotMatch(out, /someone@else|x@y/);
  });
  test('a file without a Subject: gets "Auto: " and the original subject; a text-only file is the body', () => {
    const out = buildReply({ template: Buffer.from('I am away.\n'), original, to: 'alice@mail.test', from: 'Bob <bob@mail.test>' }).toString();
    assert.match(out, /\nSubject: Auto: Lunch\?\n/);
    const own = buildReply({ template: Buffer.from('From: Robert <robert@mail.test>\n\nAway.\n'), original, to: 'a@b', from: 'Bob <bob@mail.test>' }).toString();
    assert.match(own, /^To: <a@b>\nSubject: Auto: Lunch\?\nFrom: Robert <robert@mail\.test>\n/);
    assert.match(out, /\n\nI am away\.\n$/);
  });
});

describe('respond: the database decides, the reply is recorded once sent', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'vacation-unit-'));
  after(() => fs.rmSync(home, { recursive: true, force: true }));
  fs.writeFileSync(path.join(home, '.vacation.msg'), 'Subject: away\n\nAway.\n');
  const args = parseVacationArgs(['bob']);
  const files = vacationFiles(home, args);
  const sent: string[] = [];
  let clock = 1_765_000_000_000;
  const responder = (fail = false) => ({
    from: 'Bob <bob@mail.test>',
    isMine: mine,
    now: () => clock,
    send: async (_m: Buffer, to: string) => {
      if (fail) throw new Error('sendmail is down');
      sent.push(to);
    },
  });
  const mailFrom = (sender: string, a = args, fail = false) =>
    respond(a, files, Buffer.from(`From ${sender} Sun Dec  6 10:00:00 2026\nTo: bob@mail.test\nSubject: hi\n\nx\n`), {}, responder(fail));

  test('once per interval, again after it; a failed send is not recorded', async () => {
    assert.match(await mailFrom('alice@x.org'), /answered <alice@x\.org>/);
    assert.match(await mailFrom('alice@x.org'), /answered already within 7 days/);
    clock += 7 * DAY * 1000;
    assert.match(await mailFrom('alice@x.org'), /answered/);
    await assert.rejects(mailFrom('carol@x.org', args, true), /sendmail is down/);
    assert.match(await mailFrom('carol@x.org'), /answered <carol@x\.org>/);
    assert.deepEqual(sent, ['alice@x.org', 'alice@x.org', 'carol@x.org']);
  });

  test('-x exclusions, -i with -r 0 (every message), -r infinite from the command line, -l', async () => {
    await addExclusions(files, '@spam.example\nBoss@x.org\n');
    assert.match(await mailFrom('anyone@spam.example'), /excluded/);
    assert.match(await mailFrom('boss@x.org'), /excluded/);
    await initDb(parseVacationArgs(['-i', '-r', '0']), files);
    assert.doesNotMatch(listDb(files), /spam|alice/);
    assert.match(listDb(files), /^interval 0$/m);
    assert.match(await mailFrom('alice@x.org'), /answered/);
    assert.match(await mailFrom('alice@x.org'), /answered/);
    const once = parseVacationArgs(['-r', 'infinite', 'bob']);
    clock += 1000 * DAY * 1000;
    assert.match(await mailFrom('alice@x.org', once), /answered already within all time/);
    assert.match(listDb(files), /^alice@x\.org +\w{3} /m);
  });
});
