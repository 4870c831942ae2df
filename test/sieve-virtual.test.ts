// Sieve for virtual users (user@domain, src/virtual) through the real
// binaries on loopback: bob@a.test uploads and activates a script with
// Debian's sieve-connect, logging in to ManageSieve as bob@a.test, and
// delivery runs it (fileinto a folder that IMAP, logged in as bob@a.test,
// then lists); the administrator sets carol@a.test's script with `mailtk
// sieve set` (reject by subject: the sender gets the DSN); a script that
// fails at run time, or is damaged on disk, keeps the mail in INBOX and tells
// the user once. Mail goes in with `sendmail -odi`, so each delivery is done
// when it exits; virtual mailboxes are mail_owner's, and so is the script.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, run, splitMbox, startDaemon } from './helpers.ts';
import { ImapClient } from './mailbox/harness.ts';
import { SIEVE_CONNECT_MISSING, sieveConnect } from './sieve-connect.ts';

const CONF = [
  'virtual_domains_file = virtual-domains',
  'virtual_users_file = virtual-users',
  'virtual_alias_file = virtusertable',
  'quota_file = quotas',
  'delivery_mode = interactive',
  'managesieve_listen = 127.0.0.1:0',
].join('\n');

let sb: Sandbox;
let daemon: RunningDaemon | undefined;
let seq = 0;

function mailtk(args: string[], input = ''): string {
  const r = run(sb, 'mailtk', args, input);
  assert.equal(r.status, 0, `mailtk ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const inbox = (user: string) => splitMbox(read(path.join(sb.spool, 'virtual', 'a.test', user)));
const home = (user: string) => path.join(sb.spool, 'virtual', 'a.test', '.home', user);
const folder = (user: string, name: string) => splitMbox(read(path.join(home(user), 'mail', name)));
const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

function send(from: string, to: string, subject: string): void {
  const text = `From: ${from}\nTo: ${to}\nSubject: ${subject}\nMessage-ID: <sv${process.pid}.${++seq}@mail.test>\n\nhello\n`;
  const r = run(sb, 'sendmail', ['-odi', '-i', '-f', from, to], text);
  assert.equal(r.status, 0, r.stderr);
}

before(async () => {
  sb = makeSandbox({ users: ['alice'], extraConf: CONF });
  mailtk(['domain', 'add', 'a.test']);
  mailtk(['user', 'add', 'bob@a.test'], 'pw-bob\n');
  mailtk(['user', 'add', 'carol@a.test'], 'pw-carol\n');
  daemon = await startDaemon(sb, ['-bD', '-q1h'], ['managesieve', 'imap']);
});
after(async () => {
  await daemon?.stop();
  sb?.cleanup();
});

describe('Sieve for virtual users', () => {
  test('bob@a.test uploads a script with sieve-connect; delivery files into a folder IMAP then lists', async (t) => {
    if (SIEVE_CONNECT_MISSING) return t.skip(SIEVE_CONNECT_MISSING);
    const file = path.join(sb.dir, 'bob.sieve');
    fs.writeFileSync(file, 'require ["fileinto"];\nif header :contains "subject" "[dev]" { fileinto "Dev"; }\n');
    const connect = (args: string[]) => sieveConnect(daemon!.ports.managesieve, 'bob@a.test', 'pw-bob', args);
    const up = connect(['--upload', '--localsieve', file, '--remotesieve', 'dev']);
    assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
    const act = connect(['--activate', '--remotesieve', 'dev']);
    assert.equal(act.status, 0, `${act.stdout}\n${act.stderr}`);
    assert.match(connect(['--list']).stdout, /^"dev" ACTIVE$/m);
    // Stored in the virtual user's home, as ManageSieve stores anyone's; the administrator sees it too.
    assert.equal(fs.readlinkSync(path.join(home('bob'), '.sieve')), 'sieve/dev.sieve');
    assert.equal(mailtk(['sieve', 'list', 'bob@a.test']), 'dev (active)\n');
    send('alice@mail.test', 'bob@a.test', '[dev] build broken');
    send('alice@mail.test', 'bob@a.test', 'lunch?');
    assert.equal(folder('bob', 'Dev').length, 1, fs.readFileSync(sb.log, 'utf8'));
    assert.match(folder('bob', 'Dev')[0], /\nSubject: \[dev\] build broken\n/);
    assert.equal(inbox('bob').length, 1);
    assert.match(inbox('bob')[0], /\nSubject: lunch\?\n/);
    const c = await ImapClient.login(daemon!.ports.imap, 'bob@a.test', 'pw-bob');
    const list = await c.ok('LIST "" "*"');
    assert.ok(list.untagged.some((l) => /"Dev"|\sDev$/.test(l)), list.untagged.join('\n'));
    assert.equal(await c.messages('Dev'), 1);
    await c.logout();
  });

  test('the administrator sets carol@a.test\'s script: reject by subject reaches the sender', () => {
    // A script that does not compile is refused, and nothing changes.
    const bad = run(sb, 'mailtk', ['sieve', 'set', 'carol@a.test', '-'], 'if header :frob "subject" "x" { discard; }\n');
    assert.equal(bad.status, 64, bad.stderr);
    assert.match(bad.stderr, /stdin: line 1: .*nothing changed/);
    assert.equal(mailtk(['sieve', 'list', 'carol@a.test']), '');
    const script = 'require "reject";\nif header :contains "subject" "buy now" { reject "No adverts, please."; }\n';
    assert.equal(mailtk(['sieve', 'set', 'carol@a.test', '-'], script), 'script "admin" is active for carol@a.test\n');
    assert.equal(mailtk(['sieve', 'show', 'carol@a.test']), script);
    const owner = fs.statSync(path.join(home('carol'), 'sieve', 'admin.sieve'));
    assert.equal(owner.uid, fs.statSync(path.join(sb.spool, 'virtual', 'a.test')).uid, "the script is the virtual mailboxes' owner's");
    if (IS_ROOT) assert.notEqual(owner.uid, 0, 'not written as root');
    send('alice@mail.test', 'carol@a.test', 'BUY NOW cheap');
    send('alice@mail.test', 'carol@a.test', 'a real question');
    assert.equal(inbox('carol').length, 1);
    assert.match(inbox('carol')[0], /\nSubject: a real question\n/);
    const dsn = splitMbox(sb.readMbox('alice'));
    assert.equal(dsn.length, 1, sb.readMbox('alice'));
    assert.match(dsn[0], /5\.7\.1/);
    assert.match(dsn[0], /No adverts, please\./);
    // A system user's script is theirs: the command names virtual users only.
    const sys = run(sb, 'mailtk', ['sieve', 'list', 'alice']);
    assert.equal(sys.status, 64);
    assert.match(sys.stderr, /name a virtual user as user@domain/);
    mailtk(['sieve', 'off', 'carol@a.test']);
    send('alice@mail.test', 'carol@a.test', 'BUY NOW again');
    assert.equal(inbox('carol').length, 2, 'not filtered once off');
  });

  test('a script that fails, or is damaged on disk, keeps the mail in INBOX and tells the user once', () => {
    mailtk(['sieve', 'set', 'carol@a.test', '-', '--name', 'odd'], 'require "fileinto";\nfileinto ".hidden";\n');
    const before = inbox('carol').length;
    send('alice@mail.test', 'carol@a.test', 'kept 1');
    send('alice@mail.test', 'carol@a.test', 'kept 2');
    let now = inbox('carol').slice(before);
    assert.equal(now.length, 3, now.join('\n---\n'));
    assert.equal(now.filter((m) => /\nSubject: Your Sieve script failed/.test(m)).length, 1);
    assert.match(now.join(''), /bad folder name "\.hidden"/);
    // Damaged on disk (not through ManageSieve, which checks): kept again, one more notice.
    const file = path.join(home('carol'), 'sieve', 'odd.sieve');
    fs.appendFileSync(file, 'if {\n');
    send('alice@mail.test', 'carol@a.test', 'kept 3');
    now = inbox('carol').slice(before);
    assert.ok(now.some((m) => /\nSubject: kept 3\n/.test(m)));
    assert.equal(now.filter((m) => /\nSubject: Your Sieve script failed/.test(m)).length, 2);
  });
});
