// POP3's APOP offer (RFC 1939 7): the greeting carries a <timestamp> only
// when APOP can work, that is when apop_secrets_file is a private file
// (0600, as the APOP check insists) holding a "name:secret" line. Clients
// such as s-nail take a timestamp as the offer and try APOP first; with no
// secrets at all, that login could only fail. CAPA never names APOP (RFC 2449
// has no tag for it) and lists USER and SASL either way; an APOP command
// without the offer is refused at once.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { deliver, LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

const noSnail = spawnSync('s-nail', ['-V']).status !== 0 && 's-nail is not installed (test/install-deps.sh installs it)';

async function greeting(s: MailboxServer): Promise<{ c: LineClient; line: string }> {
  const c = await LineClient.connect(s.pop3);
  return { c, line: (await c.line())! };
}

async function capa(c: LineClient): Promise<string[]> {
  c.send('CAPA');
  assert.match((await c.line())!, /^\+OK/);
  const lines: string[] = [];
  for (let l = await c.line(); l !== '.'; l = await c.line()) lines.push(l!);
  return lines;
}

/** s-nail with its defaults (APOP when offered) reading alice's maildrop over POP3; its header summary. */
function snail(s: MailboxServer, user: string): Promise<{ code: number | null; out: string; err: string }> {
  const home = path.join(s.sb.dir, 'snail-home');
  fs.mkdirSync(home, { recursive: true });
  const args = ['-n', '-N', '-#', '-S', 'v15-compat', '-S', `password=${PASSWORD}`, '-f', `pop3://${user}@127.0.0.1:${s.pop3}`];
  return new Promise((resolve) => {
    const child = spawn('s-nail', args, { env: { PATH: process.env.PATH, HOME: home, MAIL: '/dev/null', LC_ALL: 'C.UTF-8' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
    child.stdin.end('headers\nquit\n');
  });
}

function logins(s: MailboxServer, user: string): string[] {
  const log = fs.existsSync(s.sb.log) ? fs.readFileSync(s.sb.log, 'utf8') : '';
  return [...log.matchAll(new RegExp(`user=${user}, proto=pop3, method=(\\S+), .*stat=(Login|authentication failed)`, 'g'))].map((m) => `${m[1]} ${m[2]}`);
}

describe('POP3 APOP offer', () => {
  let s: MailboxServer;
  let secrets: string;
  before(async () => {
    s = await startMailboxServer();
    secrets = s.config.apopSecretsFile;
  });
  after(() => s.close());

  test('no secrets file, an empty one, one of comments, or one others may read: no timestamp, APOP refused, CAPA unchanged', async () => {
    const cases: Array<[string, (() => void) | undefined]> = [
      ['missing', () => fs.rmSync(secrets, { force: true })],
      ['empty', () => fs.writeFileSync(secrets, '', { mode: 0o600 })],
      ['comments only', () => fs.writeFileSync(secrets, '# name:secret\n\n', { mode: 0o600 })],
      ['readable by others', () => (fs.writeFileSync(secrets, 'alice:tanstaaf\n'), fs.chmodSync(secrets, 0o644))],
    ];
    for (const [what, setUp] of cases) {
      fs.rmSync(secrets, { force: true });
      setUp?.();
      const { c, line } = await greeting(s);
      try {
        assert.equal(line, '+OK POP3 server ready', `${what}: the greeting offers no APOP`);
        const caps = await capa(c);
        assert.ok(caps.includes('USER') && caps.includes('SASL PLAIN LOGIN'), `${what}: ${caps.join(' ')}`);
        assert.ok(!caps.some((x) => /APOP/i.test(x)), `${what}: CAPA does not name APOP`);
        c.send(`APOP alice ${'0'.repeat(32)}`);
        assert.match((await c.line())!, /^-ERR \[AUTH\] APOP is not available/, what);
        c.send('USER alice');
        await c.line();
        c.send(`PASS ${PASSWORD}`);
        assert.match((await c.line())!, /^\+OK alice's maildrop has/, `${what}: USER/PASS works`);
        c.send('QUIT');
        await c.line();
      } finally {
        c.close();
      }
    }
  });

  test('a private secrets file with a secret: the timestamp is offered and APOP logs in; CAPA is the same', async () => {
    fs.rmSync(secrets, { force: true });
    fs.writeFileSync(secrets, '# APOP secrets\nalice:tanstaaf\n', { mode: 0o600 });
    const { c, line } = await greeting(s);
    try {
      const m = /^\+OK POP3 server ready (<\d+\.\d+@mail\.test>)$/.exec(line);
      assert.ok(m, line);
      const caps = await capa(c);
      assert.ok(caps.includes('USER') && caps.includes('SASL PLAIN LOGIN') && !caps.some((x) => /APOP/i.test(x)), caps.join(' '));
      c.send(`APOP alice ${crypto.createHash('md5').update(`${m[1]}tanstaaf`).digest('hex')}`);
      assert.match((await c.line())!, /^\+OK alice's maildrop has/);
      c.send('QUIT');
      await c.line();
    } finally {
      c.close();
    }
    // A change to the file is seen at the next greeting.
    fs.writeFileSync(secrets, '');
    const again = await greeting(s);
    again.c.close();
    assert.equal(again.line, '+OK POP3 server ready');
  });

  test('root-owned and readable by its group (as a root daemon shares it with mail_owner): APOP works; readable by others: not', { skip: process.geteuid?.() !== 0 && 'needs root to own the file as root' }, async () => {
    fs.rmSync(secrets, { force: true });
    fs.writeFileSync(secrets, 'alice:tanstaaf\n');
    fs.chmodSync(secrets, 0o640);
    const shared = await greeting(s);
    shared.c.close();
    assert.match(shared.line, /^\+OK POP3 server ready <\d+\.\d+@mail\.test>$/);
    fs.chmodSync(secrets, 0o644);
    const open = await greeting(s);
    open.c.close();
    assert.equal(open.line, '+OK POP3 server ready');
  });

  test('s-nail with its defaults logs in: by USER/PASS with no secrets, by APOP with one', { skip: noSnail }, async () => {
    deliver(s.sb, 'bob', 'for s-nail');
    fs.rmSync(secrets, { force: true });
    const plain = await snail(s, 'bob');
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.out, /for s-nail/);
    assert.deepEqual(logins(s, 'bob'), ['USER Login']);
    fs.writeFileSync(secrets, `bob:${PASSWORD}\n`, { mode: 0o600 });
    const apop = await snail(s, 'bob');
    assert.equal(apop.code, 0, apop.err);
    assert.match(apop.out, /for s-nail/);
    assert.deepEqual(logins(s, 'bob'), ['USER Login', 'APOP Login']);
  });
});
