// A message's text survives the mbox whatever its lines begin with: body lines
// "From a", ">From b", ">>From c", " From d" and a last "From" without a
// newline go in through the real `sendmail -i` (and IMAP APPEND and COPY) and
// come back byte for byte (up to CRLF) through POP3 RETR, IMAP BODY[] and its
// parts, `mail -f` (pipe and write) and the mbox scanner; the sizes POP3 LIST,
// RFC822.SIZE and BODYSTRUCTURE promise are the bytes sent, and SEARCH BODY
// sees the text as sent. Then a UTF-8 envelope sender (SMTPUTF8) leaves the
// From_ line ASCII: Python's mailbox module reads the mailbox, and mail(1)
// shows the sender decoded.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readMessageBytes, scanMbox, unquoteFrom } from '../src/mailbox/index.ts';
import { run } from './helpers.ts';
import { fetchedLiteral as literal, imapCommand as command, LineClient, type MailboxServer, PASSWORD, python, startMailboxServer } from './mailbox/harness.ts';

const BODY = 'From a\n>From b\n>>From c\n From d\n\nFrom after a blank line\n>>>From e\nFrom';
const HEADER = 'From: sender@mail.test\nTo: alice@mail.test\nSubject: from lines\n';
const MIME_BODY = ['--B', 'Content-Type: text/plain', '', BODY, '--B', 'Content-Type: text/plain', '', '>From in part two', '--B--', ''].join('\n');
const MIME_HEADER = 'From: sender@mail.test\nTo: alice@mail.test\nSubject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=B\n';

const crlf = (t: string) => t.replace(/\r?\n/g, '\r\n');
/** The body as it must come back: CRLF line ends, the final newline SMTP adds. */
const SERVED_BODY = crlf(BODY) + '\r\n';


/** The body: what follows the first blank line. */
const bodyOf = (msg: string) => msg.slice(msg.indexOf('\r\n\r\n') + 4);

describe('From lines round-trip through the mbox', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    for (const text of [HEADER + '\n' + BODY, MIME_HEADER + '\n' + MIME_BODY]) {
      const r = run(s.sb, 'sendmail', ['-odi', '-i', 'alice'], text);
      assert.equal(r.status, 0, r.stderr);
    }
  });
  after(() => s.close());

  test('stored as mboxrd: one more ">" on every line matching ^>*From ', () => {
    const box = s.sb.readMbox('alice');
    assert.ok(box.includes('\n\n>From a\n>>From b\n>>>From c\n From d\n\n>From after a blank line\n>>>>From e\nFrom\n\n'), box);
  });

  test('the mbox scanner gives back the message as sent', async () => {
    const file = s.sb.mbox('alice');
    const idx = await scanMbox(file);
    assert.equal(idx.messages.length, 2);
    const data = unquoteFrom(await readMessageBytes(file, idx.messages[0])).toString();
    assert.ok(data.endsWith(`\n\n${BODY}\n`), data);
  });

  test('POP3 RETR: the body as sent, and LIST promised its size', async () => {
    const c = await LineClient.connect(s.pop3);
    try {
      await c.line();
      c.send('USER alice');
      await c.line();
      c.send(`PASS ${PASSWORD}`);
      assert.match((await c.line()) ?? '', /^\+OK/);
      c.send('LIST 1');
      const size = Number(/^\+OK 1 (\d+)$/.exec((await c.line()) ?? '')?.[1]);
      c.send('RETR 1');
      assert.match((await c.line()) ?? '', /^\+OK/);
      const lines: string[] = [];
      for (let l = await c.line(); l !== '.'; l = await c.line()) {
        assert.ok(l !== undefined);
        lines.push(l.startsWith('.') ? l.slice(1) : l);
      }
      const msg = lines.map((l) => `${l}\r\n`).join('');
      assert.equal(bodyOf(msg), SERVED_BODY);
      assert.equal(Buffer.byteLength(msg, 'latin1'), size, 'LIST size = bytes of RETR');
      c.send('QUIT');
    } finally {
      c.close();
    }
  });

  test('IMAP: BODY[], BODY[TEXT], parts and SEARCH BODY see the text as sent; sizes hold', async () => {
    const c = await LineClient.connect(s.imap);
    try {
      await c.line();
      await command(c, 'a1', `LOGIN alice ${PASSWORD}`);
      await command(c, 'a2', 'SELECT INBOX');
      const [r1] = await command(c, 'a3', 'FETCH 1 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT])');
      const whole = literal(r1, 'BODY[]');
      assert.equal(bodyOf(whole), SERVED_BODY);
      assert.equal(literal(r1, 'BODY[TEXT]'), SERVED_BODY);
      assert.equal(Number(/RFC822\.SIZE (\d+)/.exec(r1)![1]), Buffer.byteLength(whole, 'latin1'));
      const [r2] = await command(c, 'a4', 'FETCH 2 (RFC822.SIZE BODY.PEEK[] BODY.PEEK[1] BODY.PEEK[2] BODYSTRUCTURE)');
      assert.equal(Number(/RFC822\.SIZE (\d+)/.exec(r2)![1]), Buffer.byteLength(literal(r2, 'BODY[]'), 'latin1'));
      assert.equal(literal(r2, 'BODY[1]'), crlf(BODY));
      assert.equal(literal(r2, 'BODY[2]'), '>From in part two');
      // BODYSTRUCTURE's size of part 1 is the octets BODY[1] sends.
      const sizes = [...r2.matchAll(/\("TEXT" "PLAIN" (?:NIL|\([^)]*\)) NIL NIL "[^"]*" (\d+)/gi)].map((m) => Number(m[1]));
      assert.deepEqual(sizes, [crlf(BODY).length, '>From in part two'.length]);
      const search = async (tag: string, text: string) => (await command(c, tag, `SEARCH BODY "${text}"`))[0];
      assert.equal(await search('a5', '>>From c'), '* SEARCH 1 2');
      assert.equal(await search('a6', '>>>From c'), '* SEARCH');
      assert.equal(await search('a7', '>>>From e'), '* SEARCH 1 2');
      assert.equal(await search('a8', '>>>>From e'), '* SEARCH');
      await command(c, 'a9', 'LOGOUT').catch(() => undefined);
    } finally {
      c.close();
    }
  });

  test('IMAP APPEND and COPY keep the text too', async () => {
    const c = await LineClient.connect(s.imap);
    try {
      await c.line();
      await command(c, 'b1', `LOGIN alice ${PASSWORD}`);
      const sent = Buffer.from(crlf(`${HEADER}\n${BODY}\n`));
      await command(c, 'b2', 'APPEND INBOX', sent);
      await command(c, 'b3', 'CREATE Kept');
      await command(c, 'b4', 'SELECT INBOX');
      const [r] = await command(c, 'b5', 'FETCH 3 (RFC822.SIZE BODY.PEEK[])');
      assert.equal(literal(r, 'BODY[]'), sent.toString('latin1'));
      assert.equal(Number(/RFC822\.SIZE (\d+)/.exec(r)![1]), sent.length);
      await command(c, 'b6', 'COPY 1,3 Kept');
      await command(c, 'b7', 'SELECT Kept');
      const [k1, k2] = await command(c, 'b8', 'FETCH 1:2 (RFC822.SIZE BODY.PEEK[])');
      assert.equal(bodyOf(literal(k1, 'BODY[]')), SERVED_BODY);
      assert.equal(literal(k2, 'BODY[]'), sent.toString('latin1'));
      for (const k of [k1, k2]) assert.equal(Number(/RFC822\.SIZE (\d+)/.exec(k)![1]), Buffer.byteLength(literal(k, 'BODY[]'), 'latin1'));
      await command(c, 'b9', 'LOGOUT').catch(() => undefined);
    } finally {
      c.close();
    }
  });

  test('mail -f: pipe and write give the text as sent; type shows it', () => {
    const out = path.join(s.sb.dir, 'piped');
    const bodyFile = path.join(s.sb.dir, 'written');
    const home = s.sb.users.alice.home;
    const r = run(s.sb, 'mail', ['-N', '-f', s.sb.mbox('alice')], `pipe 1 cat > ${out}\nwrite 1 ${bodyFile}\ntype 1\nx\n`, { HOME: home });
    assert.equal(r.status, 0, r.stderr);
    const piped = fs.readFileSync(out, 'utf8');
    assert.ok(piped.endsWith(`\n\n${BODY}\n`), piped);
    assert.equal(fs.readFileSync(bodyFile, 'utf8'), `${BODY}\n`);
    assert.ok(r.stdout.includes(`${BODY}\n`), r.stdout);
  });
});

describe('a UTF-8 envelope sender', () => {
  let s: MailboxServer;
  const SENDER = 'jörg+list=x@bücher.example';
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    const text = 'To: alice@mail.test\nSubject: utf8 sender\n\nhello\n';
    let r = run(s.sb, 'sendmail', ['-odi', '-i', '-f', SENDER, 'alice'], text);
    assert.equal(r.status, 0, r.stderr);
    r = run(s.sb, 'sendmail', ['-odi', '-i', '-f', 'plain@mail.test', 'alice'], 'Subject: second\n\nFrom here\n>From there\n');
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => s.close());

  test('the From_ line is ASCII, the sender in xtext; Return-Path keeps it as it is', () => {
    const box = fs.readFileSync(s.sb.mbox('alice'));
    const first = box.subarray(0, box.indexOf(0x0a)).toString('latin1');
    assert.match(first, /^From j\+C3\+B6rg\+list=x@b\+C3\+BCcher\.example [A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4}$/);
    assert.ok(box.toString('utf8').includes(`\nReturn-Path: <${SENDER}>\n`));
  });

  test("Python's mailbox module reads the mailbox", { skip: spawnSync('python3', ['--version']).status !== 0 ? 'python3 is not installed' : false }, async () => {
    const script = [
      'import json, mailbox, sys',
      'box = mailbox.mbox(sys.argv[1], create=False)',
      'out = [{"from": m.get_from(), "subject": m["subject"], "body": m.get_payload()} for m in box]',
      'print(json.dumps(out))',
    ].join('\n');
    const r = await python(script, [s.sb.mbox('alice')]);
    assert.equal(r.code, 0, r.err);
    const got = JSON.parse(r.out) as Array<{ from: string; subject: string; body: string }>;
    assert.equal(got.length, 2);
    assert.match(got[0].from, /^j\+C3\+B6rg\+list=x@b\+C3\+BCcher\.example /);
    assert.equal(got[0].subject, 'utf8 sender');
    assert.match(got[1].from, /^plain@mail\.test /);
    // Python reads mbox bodies as stored: the mboxrd quoting shows.
    assert.equal(got[1].body, '>From here\n>>From there\n');
  });

  test('mail(1) shows the sender decoded', () => {
    const r = run(s.sb, 'mail', ['-N', '-f', s.sb.mbox('alice')], 'type 1\nx\n', { HOME: s.sb.users.alice.home });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes(`From ${SENDER} `), r.stdout);
  });
});
