// POP3 against the real listener on a loopback port: the transcripts in
// pop3-transcripts/ byte for byte (sizes, ids and the APOP timestamp aside;
// each RETR/TOP body is checked against its announced octet count and the
// mbox), then Python's poplib through whole sessions, and the rules of RFC
// 1939: one session per maildrop, deletions only in UPDATE, a dropped
// connection or the autologout deletes nothing, mail arriving meanwhile is
// kept, UIDL is stable across sessions, STLS and AUTH PLAIN work.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAsync, splitMbox } from './helpers.ts';
import { deliver, LineClient, type MailboxServer, PASSWORD, python, startMailboxServer } from './mailbox/harness.ts';

const DIR = path.join(import.meta.dirname, 'pop3-transcripts');

/** Read a multi-line body up to ".", undo byte-stuffing, return its octets (CRLF counted). */
async function readBody(c: LineClient): Promise<string> {
  const lines: string[] = [];
  for (;;) {
    const l = await c.line();
    assert.ok(l !== undefined, 'connection closed inside a multi-line reply');
    if (l === '.') break;
    lines.push(l.startsWith('.') ? l.slice(1) : l);
  }
  return lines.map((l) => `${l}\r\n`).join('');
}

async function replay(file: string, s: MailboxServer): Promise<void> {
  const text = fs.readFileSync(file, 'utf8').split('\n');
  let secret = '';
  for (const l of text) {
    const m = /^!(secret|mail) (\S+) (\S+)$/.exec(l);
    if (m?.[1] === 'secret') {
      secret = m[3];
      fs.writeFileSync(s.config.apopSecretsFile, `${m[2]}:${m[3]}\n`, { mode: 0o600 });
    } else if (m?.[1] === 'mail') deliver(s.sb, m[2], m[3]);
  }
  const c = await LineClient.connect(s.pop3);
  let ts = '';
  let lastSize = -1;
  try {
    for (const [i, l] of text.entries()) {
      const where = `${path.basename(file)}:${i + 1}`;
      if (l.startsWith('C: ')) c.send(l.slice(3).replace('{DIGEST}', crypto.createHash('md5').update(ts + secret).digest('hex')));
      else if (l === 'S: {MESSAGE}') {
        const body = await readBody(c);
        if (lastSize >= 0) assert.equal(Buffer.byteLength(body, 'latin1'), lastSize, `${where}: octets announced and sent`);
      } else if (l.startsWith('S: ')) {
        const got = await c.line();
        const re = new RegExp(`^${l.slice(3).replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace('{TS}', '(<\\d+\\.\\d+@[^>]+>)').replace(/\{N\}/g, '(\\d+)').replace('{ID}', '([\\x21-\\x7e]{1,70})')}$`);
        const m = re.exec(got ?? '');
        assert.ok(m, `${where}: expected ${JSON.stringify(l.slice(3))}, got ${JSON.stringify(got)}`);
        if (l.includes('{TS}')) ts = m[1];
        const octets = /^\+OK (\d+) octets$/.exec(got ?? '');
        lastSize = octets ? Number(octets[1]) : -1;
      } else if (l === '!closed') assert.equal(await c.line(), undefined, `${where}: the server should close`);
    }
  } finally {
    c.close();
  }
}

describe('POP3 transcripts', () => {
  for (const name of fs.readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort()) {
    test(name, async () => {
      const s = await startMailboxServer();
      try {
        await replay(path.join(DIR, name), s);
      } finally {
        await s.close();
      }
    });
  }
});

describe('POP3 sessions', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ extraConf: 'pop3_timeout = 2s' });
  });
  after(() => s.close());

  const login = async (user = 'alice') => {
    const c = await LineClient.connect(s.pop3);
    assert.match((await c.line())!, /^\+OK /);
    c.send(`USER ${user}`);
    await c.line();
    c.send(`PASS ${PASSWORD}`);
    return { c, reply: (await c.line())! };
  };

  test('poplib: list, retrieve whole and partial, UIDL, delete; sizes count CRLF; dots stuffed', async () => {
    deliver(s.sb, 'bob', 'plain');
    deliver(s.sb, 'bob', 'dots', '.leading dot\n..two dots\nFrom a line that mbox quotes\n');
    const r = await python(`
import poplib, sys, json
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
p.user('bob'); p.pass_('${PASSWORD}')
out = {'stat': p.stat(), 'list': [x.decode() for x in p.list()[1]], 'uidl': [x.decode() for x in p.uidl()[1]]}
resp, lines, octets = p.retr(2)
out['retr'] = [resp.decode(), [l.decode() for l in lines], octets]
out['top'] = [l.decode() for l in p.top(1, 0)[1]]
p.dele(1)
out['quit'] = p.quit().decode()
print(json.dumps(out))
`, [String(s.pop3)]);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out);
    assert.equal(out.stat[0], 2);
    const body: string[] = out.retr[1];
    assert.deepEqual(body.slice(-3), ['.leading dot', '..two dots', 'From a line that mbox quotes']);
    const announced = Number(/^\+OK (\d+) octets$/.exec(out.retr[0])![1]);
    assert.equal(announced, body.map((l) => Buffer.byteLength(l) + 2).reduce((a, b) => a + b), 'octet count with CRLF line ends');
    assert.equal(Number(out.list[1].split(' ')[1]), announced);
    assert.ok(out.top.includes('Subject: plain') && out.top[out.top.length - 1] === '');
    assert.match(out.quit, /signing off \(1 message left\)/);
    const left = splitMbox(s.sb.readMbox('bob'));
    assert.equal(left.length, 1);
    assert.match(left[0], /Subject: dots/);
    assert.match(left[0], /\nStatus: RO\n/, 'RETR marks the message read for mail(1)');
    // UIDL is the same in the next session.
    const again = await python(`
import poplib, sys
p = poplib.POP3('127.0.0.1', int(sys.argv[1])); p.user('bob'); p.pass_('${PASSWORD}')
print(p.uidl()[1][0].decode().split()[1]); p.quit()`, [String(s.pop3)]);
    assert.equal(again.out.trim(), out.uidl[1].split(' ')[1]);
  });

  test('one session per maildrop; a dropped connection deletes nothing', async () => {
    deliver(s.sb, 'carol', 'keep me');
    const a = await login('carol');
    assert.match(a.reply, /^\+OK carol's maildrop has 1 message /);
    const b = await login('carol');
    assert.equal(b.reply, '-ERR [IN-USE] maildrop already locked');
    b.c.close();
    a.c.send('DELE 1');
    assert.equal(await a.c.line(), '+OK message 1 deleted');
    a.c.close(); // no QUIT: no UPDATE state
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(splitMbox(s.sb.readMbox('carol')).length, 1);
    const c = await login('carol');
    assert.match(c.reply, /has 1 message/, 'the lock went with the dropped session');
    c.c.send('QUIT');
    await c.c.line();
  });

  test('mail that arrives during a session survives its UPDATE', async () => {
    deliver(s.sb, 'alice', 'old one');
    const { c } = await login('alice');
    // Delivered beside the session, which NOOPs meanwhile: a delivery on a loaded machine can
    // outlast this server's 2 s autologout.
    let done = false;
    const delivered = runAsync(s.sb, 'sendmail', ['-odi', '-i', 'alice'], 'From: sender@mail.test\nSubject: arrived meanwhile\n\nhello\n').finally(() => (done = true));
    while (!done) {
      c.send('NOOP');
      assert.match((await c.line())!, /^\+OK/);
      await new Promise((r) => setTimeout(r, 300));
    }
    assert.equal((await delivered).status, 0);
    c.send('STAT');
    assert.match((await c.line())!, /^\+OK 1 \d+$/, 'the maildrop is fixed at login');
    c.send('DELE 1');
    await c.line();
    c.send('QUIT');
    assert.match((await c.line())!, /maildrop empty/);
    const left = splitMbox(s.sb.readMbox('alice'));
    assert.equal(left.length, 1);
    assert.match(left[0], /Subject: arrived meanwhile/);
  });

  test('autologout closes without UPDATE', async () => {
    deliver(s.sb, 'bob', 'timeout');
    const { c } = await login('bob');
    c.send('DELE 1');
    await c.line();
    assert.match((await c.line(5000))!, /^-ERR autologout/);
    assert.equal(await c.line(), undefined);
    await new Promise((r) => setTimeout(r, 200));
    assert.match(s.sb.readMbox('bob'), /Subject: timeout/);
  });

  test('STLS and AUTH PLAIN with poplib; bad passwords are refused', async () => {
    deliver(s.sb, 'carol', 'over tls');
    const r = await python(`
import poplib, ssl, sys, base64
p = poplib.POP3('127.0.0.1', int(sys.argv[1]))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
p.stls(ctx)
print('STLS' in p.capa())
try:
    p.user('carol'); p.pass_('wrong')
except poplib.error_proto as e:
    print(e.args[0].decode())
print(p._shortcmd('AUTH PLAIN ' + base64.b64encode(b'\\0carol\\0${PASSWORD}').decode()).decode())
print(p.stat()[0]); p.quit()
`, [String(s.pop3)]);
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n');
    assert.deepEqual(lines.slice(0, 2), ['False', '-ERR [AUTH] authentication failed']);
    assert.match(lines[2], /^\+OK carol's maildrop has 2 messages \(\d+ octets\)$/);
  });
});
