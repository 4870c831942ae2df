// mail against the Debian peers: mail that Postfix's local(8) delivered (to the
// benchmark user `bench`, whose mailbox we only read, copying the message out
// into the sandbox), a folder that s-nail rewrote (its Status:/X-Status:) and
// one s-nail saved to, all read by mailtk's mail; and a folder mailtk's mail
// rewrote, read by s-nail (-R: read-only). Skips with a reason when a peer is
// missing (test/install-deps.sh installs s-nail; peers/setup-postfix.sh Postfix).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const noSnail = !has('s-nail') && 's-nail is not installed (test/install-deps.sh installs it)';
const postfixUp = has('postconf') && fs.existsSync('/var/spool/postfix/pid/master.pid') && spawnSync('id', ['bench']).status === 0;
const noPostfix = !postfixUp && 'Postfix is not running with user bench (bash test/peers/setup-postfix.sh)';

let sb: Sandbox;
before(() => {
  sb = makeSandbox({ users: ['alice'] });
});
after(() => sb.cleanup());

const home = () => sb.users.alice.home;
const mail = (args: string[], input = '') => run(sb, 'mail', args, input, { HOME: home(), COLUMNS: '200' });
const snail = (args: string[], input = '') =>
  spawnSync('s-nail', ['-n', ...args], { input, encoding: 'utf8', env: { ...process.env, HOME: home(), MAIL: '/dev/null', LC_ALL: 'C.UTF-8' } });

const THREE = [1, 2, 3]
  .map((i) => `From peer${i}@example.org Mon Jan  1 0${i}:00:00 2024\nFrom: Peer ${i} <peer${i}@example.org>\nSubject: note ${i}\n\nline ${i}\n>From quoted ${i}\n\n`)
  .join('');

test('mail delivered by Postfix local(8) reads correctly', { skip: noPostfix }, async () => {
  const token = `mailtk-interop-${process.pid}-${Date.now()}`;
  const body = `Postfix line\nFrom the body\n${token}\n`;
  const gb = '=D3=CA=BC=FE=CF=B5=CD=B3';
  const msg = `From: Post Fix <pf@example.org>\nSubject: ${token}\nMIME-Version: 1.0\nContent-Type: text/plain; charset=gb2312\nContent-Transfer-Encoding: quoted-printable\n\n${body}${gb}\n`;
  const r = spawnSync('/usr/sbin/sendmail', ['-i', '-f', 'pf@example.org', 'bench'], { input: msg });
  assert.equal(r.status, 0, String(r.stderr));
  const spool = '/var/mail/bench';
  let copy = '';
  await waitFor(() => {
    const text = fs.existsSync(spool) ? fs.readFileSync(spool, 'latin1') : '';
    copy = splitMbox(text).find((m) => m.includes(`Subject: ${token}\n`)) ?? '';
    return copy !== '';
  }, 30_000, 'Postfix to deliver');
  const folder = path.join(sb.dir, 'postfix.mbox');
  fs.writeFileSync(folder, Buffer.from(copy, 'latin1'));
  assert.match(copy, /\n>From the body\n/, 'Postfix quoted the From line');
  const h = mail(['-H', '-f', folder]);
  assert.match(h.stdout, new RegExp(`^>N  1 pf@example\\.org .* ${token}\\n$`));
  const p = mail(['-f', folder], 'p 1\nx\n');
  assert.match(p.stdout, /\nPostfix line\nFrom the body\n/);
  assert.match(p.stdout, /\n邮件系统\n/);
});

test('a folder s-nail rewrote and one it saved to read correctly, flags included', { skip: noSnail }, () => {
  const folder = path.join(sb.dir, 'snail.mbox');
  const saved = path.join(sb.dir, 'snail-saved.mbox');
  fs.writeFileSync(folder, THREE);
  const r = snail(['-#', '-f', folder], `type 2\nflag 3\ncopy 1 ${saved}\nquit\n`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(fs.readFileSync(folder, 'utf8'), /X-Status: F/);
  const h = mail(['-H', '-f', folder]);
  assert.equal(h.status, 0, h.stderr);
  // s-nail's copy marked 1 read, type read 2, flag left 3 unread: the first unread is current.
  assert.match(h.stdout, /^ O  1 peer1@example\.org .* note 1\n O  2 peer2@example\.org .* note 2\n>F  3 peer3@example\.org .* note 3\n$/);
  const p = mail(['-f', folder], 'p 3\nx\n');
  assert.match(p.stdout, /\nline 3\nFrom quoted 3\n/);
  const s = mail(['-f', saved], 'p 1\nx\n');
  assert.match(s.stdout, /Subject: note 1\n\nline 1\nFrom quoted 1\n/);
});

test('a folder mailtk rewrote reads correctly in s-nail', { skip: noSnail }, () => {
  const folder = path.join(sb.dir, 'mailtk.mbox');
  fs.writeFileSync(folder, THREE);
  const r = mail(['-f', folder], 'p 1\nd 2\nflag 3\nq\n');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /complete\n/);
  const h = snail(['-R', '-H', '-f', folder]);
  assert.equal(h.status, 0, h.stderr);
  const lines = h.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 2, h.stdout);
  assert.match(lines[0], /O\s+1 peer1@example\.org .*note 1/);
  assert.match(lines[1], /F\s+2 peer3@example\.org .*note 3/);
  const p = snail(['-R', '-#', '-f', folder], 'type 2\nx\n');
  assert.match(p.stdout, /Subject: note 3\n[\s\S]*\nline 3\n>From quoted 3\n/);
  assert.doesNotMatch(p.stdout, /note 2/);
});
