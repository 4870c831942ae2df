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
import { fanOut } from '../src/lists/handle.ts';
import { readSettings } from '../src/lists/store.ts';
import { findEntry, listQueueIds, remove, steps } from '../src/queue/index.ts';
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
    assert.match(fs.readFileSync(path.join(sb.dir, 'spool/lists', `dev@${H}`, 'bounces'), 'utf8'), /^ghost@mail\.test 3 \d{13}\n$/);
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

  test('a moderated post is held until the owner approves it by mail', async () => {
    await createList(config(), `mod@${H}`, { owners: [`carol@${H}`], policy: 'moderated' });
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
      // A VERP bounce address is a list address too (taken at RCPT; nothing sent here).
      const verp = spawnSync('swaks', ['--server', `127.0.0.1:${d.ports.smtp}`, '--from', '<>', '--to', `mod-bounces+bob=mail.test@${H}`, '--quit-after', 'RCPT'], { encoding: 'utf8', timeout: 30_000 });
      assert.match(verp.stdout, /<-  250 2\.1\.5 <mod-bounces\+bob=mail\.test@mail\.test>\.\.\. Recipient ok/, verp.stdout);
      assert.match(swaks(`mod-bounces+not-an-address@${H}`).stdout, /550 5\.1\.1/);
    } finally {
      await d.stop();
    }
  });
});

describe('VERP, stale bounce counts and expiry', () => {
  const dir = (list: string, ...rest: string[]) => path.join(sb.dir, 'spool/lists', `${list}@${H}`, ...rest);
  const bounces = (list: string) => fs.readFileSync(dir(list, 'bounces'), 'utf8');
  const DAY = 86_400_000;

  test('VERP: a full queue part-way through the members takes back what it queued; the retry queues each member once', async () => {
    assert.equal(run(sb, 'mailtk', ['list', 'create', `full@${H}`, '--owner', `carol@${H}`, '--policy', 'anyone', '--verp']).status, 0);
    const members = Array.from({ length: 40 }, (_, k) => `m${k}@far.test`);
    assert.equal(run(sb, 'mailtk', ['list', 'add', `full@${H}`, ...members]).status, 0);
    const c = config();
    const before = new Set(listQueueIds(c));
    const fresh = () => listQueueIds(c).filter((id) => !before.has(id));
    const post = Buffer.from(`From: alice@${H}\nTo: full@${H}\nSubject: full queue\n\nhi\n`);
    let written = 0;
    // The 12th entry's write fails as a full disk makes it fail (before its commit).
    steps.at = (s) => {
      if (s === 'enqueue' && ++written === 12) throw Object.assign(new Error('no space left on device (test)'), { code: 'ENOSPC' });
    };
    try {
      await assert.rejects(fanOut(c, readSettings(c, `full@${H}`), post, 0), /no space left on device \(test\)/);
    } finally {
      steps.at = undefined;
    }
    assert.deepEqual(fresh(), [], 'no member entry is left behind');
    assert.match(fs.readFileSync(sb.log, 'utf8'), /list full@mail\.test: post fan-out failed after (\d+) of 40 VERP entries \(.*no space left on device \(test\)\); took back \1\n/);
    const retry = await fanOut(c, readSettings(c, `full@${H}`), post, 0);
    const ids = fresh();
    assert.equal(ids.length, 40, JSON.stringify(retry));
    const senders = ids.map((id) => findEntry(c, id)!.entry!.control.sender).sort();
    assert.deepEqual(senders, members.map((m) => `full-bounces+${m.replace('@', '=')}@${H}`).sort(), 'one entry a member');
    for (const id of ids) remove(c, id);
  });

  test("VERP: each member's copy names the member; a bounce of any shape counts for that member", () => {
    const made = run(sb, 'mailtk', ['list', 'create', `verp@${H}`, '--owner', `carol@${H}`, '--policy', 'anyone', '--verp']);
    assert.equal(made.status, 0, made.stderr);
    assert.match(run(sb, 'mailtk', ['list', 'show', `verp@${H}`]).stdout, /^verp: +yes \(from verp-bounces\+MEMBER=DOMAIN@mail\.test\)$/m);
    assert.equal(run(sb, 'mailtk', ['list', 'add', `verp@${H}`, `bob@${H}`, `dave@${H}`, `phantom@${H}`]).status, 0);
    const bob = messagesOf('bob').length;
    send(`alice@${H}`, `verp@${H}`, 'verp post 1');
    const got = messagesOf('bob').slice(bob);
    assert.equal(got.length, 1);
    assert.match(got[0], /\nReturn-Path: <verp-bounces\+bob=mail\.test@mail\.test>\n/);
    assert.ok(messagesOf('dave').some((m) => /\nReturn-Path: <verp-bounces\+dave=mail\.test@mail\.test>\n/.test(m) && /\nSubject: verp post 1\n/.test(m)), fs.readFileSync(sb.log, 'utf8').split('\n').slice(-40).join('\n'));
    assert.match(fs.readFileSync(sb.log, 'utf8'), /list verp@mail\.test \(post\): post sent to 3 members as 3 entries \(VERP\)/);
    // phantom's copy bounced (mailtk's own DSN, to phantom's VERP address): counted.
    assert.match(bounces('verp'), /^phantom@mail\.test 1 \d+$/m);
    // A bounce that is no DSN at all (qmail's text), to the VERP address, names phantom all the same.
    const qmail = `Hi. This is the qmail-send program at far.test.\nI'm afraid I wasn't able to deliver your message.\n\n<phantom@mail.test>:\nSorry, no mailbox here by that name.\n`;
    send('<>', `verp-bounces+phantom=mail.test@${H}`, 'failure notice', qmail, `From: MAILER-DAEMON@far.test\n`);
    assert.match(bounces('verp'), /^phantom@mail\.test 2 \d+$/m);
    // An auto-reply (RFC 3834) to bob's VERP address is not a bounce.
    send('<>', `verp-bounces+bob=mail.test@${H}`, 'Away', 'I am away', `From: bob@${H}\nAuto-Submitted: auto-replied\n`);
    assert.doesNotMatch(bounces('verp'), /^bob@/m);
    // The third bounce disables phantom and tells the owner.
    const carol = messagesOf('carol').length;
    send('<>', `verp-bounces+phantom=mail.test@${H}`, 'failure notice', qmail, `From: MAILER-DAEMON@far.test\n`);
    assert.match(listMembers(config(), `verp@${H}`), /^phantom@mail\.test \(disabled\)$/m);
    assert.match(messagesOf('carol').slice(carol).join(''), /Subject: verp@mail\.test: phantom@mail\.test disabled after 3 bounces/);
    // VERP off again: one entry for everyone, from verp-bounces.
    assert.equal(run(sb, 'mailtk', ['list', 'set', `verp@${H}`, '--no-verp']).status, 0);
    send(`alice@${H}`, `verp@${H}`, 'plain post');
    assert.match(last('bob'), /\nReturn-Path: <verp-bounces@mail\.test>\n/);
    assert.match(fs.readFileSync(sb.log, 'utf8'), /list verp@mail\.test \(post\): post sent to 2 members as [0-9A-Za-z]+\n/);
  });

  test('a bounce count with no bounce for list_bounce_stale_after starts again', () => {
    assert.equal(run(sb, 'mailtk', ['list', 'add', `verp@${H}`, `ghost2@${H}`]).status, 0);
    send(`alice@${H}`, `verp@${H}`, 'stale 1');
    send(`alice@${H}`, `verp@${H}`, 'stale 2');
    assert.match(bounces('verp'), /^ghost2@mail\.test 2 \d+$/m);
    // Backdate the last bounce by eight days (the default is 7d): the next bounce counts as the first.
    const backdate = (days: number) =>
      fs.writeFileSync(dir('verp', 'bounces'), bounces('verp').replace(/^(ghost2@mail\.test \d+) (\d+)$/m, (_, a, t) => `${a} ${Number(t) - days * DAY}`));
    backdate(8);
    send(`alice@${H}`, `verp@${H}`, 'stale 3');
    assert.match(bounces('verp'), /^ghost2@mail\.test 1 \d+$/m);
    assert.doesNotMatch(listMembers(config(), `verp@${H}`), /ghost2@mail\.test \(disabled\)/);
    // The runner's periodic work forgets a stale count; a disabled member's count stays.
    backdate(8);
    assert.equal(run(sb, 'sendmail', ['-q']).status, 0);
    assert.doesNotMatch(bounces('verp'), /^ghost2@/m);
    assert.match(bounces('verp'), /^phantom@mail\.test 3 /m);
    assert.match(fs.readFileSync(sb.log, 'utf8'), /list verp@mail\.test: bounce count of ghost2@mail\.test forgotten \(no bounce for 1w\)/);
  });

  test('an unconfirmed request expires after list_pending_expire; a fresh one stays', () => {
    const before = new Set(fs.readdirSync(dir('dev', 'pending')));
    send(`bob@${H}`, `dev-request@${H}`, 'subscribe');
    const confirm = replyTo(last('bob'));
    send(`alice@${H}`, `dev-request@${H}`, 'subscribe');
    const fresh = replyTo(last('alice'));
    const token = /\+([0-9a-f]{32})@/.exec(confirm)![1];
    assert.ok(!before.has(token) && fs.existsSync(dir('dev', 'pending', token)));
    // Backdate bob's request by four days (the default is 3d), then a queue run.
    const file = dir('dev', 'pending', token);
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace(/ (\d+)\n$/, (_, t) => ` ${Number(t) - 4 * DAY}\n`));
    assert.equal(run(sb, 'sendmail', ['-q']).status, 0);
    assert.ok(!fs.existsSync(file), 'removed by the run');
    assert.match(fs.readFileSync(sb.log, 'utf8'), new RegExp(`list dev@mail\\.test: confirmation ${token} expired \\(subscribe bob@mail\\.test\\)`));
    send(`bob@${H}`, confirm, 'Re: confirm');
    assert.doesNotMatch(listMembers(config(), `dev@${H}`), /bob@/);
    assert.match(last('bob'), /No pending request [0-9a-f]{32} for dev@mail\.test \(expired or used\)/);
    send(`alice@${H}`, fresh, 'Re: confirm');
    assert.match(listMembers(config(), `dev@${H}`), /alice@mail\.test/);
  });

  test('a held post nobody approved within list_held_expire is discarded and its poster told', () => {
    const held = () => new Set(fs.readdirSync(dir('mod', 'held')).filter((f) => /^[0-9a-f]{32}$/.test(f)));
    const before = held();
    send(`alice@${H}`, `mod@${H}`, 'never approved');
    const token = [...held()].find((t) => !before.has(t))!;
    assert.ok(token, 'held');
    send(`dave@${H}`, `mod@${H}`, 'approved later');
    const later = [...held()].find((t) => t !== token && !before.has(t))!;
    const old = (Date.now() - 15 * DAY) / 1000;
    fs.utimesSync(dir('mod', 'held', token), old, old);
    const alice = messagesOf('alice').length;
    assert.equal(run(sb, 'sendmail', ['-q']).status, 0);
    assert.ok(!held().has(token), 'the expired post is gone');
    assert.ok(held().has(later), 'the fresh one waits');
    const told = messagesOf('alice').slice(alice);
    assert.equal(told.length, 1, told.join('\n---\n'));
    assert.match(told[0], /\nSubject: mod@mail\.test: your post was not approved\n/);
    assert.match(told[0], /within 2w\. It has been discarded\./);
    assert.match(told[0], /Subject: never approved/);
    // Its approval address no longer does anything.
    const bob = messagesOf('bob').length;
    send(`carol@${H}`, `mod-approve+${token}@${H}`, 'approve');
    assert.equal(messagesOf('bob').length, bob);
  });
});
