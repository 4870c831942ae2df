// mail through the real binaries in a sandbox, fed from pipes: send mode
// (plain, UTF-8 quoted-printable with an RFC 2047 subject, Cc/Bcc, -r, -a
// attachments, dead.letter when sendmail refuses), -H and -e, and a reading
// session driven by commands on stdin (headers, print, reply, save, delete,
// quit and exit), including mail that arrives between two commands.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';

let sb: Sandbox;
before(() => {
  sb = makeSandbox({ users: ['alice', 'bob', 'carol', 'dave'], extraConf: 'delivery_mode = interactive' });
});
after(() => sb.cleanup());

/** Who runs the tests: the envelope sender of what they submit. */
const ME = os.userInfo().username;
const home = (u: string) => sb.users[u].home;
const mail = (args: string[], input = '', user = 'alice') => run(sb, 'mail', args, input, { HOME: home(user) });
const messagesOf = (u: string) => splitMbox(sb.readMbox(u));
const last = (u: string) => messagesOf(u).at(-1) ?? '';
function deliver(to: string, text: string): void {
  const r = run(sb, 'sendmail', ['-odi', '-i', to], text);
  assert.equal(r.status, 0, r.stderr);
}

describe('send mode', () => {
  test('a plain message from a pipe, with -s and -c', () => {
    const r = mail(['-s', 'Hello there', '-c', 'carol', 'bob'], 'plain text\nsecond line\n');
    assert.equal(r.status, 0, r.stderr);
    const m = last('bob');
    assert.match(m, /\nSubject: Hello there\n/);
    assert.match(m, /\nTo: bob\n/);
    assert.match(m, /\nCc: carol\n/);
    assert.match(m, /\nContent-Type: text\/plain; charset=us-ascii\n/);
    assert.match(m, /\n\nplain text\nsecond line\n/);
    assert.match(last('carol'), /\nSubject: Hello there\n/);
  });

  test('non-ASCII text goes out as UTF-8 quoted-printable with an encoded subject; Bcc stays hidden', () => {
    const r = mail(['-s', 'Grüße 你好', '-b', 'dave', 'bob'], 'héllo 世界\n');
    assert.equal(r.status, 0, r.stderr);
    const m = last('bob');
    assert.match(m, /\nSubject: =\?UTF-8\?B\?R3LDvMOfZSDkvaDlpb0=\?=\n/);
    assert.match(m, /\nContent-Type: text\/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n/);
    assert.match(m, /\nh=C3=A9llo =E4=B8=96=E7=95=8C\n/);
    assert.doesNotMatch(m, /Bcc|dave/i);
    assert.match(last('dave'), /h=C3=A9llo/);
  });

  test('-r sets the envelope sender and From:', () => {
    const r = mail(['-r', 'Boss <boss@example.org>', '-s', 'from boss', 'bob'], 'x\n');
    assert.equal(r.status, 0, r.stderr);
    const m = last('bob');
    assert.match(m, /^From boss@example\.org /);
    assert.match(m, /\nFrom: Boss <boss@example\.org>\n/);
  });

  test('-a makes multipart/mixed with a base64 part of the guessed type', () => {
    const file = path.join(sb.dir, 'report.pdf');
    const content = Buffer.from('%PDF-1.4 binary \x00\x01\x02 data');
    fs.writeFileSync(file, content);
    const r = mail(['-s', 'with file', '-a', file, 'bob'], 'see attached\n');
    assert.equal(r.status, 0, r.stderr);
    const m = last('bob');
    assert.match(m, /\nContent-Type: multipart\/mixed; boundary="[^"]+"\n/);
    assert.match(m, /Content-Type: application\/pdf; name="report.pdf"\nContent-Disposition: attachment; filename="report.pdf"\nContent-Transfer-Encoding: base64\n\n/);
    assert.ok(m.includes(`\n\n${content.toString('base64')}\n`), 'the file, base64');
    // ...and reading it lists the attachment instead of dumping it.
    const read = mail(['-u', 'bob'], `p ${messagesOf('bob').length}\nx\n`, 'bob');
    assert.match(read.stdout, /see attached\n/);
    assert.match(read.stdout, /\[-- Attachment #1: report\.pdf, application\/pdf, 24 bytes --\]/);
    assert.doesNotMatch(read.stdout, /JVBER/);
  });

  test('when sendmail refuses, the text is kept in ~/dead.letter and the exit status says so', () => {
    const dead = path.join(home('alice'), 'dead.letter');
    fs.rmSync(dead, { force: true });
    const r = mail(['-O', 'max_message_size=20', '-s', 'doomed', 'bob'], 'keep me\n');
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /message kept in .*dead\.letter/);
    const kept = fs.readFileSync(dead, 'utf8');
    assert.match(kept, new RegExp(`^From ${ME} `)); // the invoking user
    assert.match(kept, /\nSubject: doomed\n/);
    assert.match(kept, /\nkeep me\n/);
  });

  test('-E discards an empty message instead of sending it', () => {
    const before = messagesOf('bob').length;
    const r = mail(['-E', '-s', 'empty', 'bob'], '');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(messagesOf('bob').length, before);
  });
});

describe('read mode from stdin', () => {
  before(() => {
    fs.rmSync(sb.mbox('alice'), { force: true });
    deliver('alice', 'From: Bob Tester <bob@mail.test>\nSubject: first\nMessage-ID: <one@mail.test>\n\nbody one\n');
    deliver('alice', 'From: carol@mail.test\nTo: alice@mail.test, dave@mail.test\nSubject: second\nMessage-ID: <two@mail.test>\n\nbody two\nFrom the start\n');
    deliver('alice', 'From: dave@mail.test\nSubject: third\n\nbody three\n');
  });

  test('-H prints mailx summary lines; -e tells whether there is mail', () => {
    const r = mail(['-H', '-u', 'alice']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^>N  1 bob@mail\.test\s+\w{3} \w{3} [ \d]\d \d\d:\d\d\s+\d+\/\d+\s+first$/);
    assert.match(lines[1], /^ N  2 carol@mail\.test\s+.* second$/);
    assert.equal(mail(['-e', '-u', 'alice']).status, 0);
    assert.equal(mail(['-e', '-u', 'nosuchuser']).status, 1);
    assert.equal(mail(['-e', '-f', path.join(sb.dir, 'no-such-file')]).status, 1);
  });

  test('-f on a file that cannot be read says why, as s-nail does, and exits 1', () => {
    const notMbox = path.join(sb.dir, 'not-an-mbox');
    fs.writeFileSync(notMbox, 'root:x:0:0:root:/root:/bin/bash\n');
    const cases: Array<[string, RegExp]> = [
      [path.join(sb.dir, 'no-such-file'), /: No such file or directory$/],
      [sb.dir, /: Is a directory$/],
      [notMbox, /not an mbox file: the first line does not begin with "From "$/],
    ];
    for (const [file, why] of cases) {
      for (const args of [['-f', file], ['-H', '-f', file]]) {
        const r = mail(args);
        assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.match(r.stderr.trim(), new RegExp(`^mail: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
        assert.match(r.stderr.trim(), why);
      }
    }
  });

  test('exit leaves the mailbox byte for byte as it was', () => {
    const before = sb.readMbox('alice');
    const r = mail(['-u', 'alice'], 'p 1\nd 2\nx\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`Message 1:\\nFrom ${ME}@mail\\.test .*\\n(.+\\n)*From: Bob Tester <bob@mail\\.test>\\nSubject: first\\n\\nbody one\\n`));
    assert.equal(sb.readMbox('alice'), before);
  });

  test('print, reply, save, delete, quit: each does what mailx does', () => {
    const saved = path.join(home('alice'), 'saved.mbox');
    const script = ['h', 'p 2', 'r 2', 'Thanks for the note.', '.', `s 3 ${saved}`, 'd 1', 'q', ''].join('\n');
    const r = mail(['-u', 'alice'], script);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /"[^"]+alice": 3 messages 3 new\n>N  1 bob@mail\.test/);
    assert.match(r.stdout, /body two\nFrom the start\n/, 'the >From line is unquoted when shown');
    // We run as root, so alice is not "me": reply-all includes her, and her copy arrives during the session.
    assert.match(r.stdout, /To: carol@mail\.test, alice@mail\.test, dave@mail\.test\nSubject: Re: second\n/);
    assert.match(r.stdout, /New mail has arrived\.\n/);
    assert.match(r.stdout, /Saved 1 message in .*\/mbox\n/);
    // The reply went to the sender and the other recipients, quoting, threaded.
    const reply = last('carol');
    assert.match(reply, /\nSubject: Re: second\n/);
    assert.match(reply, /\nIn-Reply-To: <two@mail\.test>\nReferences: <two@mail\.test>\n/);
    assert.match(reply, /\n> body two\n> From the start\nThanks for the note\.\n/);
    assert.match(last('dave'), /\nSubject: Re: second\n/);
    // 1 deleted; 3 saved, so gone; 2 read, so moved to ~/mbox, marked answered; the reply that arrived stays.
    const left = messagesOf('alice');
    assert.deepEqual(left.map((m) => /\nSubject: (.+)/.exec(m)![1]), ['Re: second']);
    const mbox = fs.readFileSync(path.join(home('alice'), 'mbox'), 'utf8');
    assert.match(mbox, /\nSubject: second\n(.+\n)*Status: RO\nX-Status: A\n\nbody two\n>From the start\n\n$/);
    assert.match(fs.readFileSync(saved, 'utf8'), new RegExp(`^From ${ME}@mail\\.test .*\\n[\\s\\S]*\\nSubject: third\\n(.*\\n)*Status: RO\\n\\nbody three\\n\\n$`));
  });

  test('read messages move to ~/mbox at quit unless hold is set; unread ones stay as old', () => {
    fs.rmSync(path.join(home('alice'), 'mbox'), { force: true });
    deliver('alice', 'Subject: fourth\n\nfour\n');
    deliver('alice', 'Subject: fifth\n\nfive\n');
    const r = mail(['-u', 'alice'], 'p 2\nq\n');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Saved 1 message in .*mbox\nHeld 2 messages in /);
    assert.doesNotMatch(fs.readFileSync(path.join(home('alice'), 'mbox'), 'utf8'), /Subject: (second|fifth)/);
    const mbox = fs.readFileSync(path.join(home('alice'), 'mbox'), 'utf8');
    assert.match(mbox, /\nSubject: fourth\n[\s\S]*Status: RO\n/);
    const left = messagesOf('alice');
    assert.deepEqual(left.map((m) => /\nSubject: (.+)/.exec(m)![1]), ['Re: second', 'fifth']);
    assert.match(left[1], /\nStatus: O\n\nfive\n/);
    const h = mail(['-H', '-u', 'alice']);
    assert.match(h.stdout, /^>U  1 .* Re: second\n U  2 .* fifth\n$/);
  });

  test('mail that arrives between two commands survives the quit', async () => {
    const child = spawn(path.join(BIN, 'mail'), ['-C', sb.conf, '-u', 'alice'], { env: { ...sb.env, HOME: home('alice') } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const done = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.stdin.write('h\n');
    await waitFor(() => out.includes(' 2 '), 15_000, 'the header summary');
    deliver('alice', 'Subject: late arrival\n\nlate body\n');
    child.stdin.end('d 1\nq\n');
    assert.equal(await done, 0, out);
    const subjects = messagesOf('alice').map((m) => /\nSubject: (.+)/.exec(m)![1]);
    assert.deepEqual(subjects, ['fifth', 'late arrival']);
    assert.match(messagesOf('alice')[1], /\n\nlate body\n/);
  });

  test('message lists: ranges, $, :n, /subject and sender names', () => {
    deliver('alice', 'From: Zed Zebra <zed@mail.test>\nSubject: zebra news\n\nz\n');
    const r = mail(['-u', 'alice'], 'f *\nf $\nf /zebra\nf Zebra\nf 1-2\nf :u\nx\n');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => /^[> ][A-Z ]\s*\d+ /.test(l));
    assert.ok(lines.some((l) => / 3 zed@mail\.test .*zebra news/.test(l)), r.stdout);
    assert.match(r.stdout, /No applicable messages|zebra/);
  });
});
