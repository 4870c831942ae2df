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
import { IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, run, splitMbox, startDaemon } from './helpers.ts';
import { ImapClient } from './mailbox/harness.ts';

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
