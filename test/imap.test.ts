// IMAP against the real listener on a loopback port, with other people's
// clients: Python's imaplib and imapflow (npm) each complete a session of
// list, fetch whole and partial, flag, search, delete and expunge, append,
// copy and move between folders; under IDLE, a delivery by `sendmail -odi`
// shows up at once. Then what must last beyond a session: UIDs and
// UIDVALIDITY, flags (also as Status:/X-Status: headers for mail(1)), UIDs
// kept when another program rewrites the mbox, and a fresh UIDVALIDITY when
// the index is lost.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { rewriteMbox, scanMbox } from '../src/mailbox/index.ts';
import { splitMbox } from './helpers.ts';
import { deliver, LineClient, type MailboxServer, PASSWORD, python, startMailboxServer } from './mailbox/harness.ts';

const MIME = [
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="XyZ"',
  '',
  'preamble',
  '--XyZ',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'the text part',
  '--XyZ',
  'Content-Type: application/octet-stream; name="a.bin"',
  'Content-Transfer-Encoding: base64',
  'Content-Disposition: attachment; filename="a.bin"',
  '',
  Buffer.from('attachment bytes').toString('base64'),
  '--XyZ--',
  '',
].join('\n');

function flow(port: number, user = 'alice'): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
}

describe('IMAP clients', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer();
  });
  after(() => s.close());

  test('imaplib: a whole session over INBOX and folders', async () => {
    deliver(s.sb, 'alice', 'first message', 'body of the first\n');
    deliver(s.sb, 'alice', 'second message', 'needle in the body\n');
    deliver(s.sb, 'alice', 'with parts', MIME.slice(MIME.indexOf('\n\n') + 2), MIME.slice(0, MIME.indexOf('\n\n') + 1));
    const r = await python(`
import imaplib, sys, json, ssl
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
m.starttls(ctx)
m.login('alice', '${PASSWORD}')
o = {}
o['select'] = m.select('INBOX')[1][0].decode()
typ, data = m.fetch('1', '(RFC822.SIZE BODY.PEEK[])')
o['size'] = int(data[0][0].decode().split('RFC822.SIZE ')[1].split()[0]); o['whole'] = len(data[0][1])
typ, data = m.fetch('2', '(BODY.PEEK[TEXT]<0.6>)'); o['partial'] = data[0][1].decode()
typ, data = m.fetch('3', '(BODYSTRUCTURE BODY.PEEK[2] BODY.PEEK[2.MIME])')
o['structure'] = data[0][0].decode(); o['part2'] = data[0][1].decode(); o['mime2'] = data[1][1].decode()
o['flags'] = m.fetch('1', '(FLAGS)')[1][0].decode()
m.store('1', '+FLAGS', '(\\\\Flagged $Important)')
o['search_body'] = m.search(None, 'BODY', 'needle')[1][0].decode()
o['search_flag'] = m.search('UTF-8', 'FLAGGED', 'SUBJECT', 'first')[1][0].decode()
o['search_not'] = m.uid('SEARCH', 'NOT', 'FLAGGED')[1][0].decode()
m.create('Archive'); m.create('Work/2024')
o['copy'] = m.copy('1', 'Archive')[1][0].decode()
o['move'] = m.uid('MOVE', m.search(None, 'SUBJECT', 'parts')[1][0].decode().replace(' ', ','), 'Work/2024')
o['append'] = m.append('Archive', '(\\\\Seen)', None, b'From: x@y\\r\\nSubject: appended\\r\\n\\r\\nappended body\\r\\n')[1][0].decode()
o['list'] = [x.decode() for x in m.list()[1]]
m.store('2', '+FLAGS', '(\\\\Deleted)')
o['expunge'] = [x.decode() for x in m.expunge()[1]]
m.select('Archive')
o['archive'] = [x.decode() if isinstance(x, bytes) else x[0].decode() for x in m.fetch('1:*', '(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])')[1]]
o['status'] = m.status('Work/2024', '(MESSAGES UNSEEN)')[1][0].decode()
m.logout()
print(json.dumps(o))
`, [String(s.imap)]);
    assert.equal(r.code, 0, r.err + r.out);
    const o = JSON.parse(r.out);
    assert.equal(o.select, '3');
    assert.equal(o.whole, o.size, 'BODY[] is RFC822.SIZE octets');
    assert.equal(o.partial, 'needle');
    assert.match(o.structure, /BODYSTRUCTURE \(\("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "7BIT" 13 1 NIL NIL NIL NIL\)\("APPLICATION" "OCTET-STREAM" \("NAME" "a.bin"\) NIL NIL "BASE64" 24 NIL \("ATTACHMENT" \("FILENAME" "a.bin"\)\) NIL NIL\) "MIXED" \("BOUNDARY" "XyZ"\) NIL NIL NIL\)/);
    assert.equal(Buffer.from(o.part2, 'base64').toString(), 'attachment bytes');
    assert.match(o.mime2, /^Content-Type: application\/octet-stream; name="a.bin"\r\n.*\r\n\r\n$/s);
    assert.match(o.flags, /FLAGS \(\\Recent\)/);
    assert.equal(o.search_body, '2');
    assert.equal(o.search_flag, '1');
    assert.equal(o.search_not, '2 3');
    assert.match(o.copy, /^\[COPYUID \d+ 1 1\] COPY completed$/);
    assert.match(o.append, /^\[APPENDUID \d+ 2\]/);
    assert.ok(o.list.includes('(\\NoInferiors) "/" Archive') && o.list.includes('(\\Noselect \\HasChildren) "/" Work'));
    assert.deepEqual(o.expunge, ['3', '2'], "imaplib keeps MOVE's EXPUNGE for the next expunge()");
    assert.equal(o.archive.length, 4);
    assert.match(o.archive[0], /UID 1 FLAGS \(\\Flagged \$Important \\Recent\)/);
    assert.match(o.status, /MESSAGES 1 UNSEEN 1/);
    const inbox = splitMbox(s.sb.readMbox('alice'));
    assert.equal(inbox.length, 1, 'moved and expunged messages left INBOX');
    assert.match(inbox[0], /Subject: first message/);
  });

  test('imapflow: list, fetch, flag, search, copy, move, append, delete, and IDLE sees a delivery', async () => {
    deliver(s.sb, 'bob', 'flow one');
    deliver(s.sb, 'bob', 'flow two', MIME.slice(MIME.indexOf('\n\n') + 2), MIME.slice(0, MIME.indexOf('\n\n') + 1));
    const c = flow(s.imap, 'bob');
    await c.connect();
    try {
      await c.mailboxCreate('Saved');
      const names = (await c.list()).map((m) => m.path);
      assert.deepEqual(names.sort(), ['Drafts', 'INBOX', 'Junk', 'Saved', 'Sent', 'Trash'], 'Drafts, Junk, Sent and Trash are made at login (SPECIAL-USE)');
      const lock = await c.getMailboxLock('INBOX');
      try {
        const msgs = [];
        for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true, bodyStructure: true, size: true })) msgs.push(m);
        assert.deepEqual(msgs.map((m) => m.envelope?.subject), ['flow one', 'flow two']);
        assert.equal(msgs[1].bodyStructure?.childNodes?.[1].disposition, 'attachment');
        const part = await c.download('2', '2');
        const chunks: Buffer[] = [];
        for await (const ch of part.content) chunks.push(ch as Buffer);
        assert.equal(Buffer.concat(chunks).toString(), 'attachment bytes');
        await c.messageFlagsAdd('1', ['\\Seen', '\\Flagged']);
        assert.deepEqual(await c.search({ flagged: true }), [1]);
        const copied = await c.messageCopy('1', 'Saved');
        assert.ok(copied && copied.uidMap?.size === 1);
        const moved = await c.messageMove('2', 'Saved');
        assert.ok(moved && moved.uidMap?.size === 1);
        const appended = await c.append('Saved', 'Subject: from flow\r\n\r\nhi\r\n', ['\\Draft']);
        assert.ok(appended && appended.uid === 3);
        assert.ok(await c.messageDelete('1'));
        assert.equal((c.mailbox as { exists: number }).exists, 0);
        // IDLE: a delivery by another process shows up as EXISTS.
        const seen = new Promise<number>((resolve) => c.on('exists', (d: { count: number }) => resolve(d.count)));
        const idling = c.idle();
        await new Promise((r) => setTimeout(r, 200));
        deliver(s.sb, 'bob', 'during idle');
        // From the moment the message is in the mailbox (a delivery alone takes seconds on a loaded machine).
        const t0 = Date.now();
        assert.equal(await Promise.race([seen, new Promise((r) => setTimeout(() => r(-1), 5000))]), 1);
        assert.ok(Date.now() - t0 < 3000, 'under IDLE the new message is reported at once');
        void idling;
      } finally {
        lock.release();
      }
      const saved = await c.mailboxOpen('Saved');
      assert.equal(saved.exists, 3);
      const flags = [];
      for await (const m of c.fetch('1:*', { flags: true })) flags.push([...(m.flags ?? [])].sort());
      // imapflow enables IMAP4rev2, which has no \\Recent (RFC 9051): the flags stored, nothing else.
      assert.ok(c.enabled.has('IMAP4rev2') || c.enabled.has('IMAP4REV2'), [...c.enabled].join(' '));
      assert.deepEqual(flags, [['\\Flagged', '\\Seen'], [], ['\\Draft']]);
    } finally {
      await c.logout();
    }
  });

  test('implicit TLS (imaps) and IMAP LOGIN failures', async () => {
    const t = await startMailboxServer({ implicitTls: true });
    try {
      const c = new ImapFlow({ host: '127.0.0.1', port: t.imaps!, secure: true, auth: { user: 'carol', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
      await c.connect();
      assert.equal((await c.status('INBOX', { messages: true })).messages, 0);
      await c.logout();
      const raw = await LineClient.connect(t.imap);
      assert.match((await raw.line())!, /^\* OK \[CAPABILITY IMAP4rev1 .*STARTTLS AUTH=PLAIN/);
      raw.send('a1 LOGIN carol wrong');
      assert.equal(await raw.line(), 'a1 NO [AUTHENTICATIONFAILED] Authentication failed');
      raw.send('a2 SELECT INBOX');
      assert.equal(await raw.line(), 'a2 BAD SELECT is not allowed before login');
      raw.send('a3 LOGOUT');
      assert.match((await raw.line())!, /^\* BYE/);
      assert.equal(await raw.line(), 'a3 OK LOGOUT completed');
      raw.close();
    } finally {
      await t.close();
    }
  });
});

describe('IMAP state that outlives a session', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer();
  });
  after(() => s.close());

  async function uidsAndFlags(user: string): Promise<{ validity: number; rows: string[] }> {
    const c = flow(s.imap, user);
    await c.connect();
    try {
      const box = await c.mailboxOpen('INBOX');
      const rows: string[] = [];
      if (box.exists) for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true })) rows.push(`${m.uid} ${m.envelope?.subject} ${[...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort().join(',')}`);
      return { validity: Number(box.uidValidity), rows };
    } finally {
      await c.logout();
    }
  }

  test('UIDs, UIDVALIDITY and flags persist; flags reach the Status: headers; a rewrite by another program keeps UIDs', async () => {
    for (const n of [1, 2, 3, 4]) deliver(s.sb, 'carol', `m${n}`);
    const c = flow(s.imap, 'carol');
    await c.connect();
    await c.mailboxOpen('INBOX');
    await c.messageFlagsAdd('2', ['\\Seen', '\\Answered']);
    await c.messageFlagsAdd('3', ['\\Flagged']);
    await c.logout();
    await new Promise((r) => setTimeout(r, 300));
    const first = await uidsAndFlags('carol');
    assert.deepEqual(first.rows, ['1 m1 ', '2 m2 \\Answered,\\Seen', '3 m3 \\Flagged', '4 m4 ']);
    const text = s.sb.readMbox('carol');
    assert.match(text, /Subject: m2\n(?:.*\n)*?Status: RO\nX-Status: A\n/);
    assert.match(text, /Subject: m3\n(?:.*\n)*?Status: O\nX-Status: F\n/);
    // Another program (as mail(1) would) drops m1 and marks m4 read, through the shared rewrite.
    const file = s.sb.mbox('carol');
    const index = await scanMbox(file);
    const data = fs.readFileSync(file);
    const m4 = index.messages[3];
    const header = data.subarray(m4.dataOffset, m4.dataOffset + m4.headerLength).toString().replace(/\n\n$/, '\nStatus: RO\n\n');
    await rewriteMbox(file, index, [{ entry: index.messages[1] }, { entry: index.messages[2] }, { entry: m4, headers: Buffer.from(header) }]);
    deliver(s.sb, 'carol', 'm5');
    const second = await uidsAndFlags('carol');
    assert.equal(second.validity, first.validity);
    assert.deepEqual(second.rows, ['2 m2 \\Answered,\\Seen', '3 m3 \\Flagged', '4 m4 \\Seen', '5 m5 ']);
    // The index lost: rebuilt from the mbox, with a new UIDVALIDITY and the flags of the headers.
    fs.rmSync(path.join(s.sb.users.carol.home, 'mail/.imap/INBOX'), { recursive: true });
    const third = await uidsAndFlags('carol');
    assert.notEqual(third.validity, first.validity);
    assert.deepEqual(third.rows, ['1 m2 \\Answered,\\Seen', '2 m3 \\Flagged', '3 m4 \\Seen', '4 m5 ']);
  });
});

describe('the daemon', () => {
  test('sendmail -bD opens the POP3 and IMAP listeners and closes them on SIGTERM', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./helpers.ts');
    const s = await startMailboxServer();
    await s.listeners.close(0); // this test wants the daemon's own listeners
    deliver(s.sb, 'alice', 'for the daemon');
    const daemon = spawn(path.join(BIN, 'sendmail'), ['-C', s.sb.conf, '-bD'], { env: s.sb.env, stdio: 'ignore' });
    try {
      const ports = () => {
        const log = fs.existsSync(s.sb.log) ? fs.readFileSync(s.sb.log, 'utf8') : '';
        const all = (kind: string) => [...log.matchAll(new RegExp(`${kind} listener on 127\\.0\\.0\\.1:(\\d+)`, 'g'))].map((m) => Number(m[1]));
        return { imap: all('imap').at(-1) ?? 0, pop3: all('pop3').at(-1) ?? 0, count: all('imap').length };
      };
      const { waitFor } = await import('./helpers.ts');
      await waitFor(() => ports().count >= 2, 20_000, 'the daemon to listen');
      const c = flow(ports().imap);
      await c.connect();
      const st = await c.status('INBOX', { messages: true });
      await c.logout();
      assert.equal(st.messages, 1);
      const pop = await LineClient.connect(ports().pop3);
      assert.match((await pop.line())!, /^\+OK POP3 server ready/);
      pop.close();
    } finally {
      const exited = new Promise<number | null>((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      assert.equal(await exited, 0);
      s.sb.cleanup();
    }
  });
});
