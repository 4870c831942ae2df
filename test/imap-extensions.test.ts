// IMAP extensions current clients use, each on the wire against the
// in-process listeners and with a real client where one is here (imapflow,
// Python's imaplib): ID (RFC 2971), ENABLE (RFC 5161), SPECIAL-USE (RFC 6154),
// LIST-EXTENDED (RFC 5258) and LIST-STATUS (RFC 5819), ESEARCH (RFC 4731),
// SORT and THREAD (RFC 5256).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { deliver, LineClient, type MailboxServer, PASSWORD, python, startMailboxServer } from './mailbox/harness.ts';

interface Reply {
  status: string;
  text: string;
  untagged: string[];
}

class Imap {
  private n = 0;
  greeting = '';
  private constructor(private readonly c: LineClient) {}

  static async connect(port: number): Promise<Imap> {
    const c = await LineClient.connect(port);
    const s = new Imap(c);
    s.greeting = (await c.line())!;
    assert.match(s.greeting, /^\* OK /);
    return s;
  }

  static async login(port: number, user: string): Promise<Imap> {
    const s = await Imap.connect(port);
    await s.ok(`LOGIN ${user} ${PASSWORD}`);
    return s;
  }

  async run(command: string): Promise<Reply> {
    const tag = `t${++this.n}`;
    this.c.send(`${tag} ${command}`);
    const untagged: string[] = [];
    for (;;) {
      const line = await this.c.line();
      if (line === undefined) throw new Error(`connection closed during ${command}`);
      const m = /^(\S+) (OK|NO|BAD) ?(.*)$/.exec(line);
      if (m && m[1] === tag) return { status: m[2], text: m[3], untagged };
      untagged.push(line);
    }
  }

  async ok(command: string): Promise<Reply> {
    const r = await this.run(command);
    assert.equal(r.status, 'OK', `${command}: ${r.status} ${r.text}`);
    return r;
  }

  close(): void {
    this.c.close();
  }
}

function flow(port: number, user: string): ImapFlow {
  return new ImapFlow({ host: '127.0.0.1', port, secure: false, auth: { user, pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false }, clientInfo: { name: 'ext-test', version: '1' } });
}

describe('IMAP extensions', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob', 'carol', 'dave', 'erin'] });
  });
  after(() => s.close());

  test('ID: the server names itself for NIL and for a client list, in any state; bad forms are BAD', async () => {
    const c = await Imap.connect(s.imap);
    try {
      const caps = (await c.ok('CAPABILITY')).untagged[0];
      assert.match(caps, / ID( |$)/);
      assert.deepEqual((await c.ok('ID NIL')).untagged, ['* ID ("name" "mailtk" "version" "0.1.0")']);
      assert.deepEqual((await c.ok('ID ("name" "test" "version" NIL)')).untagged, ['* ID ("name" "mailtk" "version" "0.1.0")']);
      assert.equal((await c.run('ID')).status, 'BAD');
      assert.equal((await c.run('ID ("name")')).status, 'BAD');
      assert.equal((await c.run('ID (name "x")')).status, 'BAD');
      assert.equal((await c.run(`ID ("${'x'.repeat(31)}" "y")`)).status, 'BAD');
      await c.ok(`LOGIN alice ${PASSWORD}`);
      assert.equal((await c.ok('ID NIL')).untagged.length, 1);
    } finally {
      c.close();
    }
    const f = flow(s.imap, 'alice');
    await f.connect();
    try {
      assert.deepEqual(f.serverInfo, { name: 'mailtk', version: '0.1.0' });
    } finally {
      await f.logout();
    }
  });

  test('ENABLE: only after login and before SELECT, at least one name, ENABLED lists what it turned on', async () => {
    const c = await Imap.connect(s.imap);
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / ENABLE( |$)/);
      assert.equal((await c.run('ENABLE FOO')).status, 'BAD', 'not before login');
      await c.ok(`LOGIN alice ${PASSWORD}`);
      assert.equal((await c.run('ENABLE')).status, 'BAD');
      assert.equal((await c.run('ENABLE "FOO"')).status, 'BAD');
      assert.deepEqual((await c.ok('ENABLE FOO CONDSTORE')).untagged, ['* ENABLED']);
      await c.ok('SELECT INBOX');
      assert.equal((await c.run('ENABLE FOO')).status, 'BAD', 'not in the selected state');
    } finally {
      c.close();
    }
    const r = await python(`
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice', '${PASSWORD}')
typ, data = m.enable('X-NOTHING')
print(typ, data)
m.logout()
`, [String(s.imap)]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /^OK /);
  });
});
