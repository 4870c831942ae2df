// Sieve at local delivery, through the real binaries in a sandbox: bob's
// ~/.sieve files alice's mail (by sender) into the folder "Alice", which an
// IMAP client then sees on the daemon's loopback port; rejects mail by its
// subject (the sender gets the DSN with the script's reason); and, broken,
// keeps every message in INBOX and tells bob once. Mail is submitted with
// `sendmail -odi`, so the delivery is done before sendmail exits: as root by
// bob's delivery agent (the script runs as bob), otherwise in-process, where
// bob is the test's own uid (a script runs only under its user's identity).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, run, splitMbox, startDaemon } from './helpers.ts';
import { ImapClient, LineClient } from './mailbox/harness.ts';
import { SIEVE_CONNECT_MISSING, sieveConnect } from './sieve-connect.ts';

const PASSWORD = 'Sieve-test-s3cret';
let sb: Sandbox;
let seq = 0;

/** A file of bob's, as he would write it. */
export function putBobs(box: Sandbox, name: string, text: string): void {
  const bob = box.users.bob;
  const file = path.join(bob.home, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o644 });
  if (IS_ROOT) fs.chownSync(file, bob.uid, bob.gid);
}

/** A sandbox where bob is the test's own uid when it is not root. */
export function sieveSandbox(extraConf = ''): Sandbox {
  const box = makeSandbox({ users: ['alice', 'bob', 'carol'], extraConf: `delivery_mode = interactive\n${extraConf}` });
  if (!IS_ROOT) {
    const bob = box.users.bob;
    const passwd = path.join(box.dir, 'etc/passwd');
    const me = `${process.getuid!()}:${process.getgid!()}`;
    fs.writeFileSync(passwd, fs.readFileSync(passwd, 'utf8').replace(`bob:x:${bob.uid}:${bob.gid}:`, `bob:x:${me}:`));
    box.users.bob = { ...bob, uid: process.getuid!(), gid: process.getgid!() };
  }
  return box;
}

function send(box: Sandbox, sender: string, to: string, subject: string): void {
  const text = `From: ${sender}\nTo: ${to}@mail.test\nSubject: ${subject}\nMessage-ID: <sieve${process.pid}.${++seq}@mail.test>\n\nhello ${to}\n`;
  const r = run(box, 'sendmail', ['-odi', '-i', '-f', sender, to], text);
  assert.equal(r.status, 0, r.stderr);
}

const inbox = (u: string) => splitMbox(sb.readMbox(u));
const folder = (name: string) => {
  try {
    return splitMbox(fs.readFileSync(path.join(sb.users.bob.home, 'mail', name), 'utf8'));
  } catch {
    return [];
  }
};

const SCRIPT = `# bob's filter
require ["fileinto", "reject", "imap4flags"];
if address :is "from" "alice@mail.test" {
  fileinto :flags "\\\\Flagged" "Alice";
  stop;
}
if header :contains "subject" "buy now" {
  reject text:
No adverts, please.
.
;
}
`;

before(() => {
  sb = sieveSandbox();
  putBobs(sb, '.sieve', SCRIPT);
});
after(() => sb?.cleanup());

describe('Sieve at delivery', () => {
  test('fileinto by sender: alice\'s mail lands in ~/mail/Alice, flagged, not in INBOX', () => {
    send(sb, 'alice@mail.test', 'bob', 'lunch?');
    send(sb, 'carol@mail.test', 'bob', 'plain note');
    assert.equal(folder('Alice').length, 1, `log:\n${fs.readFileSync(sb.log, 'utf8')}`);
    assert.match(folder('Alice')[0], /\nSubject: lunch\?\n/);
    assert.match(folder('Alice')[0], /\nX-Status: F\n/);
    assert.equal(inbox('bob').length, 1);
    assert.match(inbox('bob')[0], /\nSubject: plain note\n/);
    if (IS_ROOT) assert.equal(fs.statSync(path.join(sb.users.bob.home, 'mail', 'Alice')).uid, sb.users.bob.uid, "the folder is bob's");
  });

  test('reject by subject: carol gets the rejection with the reason, bob nothing', () => {
    send(sb, 'carol@mail.test', 'bob', 'BUY NOW cheap');
    assert.equal(inbox('bob').length, 1, 'nothing new for bob');
    const dsn = inbox('carol');
    assert.equal(dsn.length, 1, `carol's mailbox:\n${sb.readMbox('carol')}\nlog:\n${fs.readFileSync(sb.log, 'utf8')}`);
    assert.match(dsn[0], /No adverts, please\./);
    assert.match(dsn[0], /5\.7\.1/);
    assert.match(fs.readFileSync(sb.log, 'utf8'), /sieve: bob rejected the message/);
  });

  test('the folder is seen over IMAP', async (t) => {
    const p = run(sb, 'mailpasswd', ['bob'], `${PASSWORD}\n`);
    if (p.status !== 0) return t.skip(`mailpasswd: ${p.stderr}`);
    let daemon: RunningDaemon | undefined;
    try {
      daemon = await startDaemon(sb, ['-bD', '-q1h'], ['imap']);
      const c = await ImapClient.login(daemon.ports.imap, 'bob', PASSWORD);
      const list = await c.ok('LIST "" "*"');
      assert.ok(list.untagged.some((l) => /"Alice"|\sAlice$/.test(l)), list.untagged.join('\n'));
      await c.ok('SELECT Alice');
      const f = await c.ok('FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])');
      const text = f.untagged.join('\n');
      assert.match(text, /\\Flagged/);
      assert.match(text, /Subject: lunch\?/);
      await c.logout();
      // imapflow, a real client, finds the folder and the flag too.
      const flow = new ImapFlow({ host: '127.0.0.1', port: daemon.ports.imap, secure: false, auth: { user: 'bob', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false }, clientInfo: { name: 'sieve-test', version: '1' } });
      await flow.connect();
      try {
        assert.ok((await flow.list()).some((m) => m.path === 'Alice'));
        const lock = await flow.getMailboxLock('Alice');
        try {
          const msg = await flow.fetchOne('1', { envelope: true, flags: true });
          assert.equal(msg && msg.envelope?.subject, 'lunch?');
          assert.ok(msg && msg.flags?.has('\\Flagged'));
        } finally {
          lock.release();
        }
      } finally {
        await flow.logout();
      }
    } finally {
      await daemon?.stop();
    }
  });

  test('a broken script keeps every message in INBOX and tells bob once', () => {
    putBobs(sb, '.sieve', 'require "fileinto";\nif header :frob "subject" "x" {\n  fileinto "Never";\n}\n');
    const before = inbox('bob').length;
    send(sb, 'alice@mail.test', 'bob', 'first after the breakage');
    send(sb, 'carol@mail.test', 'bob', 'BUY NOW second after the breakage');
    const now = inbox('bob').slice(before);
    const notices = now.filter((m) => /\nSubject: Your Sieve script failed/.test(m));
    assert.equal(notices.length, 1, now.join('\n----\n'));
    assert.match(notices[0], /line 2: header has no tag ":frob"/);
    assert.equal(now.length, 3, 'both messages and one notice');
    assert.equal(folder('Never').length, 0);
    assert.equal(inbox('carol').length, 1, 'no second rejection');
    // A new version of the broken script is reported again, once.
    putBobs(sb, '.sieve', 'keep\n');
    send(sb, 'alice@mail.test', 'bob', 'third');
    assert.equal(inbox('bob').slice(before).filter((m) => /\nSubject: Your Sieve script failed/.test(m)).length, 2);
  });
});

describe('links in the user\'s files', () => {
  let box: Sandbox;
  before(() => {
    box = sieveSandbox();
  });
  after(() => box?.cleanup());

  test('fileinto through a symbolic link under ~/mail writes nothing there and keeps the mail', () => {
    const bob = box.users.bob;
    const outside = path.join(box.dir, 'outside');
    fs.mkdirSync(outside, { mode: 0o777 });
    fs.chmodSync(outside, 0o777);
    fs.mkdirSync(path.join(bob.home, 'mail'), { recursive: true });
    fs.symlinkSync(outside, path.join(bob.home, 'mail', 'Linked'));
    if (IS_ROOT) {
      fs.chownSync(path.join(bob.home, 'mail'), bob.uid, bob.gid);
      fs.lchownSync(path.join(bob.home, 'mail', 'Linked'), bob.uid, bob.gid);
    }
    putBobs(box, '.sieve', 'require "fileinto";\nfileinto "Linked/box";\n');
    send(box, 'alice@mail.test', 'bob', 'through the link');
    assert.deepEqual(fs.readdirSync(outside), []);
    const mine = splitMbox(box.readMbox('bob'));
    assert.ok(mine.some((m) => /\nSubject: through the link\n/.test(m)), 'kept in INBOX');
    assert.ok(mine.some((m) => /\nSubject: Your Sieve script failed/.test(m) && /symbolic link|symlink/.test(m)), mine.join('\n---\n'));
  });

  test('a ~/.sieve that links to a file bob does not own is not run', { skip: IS_ROOT ? false : 'needs root (every file is the test\'s own)' }, () => {
    const foreign = path.join(box.dir, 'foreign.sieve');
    fs.writeFileSync(foreign, 'discard;\n', { mode: 0o644 });
    const link = path.join(box.users.bob.home, '.sieve');
    fs.rmSync(link, { force: true });
    fs.symlinkSync(foreign, link);
    fs.lchownSync(link, box.users.bob.uid, box.users.bob.gid);
    const before = splitMbox(box.readMbox('bob')).length;
    send(box, 'alice@mail.test', 'bob', 'not discarded');
    const now = splitMbox(box.readMbox('bob')).slice(before);
    assert.ok(now.some((m) => /\nSubject: not discarded\n/.test(m)));
    assert.ok(now.some((m) => /not a file of yours/.test(m)));
  });
});

describe('vacation and redirect in a script', () => {
  let box: Sandbox;
  before(() => {
    box = sieveSandbox();
    putBobs(box, '.sieve', [
      'require ["vacation", "copy"];',
      'if header :contains "subject" "forward me" { redirect :copy "carol@mail.test"; }',
      'vacation :days 2 :subject "Away" "I am away until Monday.";',
      '',
    ].join('\n'));
  });
  after(() => box?.cleanup());

  test('alice is answered once from the null sender; carol gets a redirected copy; bob keeps all', () => {
    send(box, 'alice@mail.test', 'bob', 'first');
    send(box, 'alice@mail.test', 'bob', 'forward me please');
    const replies = splitMbox(box.readMbox('alice'));
    assert.equal(replies.length, 1, `alice's mailbox:\n${box.readMbox('alice')}\nlog:\n${fs.readFileSync(box.log, 'utf8')}`);
    assert.match(replies[0], /^From MAILER-DAEMON /);
    assert.match(replies[0], /\nSubject: Away\n/);
    assert.match(replies[0], /\nAuto-Submitted: auto-replied\n/);
    assert.match(replies[0], /I am away until Monday\./);
    const carol = splitMbox(box.readMbox('carol'));
    assert.equal(carol.length, 1);
    assert.match(carol[0], /^From alice@mail\.test /, 'the redirect keeps the envelope sender');
    assert.match(carol[0], /\nSubject: forward me please\n/);
    assert.equal(splitMbox(box.readMbox('bob')).length, 2);
  });
});

describe('imap4flags: what a script sets, an IMAP client sees', () => {
  let box: Sandbox;
  before(() => {
    box = sieveSandbox();
    putBobs(box, '.sieve', [
      'require ["fileinto", "imap4flags"];',
      'if header :contains "subject" "[work]" {',
      '  addflag ["$label1", "\\\\Flagged"];',
      '  fileinto "Work";',
      '  stop;',
      '}',
      'if header :contains "subject" "[read]" { keep :flags ["\\\\Seen", "$Later"]; }',
      '',
    ].join('\n'));
  });
  after(() => box?.cleanup());

  test('a keyword and \\Flagged set by the script are in FETCH FLAGS, in a folder and in INBOX', async (t) => {
    send(box, 'alice@mail.test', 'bob', '[work] the report');
    send(box, 'alice@mail.test', 'bob', '[read] the newsletter');
    const work = splitMbox(fs.readFileSync(path.join(box.users.bob.home, 'mail', 'Work'), 'utf8'));
    assert.equal(work.length, 1);
    // Dovecot's form: X-Status: F, X-Keywords: space-separated.
    assert.match(work[0], /\nX-Status: F\nX-Keywords: \$label1\n\n/);
    assert.match(splitMbox(box.readMbox('bob'))[0], /\nStatus: RO\nX-Keywords: \$Later\n\n/);
    const p = run(box, 'mailpasswd', ['bob'], `${PASSWORD}\n`);
    if (p.status !== 0) return t.skip(`mailpasswd: ${p.stderr}`);
    const daemon = await startDaemon(box, ['-bD', '-q1h'], ['imap']);
    try {
      const c = await ImapClient.login(daemon.ports.imap, 'bob', PASSWORD);
      await c.ok('SELECT Work');
      const w = (await c.ok('FETCH 1 (FLAGS)')).untagged.join('\n');
      assert.match(w, /\\Flagged/);
      assert.match(w, /\$label1/, `keywords are read from X-Keywords: ${w}`);
      await c.ok('SELECT INBOX');
      const i = (await c.ok('FETCH 1 (FLAGS)')).untagged.join('\n');
      assert.match(i, /\\Seen/);
      assert.match(i, /\$Later/);
      await c.logout();
    } finally {
      await daemon.stop();
    }
  });
});

describe('ManageSieve', () => {
  let box: Sandbox;
  let daemon: RunningDaemon | undefined;
  let port = 0;
  before(async () => {
    box = sieveSandbox('managesieve_listen = 127.0.0.1:0');
    const p = run(box, 'mailpasswd', ['bob'], `${PASSWORD}\n`);
    assert.equal(p.status, 0, p.stderr);
    daemon = await startDaemon(box, ['-bD', '-q1h'], ['managesieve']);
    port = daemon.ports.managesieve;
  });
  after(async () => {
    await daemon?.stop();
    box?.cleanup();
  });

  /** Read lines up to the OK/NO/BYE that ends a response. */
  async function response(c: LineClient): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await c.line(10_000);
      if (l === undefined) return out;
      out.push(l);
      if (/^(OK|NO|BYE)\b/.test(l)) return out;
    }
  }
  const lit = (s: string) => `{${Buffer.byteLength(s)}+}\r\n${s}`;

  test('a raw client: login, PUTSCRIPT checks, SETACTIVE, LISTSCRIPTS, GETSCRIPT; the script is used at delivery', async () => {
    const c = await LineClient.connect(port);
    try {
      const hello = await response(c);
      assert.match(hello.join('\n'), /"SIEVE" "fileinto reject/);
      assert.match(hello.join('\n'), /"SASL" "PLAIN/);
      assert.match(hello.at(-1)!, /^OK /);
      c.send(`AUTHENTICATE "PLAIN" "${Buffer.from(`\0bob\0wrong`).toString('base64')}"`);
      assert.match((await response(c)).at(-1)!, /^NO /);
      c.send(`AUTHENTICATE "PLAIN" "${Buffer.from(`\0bob\0${PASSWORD}`).toString('base64')}"`);
      assert.match((await response(c)).at(-1)!, /^OK /);
      c.socket.write(`PUTSCRIPT "bad" ${lit('require "fileinto";\nif header :is "subject" {\n keep;\n}\n')}\r\n`);
      assert.match((await response(c)).at(-1)!, /^NO .*line 2/);
      const script = 'require "fileinto";\nif header :contains "subject" "[dev]" { fileinto "Dev"; }\n';
      c.socket.write(`PUTSCRIPT "dev" ${lit(script)}\r\n`);
      assert.match((await response(c)).at(-1)!, /^OK /);
      c.send('SETACTIVE "dev"');
      assert.match((await response(c)).at(-1)!, /^OK /);
      c.send('LISTSCRIPTS');
      const list = await response(c);
      assert.ok(list.includes('"dev" ACTIVE'), list.join('\n'));
      c.send('GETSCRIPT "dev"');
      const got = await response(c);
      assert.match(got.join('\n'), /fileinto "Dev"/);
      c.send('DELETESCRIPT "dev"');
      assert.match((await response(c)).at(-1)!, /^NO \(ACTIVE\)/);
      c.send('LOGOUT');
      assert.match((await response(c)).at(-1)!, /^OK /);
    } finally {
      c.close();
    }
    const bob = box.users.bob;
    assert.equal(fs.readlinkSync(path.join(bob.home, '.sieve')), 'sieve/dev.sieve');
    if (IS_ROOT) assert.equal(fs.statSync(path.join(bob.home, 'sieve', 'dev.sieve')).uid, bob.uid, "written as bob");
    send(box, 'alice@mail.test', 'bob', '[dev] build broken');
    const dev = splitMbox(fs.readFileSync(path.join(bob.home, 'mail', 'Dev'), 'utf8'));
    assert.equal(dev.length, 1);
    assert.equal(splitMbox(box.readMbox('bob')).length, 0);
  });

  test('sieve-connect (Debian) uploads and activates a script that delivery then uses', async (t) => {
    if (SIEVE_CONNECT_MISSING) return t.skip(SIEVE_CONNECT_MISSING);
    const file = path.join(box.dir, 'away.sieve');
    fs.writeFileSync(file, 'require ["fileinto"];\nif address :domain "from" "carol.test" { fileinto "Carol"; }\n');
    const connect = (args: string[]) => sieveConnect(port, 'bob', PASSWORD, args);
    const up = connect(['--upload', '--localsieve', file, '--remotesieve', 'carol']);
    assert.equal(up.status, 0, `${up.stdout}\n${up.stderr}`);
    const act = connect(['--activate', '--remotesieve', 'carol']);
    assert.equal(act.status, 0, `${act.stdout}\n${act.stderr}`);
    const ls = connect(['--list']);
    assert.equal(ls.status, 0, ls.stderr);
    assert.match(ls.stdout, /^"carol" ACTIVE$/m);
    send(box, 'x@carol.test', 'bob', 'from carol.test');
    const carol = splitMbox(fs.readFileSync(path.join(box.users.bob.home, 'mail', 'Carol'), 'utf8'));
    assert.equal(carol.length, 1);
  });
});
