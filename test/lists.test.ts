// Mailing lists through the real binaries (sendmail -odi, delivery_mode =
// interactive, so each submission's deliveries and everything they queue are
// done when it exits): subscribe by mail with its confirmation, a post to
// every member once with the List-* fields, unsubscribe by mail and by the
// one-click address, a member disabled after three bounces with the owner
// told, a moderated post held until the owner approves it by mail, and the
// list's own post coming back dropped.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { changeMembers, createList, listMembers, showList } from '../src/admin/lists.ts';
import { commandsOf, failedRecipients } from '../src/lists/index.ts';
import { type Sandbox, makeSandbox, run, splitMbox, startDaemon, waitFor } from './helpers.ts';

let sb: Sandbox;
const H = 'mail.test';
before(() => {
  sb = makeSandbox({ users: ['alice', 'bob', 'carol', 'dave'], extraConf: 'delivery_mode = interactive' });
  fs.appendFileSync(sb.conf, `list_dir = ${sb.dir}/spool/lists\n`);
});
after(() => sb.cleanup());

const config = () => loadConfig({ file: sb.conf });
const messagesOf = (u: string) => splitMbox(sb.readMbox(u));
const last = (u: string) => messagesOf(u).at(-1) ?? '';

function send(from: string, to: string, subject: string, body = '', extra = ''): void {
  const text = `From: ${from}\nTo: ${to}\nSubject: ${subject}\n${extra}\n${body}\n`;
  const r = run(sb, 'sendmail', ['-odi', '-i', '-f', from, to], text);
  assert.equal(r.status, 0, r.stderr);
}

function replyTo(message: string): string {
  const m = /\nReply-To: (\S+)\n/.exec(message);
  assert.ok(m, `no Reply-To in:\n${message}`);
  return m[1];
}

describe('mailing lists', () => {
  test('pure parts: commands and DSN recipients', () => {
    assert.deepEqual(commandsOf(Buffer.from('Subject: Re: subscribe\n\n')), [['subscribe']]);
    assert.deepEqual(commandsOf(Buffer.from('Subject: hi\n\nadd x@y.z\nremove a@b.c\n--\nunsubscribe\n')), [['add', 'x@y.z'], ['remove', 'a@b.c']]);
    const dsn = 'Content-Type: message/delivery-status\n\nReporting-MTA: dns; h\n\nFinal-Recipient: rfc822; Ghost@Mail.Test\nAction: failed\nStatus: 5.1.1\n\nFinal-Recipient: rfc822; ok@h\nAction: delayed\n';
    assert.deepEqual(failedRecipients(Buffer.from(dsn)), ['ghost@mail.test']);
  });

  test('subscribe by mail: a confirmation, and the reply to it subscribes', () => {
    const made = run(sb, 'mailtk', ['list', 'create', `dev@${H}`, '--owner', `carol@${H}`, '--description', 'Developers', '--archive']);
    assert.equal(made.status, 0, made.stderr);
    assert.equal(made.stdout, `created dev@${H}\n`);
    send(`alice@${H}`, `dev-request@${H}`, 'subscribe');
    const confirmation = last('alice');
    assert.match(confirmation, /\nSubject: dev@mail\.test: confirm subscribe [0-9a-f]{32}\n/);
    const confirm = replyTo(confirmation);
    assert.match(confirm, /^dev-confirm\+[0-9a-f]{32}@mail\.test$/);
    assert.equal(listMembers(config(), `dev@${H}`), '', 'nobody is subscribed before the reply');
    send(`alice@${H}`, confirm, `Re: confirm`);
    assert.match(last('alice'), /\nSubject: Welcome to dev@mail\.test\n/);
    assert.equal(listMembers(config(), `dev@${H}`), `alice@${H}\n`);
    // The token is used up.
    send(`bob@${H}`, confirm, 'again');
    assert.equal(listMembers(config(), `dev@${H}`), `alice@${H}\n`);
    send(`bob@${H}`, `dev-request@${H}`, 'hello', 'subscribe');
    send(`bob@${H}`, replyTo(last('bob')), 'Re: confirm');
    assert.equal(listMembers(config(), `dev@${H}`), `alice@${H}\nbob@${H}\n`);
  });

  test('a post reaches every member once with the List-* fields; the owner adds by mail; non-members are held', () => {
    send(`carol@${H}`, `dev-request@${H}`, 'owner commands', `add dave@${H}`);
    assert.match(listMembers(config(), `dev@${H}`), /dave@mail\.test/);
    const before = { alice: messagesOf('alice').length, bob: messagesOf('bob').length, dave: messagesOf('dave').length };
    send(`alice@${H}`, `dev@${H}`, 'first post', 'hello list');
    for (const u of ['alice', 'bob', 'dave'] as const) {
      const got = messagesOf(u).slice(before[u]);
      assert.equal(got.length, 1, `${u} got ${got.length} copies`);
      const m = got[0];
      assert.match(m, /^From dev-bounces@mail\.test /);
      assert.match(m, /\nList-Id: Developers <dev\.mail\.test>\n/);
      assert.match(m, /\nList-Post: <mailto:dev@mail\.test>\n/);
      assert.match(m, /\nList-Help: <mailto:dev-request@mail\.test\?subject=help>\n/);
      assert.match(m, /\nList-Subscribe: <mailto:dev-request@mail\.test\?subject=subscribe>\n/);
      assert.match(m, /\nList-Unsubscribe: <mailto:dev-request@mail\.test\?subject=unsubscribe>\n/);
      assert.match(m, /\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\n/);
      assert.match(m, /\nX-Loop: dev@mail\.test\n/);
      assert.match(m, /\nSubject: first post\n/);
    }
    // The archive is an mbox `mail -f` reads.
    const archive = path.join(sb.dir, 'spool/lists', `dev@${H}`, 'archive');
    const r = run(sb, 'mail', ['-H', '-f', archive], '');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /first post/);
    // A non-member's post waits for the owner.
    const carol = messagesOf('carol').length;
    send(`carol@${H}`, `dev@${H}`, 'from outside');
    assert.equal(messagesOf('alice').length, before.alice + 1);
    assert.match(messagesOf('carol').slice(carol).join(''), /post from carol@mail\.test held for approval/);
  });

  test('the list drops its own post coming back', () => {
    const n = messagesOf('bob').length;
    send(`alice@${H}`, `dev@${H}`, 'looped', 'x', `X-Loop: dev@${H}\n`);
    send(`alice@${H}`, `dev@${H}`, 'looped 2', 'x', `List-Id: <dev.${H}>\n`);
    assert.equal(messagesOf('bob').length, n);
    assert.match(fs.readFileSync(sb.log, 'utf8'), /own post come back/);
  });

  test('a member whose address bounces three times is disabled and the owner told', async () => {
    await changeMembers(config(), `dev@${H}`, 'add', [`ghost@${H}`]);
    const carol = messagesOf('carol').length;
    for (let i = 1; i <= 3; i++) send(`alice@${H}`, `dev@${H}`, `post ${i}`);
    assert.match(listMembers(config(), `dev@${H}`), /ghost@mail\.test \(disabled\)/);
    const told = messagesOf('carol').slice(carol).join('');
    assert.match(told, /Subject: dev@mail\.test: ghost@mail\.test disabled after 3 bounces/);
    // Disabled: the next post does not go to it (no further bounce).
    send(`alice@${H}`, `dev@${H}`, 'post 4');
    assert.equal(fs.readFileSync(path.join(sb.dir, 'spool/lists', `dev@${H}`, 'bounces'), 'utf8'), `ghost@${H} 3\n`);
    assert.match(showList(config(), `dev@${H}`), /1 disabled/);
    assert.match(run(sb, 'mailtk', ['list', 'members', `dev@${H}`]).stdout, /^ghost@mail\.test \(disabled\)$/m);
  });

  test('unsubscribe by mail (confirmed) and by the one-click address', () => {
    send(`bob@${H}`, `dev-request@${H}`, 'unsubscribe');
    assert.match(listMembers(config(), `dev@${H}`), /bob@/, 'not before the confirmation');
    send(`bob@${H}`, replyTo(last('bob')), 'Re: confirm');
    assert.doesNotMatch(listMembers(config(), `dev@${H}`), /bob@/);
    send(`bob@${H}`, `dev-request@${H}`, 'unsubscribe');
    assert.match(last('bob'), /bob@mail\.test is not a member of dev@mail\.test; nothing to change/);
    // alice's welcome names her one-click address (RFC 8058's POST, by mail): no confirmation.
    const welcome = messagesOf('alice').find((m) => /Subject: Welcome to dev@/.test(m))!;
    const oneClick = /(dev-unsubscribe\+[0-9a-f]{32}@mail\.test)/.exec(welcome)![1];
    send(`dave@${H}`, oneClick, 'unsubscribe');
    assert.doesNotMatch(listMembers(config(), `dev@${H}`), /alice@/);
    assert.match(last('alice'), /alice@mail\.test has left dev@mail\.test/);
  });

  test('a moderated post is held until the owner approves it by mail', () => {
    createList(config(), `mod@${H}`, { owners: [`carol@${H}`], policy: 'moderated' });
    send(`carol@${H}`, `mod-request@${H}`, 'add', `add bob@${H}`);
    const bob = messagesOf('bob').length;
    send(`alice@${H}`, `mod@${H}`, 'moderated post', 'please');
    assert.equal(messagesOf('bob').length, bob, 'held, not sent');
    const held = last('carol');
    assert.match(held, /held for approval/);
    const approve = replyTo(held);
    assert.match(approve, /^mod-approve\+[0-9a-f]{32}@mail\.test$/);
    // Only an owner may approve.
    send(`dave@${H}`, approve, 'approve');
    assert.equal(messagesOf('bob').length, bob);
    send(`carol@${H}`, approve, 'Re: approve');
    assert.equal(messagesOf('bob').length, bob + 1);
    assert.match(last('bob'), /\nSubject: moderated post\n/);
    assert.match(last('bob'), /\nList-Post: <mailto:mod@mail\.test> \(moderated\)\n/);
  });

  test('over SMTP: the daemon accepts a list address at RCPT and its runner sends the post', async (t) => {
    if (!fs.existsSync('/usr/bin/swaks')) return t.skip('swaks is not installed');
    const d = await startDaemon(sb, ['-bD', '-q1h'], ['smtp']);
    try {
      const bob = messagesOf('bob').length;
      const swaks = (to: string) =>
        spawnSync('swaks', ['--server', `127.0.0.1:${d.ports.smtp}`, '--from', `carol@${H}`, '--to', to, '--header', 'Subject: over smtp', '--body', 'hi'], { encoding: 'utf8', timeout: 30_000 });
      const r = swaks(`mod@${H}`);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /<-  250 2\.1\.5 <mod@mail\.test>\.\.\. Recipient ok/);
      await waitFor(() => messagesOf('carol').some((m) => /post from carol@mail\.test held/.test(m) && /over smtp/.test(m)), 30_000, 'the held notice');
      assert.equal(messagesOf('bob').length, bob);
      const unknown = swaks(`mod-nosuchrole@${H}`);
      assert.match(unknown.stdout, /550 5\.1\.1/);
    } finally {
      await d.stop();
    }
  });
});
