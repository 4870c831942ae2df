// Other people's SMTP clients against the real daemon (`sendmail -bD`, the
// binaries in bin/) on loopback ports: Python's smtplib and swaks send local
// mail that lands in the mbox; relaying from a client outside relay_networks
// is refused 550 5.7.1; after STARTTLS and AUTH (password set with
// bin/mailpasswd) relaying works; `swaks --pipe 'sendmail -bs'` completes a
// session over stdin/stdout. Remote mail goes to smart_host [127.0.0.1]:9,
// where nothing listens: nothing leaves the machine.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';
import { serverConf } from './transcripts/harness.ts';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;

let sb: Sandbox;
let daemon: ChildProcess;
let smtpPort: number;
let submissionPort: number;

before(async () => {
  sb = makeSandbox();
  const extra = [serverConf(sb, { submission: true }), 'relay_networks = 10.0.0.0/8', 'delivery_mode = background',
    'smart_host = [127.0.0.1]:9', 'dns_servers = 127.0.0.1:9', 'min_backoff = 1h'];
  fs.appendFileSync(sb.conf, extra.join('\n') + '\n');
  const pw = run(sb, 'mailpasswd', ['alice'], 's3cret\n');
  assert.equal(pw.status, 0, pw.stderr);
  assert.match(pw.stderr, /password for alice added/);
  daemon = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD'], { env: sb.env, stdio: 'ignore' });
  const ports = () => {
    const log = fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '';
    return {
      smtp: Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(log)?.[1]),
      submission: Number(/submission listener on 127\.0\.0\.1:(\d+)/.exec(log)?.[1]),
    };
  };
  await waitFor(() => ports().smtp > 0 && ports().submission > 0, 15_000, 'the daemon to listen');
  ({ smtp: smtpPort, submission: submissionPort } = ports());
});

after(async () => {
  if (daemon.exitCode === null) {
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
  }
  sb.cleanup();
});

function waitForMessage(user: string, subject: string): Promise<void> {
  return waitFor(() => splitMbox(sb.readMbox(user)).some((m) => m.includes(`\nSubject: ${subject}\n`)), 15_000, `${subject} in ${user}'s mbox`);
}

function mailq(): string {
  return run(sb, 'mailq', []).stdout;
}

const PYTHON = `
import json, smtplib, ssl, sys
port, sub = int(sys.argv[1]), int(sys.argv[2])
out = {}
s = smtplib.SMTP('127.0.0.1', port, local_hostname='py.test')
out['ehlo'] = s.ehlo()[0]
out['local'] = s.sendmail('carol@mail.test', ['bob@mail.test'], 'Subject: from smtplib\\r\\n\\r\\nhello from python\\r\\n')
try:
    s.sendmail('carol@mail.test', ['x@remote.test'], 'Subject: relay\\r\\n\\r\\nno\\r\\n')
    out['relay'] = 'accepted'
except smtplib.SMTPRecipientsRefused as e:
    out['relay'] = [e.recipients['x@remote.test'][0], e.recipients['x@remote.test'][1].decode()]
s.quit()
s = smtplib.SMTP('127.0.0.1', sub, local_hostname='py.test')
s.ehlo()
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
out['starttls'] = s.starttls(context=ctx)[0]
s.ehlo()
out['auth_offered'] = s.has_extn('auth')
out['login'] = s.login('alice', 's3cret')[0]
out['relayed'] = s.sendmail('alice@mail.test', ['friend@remote.test'], 'Subject: relayed by python\\r\\n\\r\\nafter auth\\r\\n')
out['cipher'] = s.sock.version()
s.quit()
print(json.dumps(out))
`;

describe('Python smtplib', { skip: !has('python3') && 'python3 is not installed' }, () => {
  test('local delivery, relay refused, STARTTLS + AUTH then relay', async () => {
    const r = spawnSync('python3', ['-c', PYTHON, String(smtpPort), String(submissionPort)], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.ehlo, 250);
    assert.deepEqual(out.local, {});
    assert.deepEqual(out.relay, [550, '5.7.1 <x@remote.test>... Relaying denied']);
    assert.equal(out.starttls, 220);
    assert.equal(out.auth_offered, true);
    assert.equal(out.login, 235);
    assert.deepEqual(out.relayed, {});
    assert.match(out.cipher, /^TLSv1\.[23]$/);
    await waitForMessage('bob', 'from smtplib');
    const msg = splitMbox(sb.readMbox('bob')).find((m) => m.includes('from smtplib')) as string;
    assert.match(msg, /\nReceived: from py\.test \(localhost \[127\.0\.0\.1\]\)\n\tby mail\.test \(mailtk 0\.1\.0\) with ESMTP id \w{14}\n\tfor <bob@mail\.test>;/);
    await waitFor(() => mailq().includes('<friend@remote.test>'), 15_000, 'the relayed message in the queue');
  });
});

describe('swaks', { skip: !has('swaks') && 'swaks is not installed' }, () => {
  const swaks = (args: string[]) => spawnSync('swaks', ['--helo', 'swaks.test', ...args], { encoding: 'utf8', timeout: 60_000 });

  test('local delivery lands', async () => {
    const r = swaks(['--server', `127.0.0.1:${smtpPort}`, '--from', 'carol@mail.test', '--to', 'bob@mail.test', '--header', 'Subject: from swaks', '--body', 'hi']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<-  250 2\.0\.0 \w{14} Message accepted for delivery/);
    await waitForMessage('bob', 'from swaks');
  });

  test('relay from outside relay_networks: 550 5.7.1', () => {
    const r = swaks(['--server', `127.0.0.1:${smtpPort}`, '--from', 'carol@mail.test', '--to', 'x@remote.test']);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /<\*\* 550 5\.7\.1 <x@remote\.test>\.\.\. Relaying denied/);
  });

  test('STARTTLS and AUTH PLAIN, then relaying is allowed', async () => {
    const r = swaks(['--server', `127.0.0.1:${submissionPort}`, '-tls', '--auth', 'PLAIN', '--auth-user', 'alice', '--auth-password', 's3cret',
      '--from', 'alice@mail.test', '--to', 'pal@remote.test', '--header', 'Subject: relayed by swaks']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<~  235 2\.7\.0 Authentication successful/);
    assert.match(r.stdout, /=== TLS started with cipher TLSv1\.[23]/);
    await waitFor(() => mailq().includes('<pal@remote.test>'), 15_000, 'the relayed message in the queue');
  });

  test('AUTH LOGIN with a wrong password: 535 5.7.8', () => {
    const r = swaks(['--server', `127.0.0.1:${submissionPort}`, '-tls', '--auth', 'LOGIN', '--auth-user', 'alice', '--auth-password', 'wrong',
      '--from', 'alice@mail.test', '--to', 'pal@remote.test']);
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /<~\* 535 5\.7\.8 Authentication credentials invalid/);
  });

  test("swaks --pipe 'sendmail -bs': a session over stdin/stdout, delivered", async () => {
    const r = swaks(['--pipe', `${path.join(BIN, 'sendmail')} -C ${sb.conf} -bs`, '--from', 'carol@mail.test', '--to', 'alice@mail.test',
      '--header', 'Subject: over a pipe']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /<-  220 mail\.test ESMTP mailtk 0\.1\.0; /);
    assert.match(r.stdout, /<-  221 2\.0\.0 mail\.test closing connection/);
    await waitForMessage('alice', 'over a pipe');
    const msg = splitMbox(sb.readMbox('alice')).find((m) => m.includes('over a pipe')) as string;
    assert.match(msg, new RegExp(`\\nReceived: from swaks\\.test \\(${os.userInfo().username}@localhost\\)\\n\\tby mail\\.test \\(mailtk 0\\.1\\.0\\) with ESMTP id `));
  });
});

describe('the daemon', () => {
  test('SIGTERM: listeners close, the daemon exits 0, queued mail stays queued', async () => {
    const queuedBefore = mailq();
    const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
    daemon.kill('SIGTERM');
    assert.equal(await exited, 0);
    assert.equal(mailq(), queuedBefore);
  });
});
