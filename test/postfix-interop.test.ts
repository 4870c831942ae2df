// Postfix and mailtk on one machine, both on loopback: Postfix (from Debian,
// set up by test/peers/setup-postfix.sh: local delivery only, no DNS)
// relays a message into mailtk's daemon through a transport map entry this
// test adds and removes again, and mailtk delivers one to Postfix through its
// own transport_map. Skips with a reason when Postfix is not installed.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';

const POSTFIX_PORT = 2525;
const POSTFIX_MBOX = '/var/spool/mail/bench';
const postconf = (args: string[]) => spawnSync('postconf', args, { encoding: 'utf8' });
const postfixUp = () =>
  process.geteuid?.() === 0 &&
  postconf(['-h', 'mail_version']).status === 0 &&
  spawnSync('sh', ['-c', `ss -ltn 'sport = :${POSTFIX_PORT}' | grep -q LISTEN`]).status === 0;
const skip = postfixUp() ? false : 'Postfix is not running on 127.0.0.1:2525 (bash test/peers/setup-postfix.sh)';

let sb: Sandbox;
let daemon: ChildProcess;
let port = 0;
let savedTransport = '';

before(async () => {
  if (skip) return;
  sb = makeSandbox({ users: ['alice', 'bob'], hostname: 'mt.test' });
  fs.writeFileSync(path.join(sb.dir, 'etc/mailertable'), `vm.localdomain smtp:[127.0.0.1]:${POSTFIX_PORT}\n`);
  fs.appendFileSync(sb.conf, [`transport_map = ${sb.dir}/etc/mailertable`, 'delivery_mode = background', ''].join('\n'));
  daemon = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD'], { env: sb.env, stdio: 'ignore' });
  await waitFor(() => {
    const log = fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '';
    port = Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0);
    return port > 0;
  }, 15_000, 'the daemon to listen');
  savedTransport = postconf(['-h', 'transport_maps']).stdout.trim();
  postconf(['-e', `transport_maps = inline:{ mt.test=smtp:[127.0.0.1]:${port} }`]);
  spawnSync('postfix', ['reload'], { stdio: 'ignore' });
});

after(async () => {
  if (skip) return;
  postconf(['-e', `transport_maps = ${savedTransport}`]);
  spawnSync('postfix', ['reload'], { stdio: 'ignore' });
  if (daemon.exitCode === null) {
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
  }
  sb.cleanup();
});

test('Postfix relays a message into mailtk', { skip }, async () => {
  const subject = `from postfix ${process.pid}`;
  const r = spawnSync('/usr/sbin/sendmail', ['-i', '-f', 'bench@vm.localdomain', 'bob@mt.test'], { input: `Subject: ${subject}\n\nvia postfix\n` });
  assert.equal(r.status, 0, String(r.stderr));
  await waitFor(() => sb.readMbox('bob').includes(`Subject: ${subject}\n`), 30_000, 'the relayed message in bob\'s mbox');
  const m = splitMbox(sb.readMbox('bob')).find((x) => x.includes(subject))!;
  assert.match(m, /^From bench@vm\.localdomain /);
  assert.match(m, /\nReceived: from [^\n]*\n\tby mt\.test \(mailtk/);
  assert.match(m, /\n\nvia postfix\n/);
});

test('mailtk delivers a message to Postfix', { skip }, async () => {
  const subject = `from mailtk ${process.pid}`;
  const r = run(sb, 'sendmail', ['-i', '-f', 'alice@mt.test', 'bench@vm.localdomain'], `Subject: ${subject}\n\nvia mailtk\n`);
  assert.equal(r.status, 0, r.stderr);
  await waitFor(() => fs.existsSync(POSTFIX_MBOX) && fs.readFileSync(POSTFIX_MBOX, 'utf8').includes(`Subject: ${subject}\n`), 30_000, 'the message in Postfix\'s mbox');
  const log = fs.readFileSync(sb.log, 'utf8');
  assert.match(log, /to=<bench@vm\.localdomain>, .*mailer=esmtp, relay=\[127\.0\.0\.1\].*stat=Sent/);
});
