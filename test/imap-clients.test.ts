// Real mail clients against the real daemon (sendmail -bD with -C, IMAP and
// POP3 on loopback ports): mutt at a terminal (tmux) over IMAP and over POP3
// (read the INBOX, open a message, delete and sync, copy and save to another
// folder) and sending through sendmail; Perl's Mail::IMAPClient
// (test/clients/imapclient.pl) through every extension mailtk advertises; and
// Python's imaplib with raw commands for the extensions no other test gives
// it (ID, CONDSTORE, QRESYNC, BINARY, UIDPLUS, QUOTA, STATUS=SIZE, UNSELECT).
// Each result is checked against what the delivered messages make true.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, ROOT, run, splitMbox, waitFor } from './helpers.ts';
import { type ImapDaemon, startImapDaemon } from './imap-daemon.ts';
import { ImapClient, PASSWORD, python } from './mailbox/harness.ts';
import { noTmux, Terminal } from './tmux.ts';

const has = (cmd: string) => spawnSync('sh', ['-c', cmd], { stdio: 'ignore' }).status === 0;
const noMutt = noTmux || (!has('command -v mutt') && 'mutt is not installed (test/install-deps.sh installs it as root)');
const noPerlClient = !has('perl -MMail::IMAPClient -e1') && "Perl's Mail::IMAPClient is not installed (libmail-imapclient-perl; test/install-deps.sh installs it as root)";
const VERSION = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version as string;

let x: ImapDaemon;

function deliver(to: string, text: string): void {
  const r = run(x.sb, 'sendmail', ['-odi', '-i', to], text);
  assert.equal(r.status, 0, r.stderr);
}

const subjects = (mbox: string) => splitMbox(mbox).map((m) => /\nSubject: (.*)/.exec(m)?.[1]);
const readOr = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
const folder = (user: string, name: string) => fs.readFileSync(path.join(x.sb.users[user].home, 'mail', name), 'utf8');

/** A virtual user (user@v.test) with a quota of `bytes` and `messages`: the only kind IMAP QUOTA reports on. */
function virtualUser(address: string, password: string, bytes: number, messages: number): void {
  const mailtk = (args: string[], input = '') => {
    const r = run(x.sb, 'mailtk', args, input);
    assert.equal(r.status, 0, `mailtk ${args.join(' ')}: ${r.stderr}`);
  };
  if (!/^v\.test\b/m.test(readOr(path.join(x.sb.dir, 'etc/virtual-domains')))) mailtk(['domain', 'add', 'v.test']);
  mailtk(['user', 'add', address], `${password}\n`);
  mailtk(['quota', 'set', address, String(bytes), String(messages)]);
}
/** Commands in one IMAP session of a Unix user, each of which must answer OK. */
async function imapOk(user: string, commands: string[]): Promise<void> {
  const c = await ImapClient.login(x.d.ports.imap, user);
  try {
    for (const cmd of commands) await c.ok(cmd);
  } finally {
    await c.logout();
  }
}
const virtualMbox = (address: string) => path.join(x.sb.spool, 'virtual', 'v.test', address.split('@')[0]);

before(async () => {
  x = await startImapDaemon('alice', [], ['bob', 'carol', 'dave']);
});
after(() => x?.stop());

describe('mutt', { skip: noMutt }, () => {
  const term = new Terminal();
  let home: string;

  /** A muttrc: no TLS, no caches, no questions, mail sent through this sandbox's sendmail; `lines` name the account. */
  function muttrc(name: string, lines: string[]): string {
    const file = path.join(home, name);
    fs.writeFileSync(
      file,
      [
        'set ssl_starttls=no',
        'set ssl_force_tls=no',
        'unset header_cache',
        'unset message_cachedir',
        'set delete=yes',
        'set move=no',
        'set mark_old=no',
        'set wait_key=no',
        'set confirmappend=no',
        'set confirmcreate=no',
        'set sort=mailbox-order',
        'set record=',
        'set hostname=mail.test',
        'set use_envelope_from=yes',
        // -oi, as mutt's own default has it: a line holding one dot is text, not the end.
        `set sendmail="${path.join(BIN, 'sendmail')} -C ${x.sb.conf} -oem -oi"`,
        ...lines,
        '',
      ].join('\n'),
    );
    return file;
  }
  /** On message n, a command whose prompt asks for a folder, answered with `to` (the default it offers cleared first). */
  async function toFolder(win: string, n: number, key: string, prompt: RegExp, to: string): Promise<void> {
    term.type(win, String(n), true);
    term.type(win, key);
    await term.see(win, prompt);
    term.keys(win, 'C-u');
    term.type(win, to, true);
  }
  const start = (name: string, rc: string, args: string[] = []) => term.start(name, ['mutt', '-n', '-F', rc, ...args], { HOME: home, PATH: process.env.PATH ?? '/usr/bin:/bin' });

  before(() => {
    home = path.join(x.sb.dir, 'mutt-home');
    fs.mkdirSync(path.join(home, 'Mail'), { recursive: true });
  });
  after(() => term.kill());

  test('over IMAP: read the INBOX, open a message, flag, copy and save to folders, delete and sync', async () => {
    deliver('alice', 'From: Bob <bob@mail.test>\nSubject: lunch?\n\nNoon at the usual place?\n');
    deliver('alice', 'From: carol@mail.test\nSubject: minutes\n\nThe minutes are attached in spirit.\n');
    deliver('alice', 'From: carol@mail.test\nSubject: spam\n\nBuy now.\n');
    const rc = muttrc('alice.muttrc', ['set imap_user=alice', `set imap_pass=${PASSWORD}`, `set folder=imap://127.0.0.1:${x.d.ports.imap}/`, 'set spoolfile=+INBOX', 'set from=alice@mail.test']);
    start('imap', rc);
    await term.see('imap', /^\s+1 N .* Bob .* lunch\?\n\s+2 N .* minutes\n\s+3 N .* spam\n(.*\n)*.*Mutt: =INBOX \[Msgs:3 New:3 /m);
    term.keys('imap', 'Enter');
    await term.see('imap', /Subject: lunch\?\n(.*\n)*Noon at the usual place\?\n/);
    term.type('imap', 'q');
    // A number jumps to that message before each command: mutt's $resolve moves on after some.
    term.type('imap', '2', true);
    term.type('imap', 'F');
    await toFolder('imap', 2, 'C', /Copy to mailbox/, '=Archive');
    await waitFor(() => /\nSubject: minutes\n/.test(readOr(path.join(x.sb.users.alice.home, 'mail/Archive'))), 20_000, 'the copy in Archive');
    await toFolder('imap', 3, 's', /Save to mailbox/, '=Saved');
    await term.see('imap', /^\s+3 +\S*D.* spam$/m);
    term.type('imap', '1', true);
    term.type('imap', 'd');
    term.type('imap', '$');
    await term.see('imap', /^\s+1 .* minutes\n(.*\n)*.*Mutt: =INBOX \[Msgs:1 /m);
    // mutt lists another folder over IMAP: what it saved is there.
    term.type('imap', 'c');
    await term.see('imap', /Open mailbox/);
    term.keys('imap', 'C-u');
    term.type('imap', '=Saved', true);
    await term.see('imap', /^\s+1 .* spam\n(.*\n)*.*Mutt: =Saved \[Msgs:1 /m);
    term.type('imap', 'q');
    await term.see('imap', /\[exit 0\]/);

    assert.deepEqual(subjects(x.sb.readMbox('alice')), ['minutes']);
    assert.deepEqual(subjects(folder('alice', 'Archive')), ['minutes']);
    assert.deepEqual(subjects(folder('alice', 'Saved')), ['spam']);
    assert.match(folder('alice', 'Saved'), /\n\nBuy now\.\n/);
    const c = await ImapClient.login(x.d.ports.imap, 'alice');
    try {
      await c.ok('SELECT INBOX');
      const f = (await c.ok('FETCH 1:* (FLAGS ENVELOPE)')).untagged;
      assert.equal(f.length, 1, f.join('\n'));
      assert.match(f[0], /FLAGS \(\\Flagged\)/);
      assert.match(f[0], /"minutes"/);
      assert.equal(await c.messages('Archive'), 1);
      assert.equal(await c.messages('Saved'), 1);
    } finally {
      await c.logout();
    }
  });

  test('sends through sendmail (-oi: a lone dot is text), and reads over POP3: open, save to a local folder, delete and sync', async () => {
    const rc = muttrc('bob.muttrc', [
      'set pop_user=bob',
      `set pop_pass=${PASSWORD}`,
      `set spoolfile=pop://127.0.0.1:${x.d.ports.pop3}/`,
      `set folder=${path.join(home, 'Mail')}`,
      'set pop_delete=yes',
      'set from=alice@mail.test',
    ]);
    // mutt's batch mode: the body on stdin, straight to $sendmail.
    const sent = spawnSync('mutt', ['-n', '-F', rc, '-s', 'from mutt', '--', 'bob'], { input: 'Hi Bob,\n.\nFrom the start of a line\nsent by mutt.\n', env: { ...process.env, HOME: home }, encoding: 'utf8', timeout: 60_000 });
    assert.equal(sent.status, 0, sent.stderr);
    const stored = splitMbox(x.sb.readMbox('bob'));
    assert.equal(stored.length, 1);
    assert.match(stored[0], /^From alice@mail\.test /);
    assert.match(stored[0], /\nTo: bob@mail\.test\n(.*\n)*Subject: from mutt\n/);
    assert.match(stored[0], /\n\nHi Bob,\n\.\n>From the start of a line\nsent by mutt\.\n\n$/);
    deliver('bob', 'From: carol@mail.test\nSubject: agenda\n\nItem one.\n');
    deliver('bob', 'From: carol@mail.test\nSubject: junk\n\nWin a prize.\n');

    start('pop', rc);
    await term.see('pop', /^\s+1 N .* from mutt\n\s+2 N .* agenda\n\s+3 N .* junk\n(.*\n)*.*Mutt: pop:\/\/127\.0\.0\.1:\d+\/ \[Msgs:3 New:3 /m);
    term.keys('pop', 'Enter');
    // Served as it was sent: the mbox's >From is the writer's, not the message's.
    await term.see('pop', /Subject: from mutt\n(.*\n)*Hi Bob,\n\.\nFrom the start of a line\nsent by mutt\.\n/);
    term.type('pop', 'q');
    await toFolder('pop', 2, 's', /Save to mailbox/, '=kept');
    await term.see('pop', /^\s+2 +\S*D.* agenda$/m);
    term.type('pop', '3', true);
    term.type('pop', 'd');
    term.type('pop', '$');
    await term.see('pop', /^\s+1 .* from mutt\n(.*\n)*.*\[Msgs:1 /m);
    term.type('pop', 'q');
    await term.see('pop', /\[exit 0\]/);

    assert.deepEqual(subjects(x.sb.readMbox('bob')), ['from mutt']);
    const kept = fs.readFileSync(path.join(home, 'Mail', 'kept'), 'utf8');
    assert.deepEqual(subjects(kept), ['agenda']);
    assert.match(kept, /\n\nItem one\.\n/);
  });

  test('header cache resynced with CONDSTORE and QRESYNC after another client changed the INBOX; new mail seen in IDLE; a message composed and filed in =Sent over IMAP', async () => {
    for (const n of ['q-one', 'q-two', 'q-three']) deliver('carol', `From: dave@mail.test\nSubject: ${n}\n\n${n} body\n`);
    const editor = path.join(home, 'editor');
    fs.writeFileSync(editor, '#!/bin/sh\necho "Filed by mutt." >> "$1"\n', { mode: 0o755 });
    const rc = muttrc('resync.muttrc', [
      'set imap_user=carol',
      `set imap_pass=${PASSWORD}`,
      `set folder=imap://127.0.0.1:${x.d.ports.imap}/`,
      'set spoolfile=+INBOX',
      `set header_cache=${path.join(home, 'hcache')}`,
      'set imap_condstore=yes',
      'set imap_qresync=yes',
      'set record=+Sent',
      `set editor=${editor}`,
      `set tmpdir=${home}`,
      'set realname=Carol',
      'set from=carol@mail.test',
      'set imap_idle=yes',
      'set timeout=2',
      'set mail_check=2',
    ]);
    fs.mkdirSync(path.join(home, 'hcache'), { recursive: true });
    start('resync1', rc);
    await term.see('resync1', /^\s+1 N .* q-one\n\s+2 N .* q-two\n\s+3 N .* q-three\n(.*\n)*.*Mutt: =INBOX \[Msgs:3 /m);
    term.type('resync1', 'q');
    await term.see('resync1', /\[exit 0\]/);

    await imapOk('carol', ['SELECT INBOX', 'STORE 2 +FLAGS (\\Flagged)', 'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE']);
    deliver('carol', 'From: dave@mail.test\nSubject: q-four\n\nq-four body\n');
    // -d 2: mutt logs the IMAP conversation in ~/.muttdebug0.
    start('resync2', rc, ['-d', '2']);
    await term.see('resync2', /^\s+1 N ! .* q-two\n\s+2 N .* q-three\n\s+3 N .* q-four\n(.*\n)*.*Mutt: =INBOX \[Msgs:3 /m);
    const debug = path.join(home, '.muttdebug0');
    if (fs.existsSync(debug)) {
      // The cached headers were kept: only what changed since the cached MODSEQ was asked for (RFC 7162 3.2.6).
      const log = fs.readFileSync(debug, 'utf8');
      assert.match(log, /> \S+ UID FETCH \S+ \(FLAGS\) \(CHANGEDSINCE \d+ VANISHED\)\r?\n/);
      assert.match(log, /< \* VANISHED \(EARLIER\) \d+\n/);
      assert.match(log, /< \* 1 FETCH \(UID \d+ FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)\n/);
    }
    // IDLE: a delivery while mutt waits in the INBOX shows up without a keystroke.
    deliver('carol', 'From: dave@mail.test\nSubject: q-five\n\nq-five body\n');
    await term.see('resync2', /^\s+4 N .* q-five\n(.*\n)*.*Mutt: =INBOX \[Msgs:4 /m);
    if (fs.existsSync(debug)) assert.match(fs.readFileSync(debug, 'utf8'), /> \S+ IDLE\r?\n(.*\n)*.*< \+ idling\n(.*\n)*.*< \* 4 EXISTS\n/);
    term.type('resync2', 'm');
    await term.see('resync2', /^To:$/m);
    term.type('resync2', 'bob', true);
    await term.see('resync2', /^Subject:$/m);
    term.type('resync2', 'filed in Sent', true);
    await term.see('resync2', /Fcc: =Sent/);
    term.type('resync2', 'y');
    await term.see('resync2', /Mail sent\./);
    term.type('resync2', 'q');
    await term.see('resync2', /\[exit 0\]/);

    const sentCopy = splitMbox(folder('carol', 'Sent'));
    assert.equal(sentCopy.length, 1);
    assert.match(sentCopy[0], /\nFrom: Carol <carol@mail\.test>\n(.*\n)*Subject: filed in Sent\n(.*\n)*Status: RO\n\nFiled by mutt\.\n/);
    assert.match(splitMbox(x.sb.readMbox('bob')).at(-1)!, /\nSubject: filed in Sent\n(.*\n)*\nFiled by mutt\.\n/);
  });
});

// Seen with mutt's copy and save: the copy's From_ line names MAILER-DAEMON where the
// original named its envelope sender. Dovecot's mbox COPY keeps it (mail_storage_copy
// passes the source's MAIL_FETCH_FROM_ENVELOPE on). The writer is src/mailbox/folder-append.ts
// (storedForm with sender ''), another helper's file at the time of writing.
test("COPY and MOVE keep the original's From_ line (envelope sender and date) for local mbox readers", async () => {
  const r = run(x.sb, 'sendmail', ['-odi', '-i', '-f', 'sender@remote.test', 'dave'], 'From: sender@remote.test\nSubject: keep my From_ line\n\nbody\n');
  assert.equal(r.status, 0, r.stderr);
  const fromLine = x.sb.readMbox('dave').split('\n')[0];
  assert.match(fromLine, /^From sender@remote\.test /);
  await imapOk('dave', ['CREATE Kept', 'CREATE Moved', 'SELECT INBOX', 'COPY 1 Kept', 'MOVE 1 Moved']);
  assert.equal(folder('dave', 'Kept').split('\n')[0], fromLine);
  assert.equal(folder('dave', 'Moved').split('\n')[0], fromLine);
});

describe("Perl's Mail::IMAPClient", { skip: noPerlClient }, () => {
  test('every advertised extension, through the library, checked against the messages delivered', async () => {
    const user = 'perl@v.test';
    virtualUser(user, 'pw-perl', 200_000, 50);
    const mail = [
      { subject: 'zebra', date: 'Mon, 01 Jan 2024 10:00:00 +0000', id: 'zebra' },
      { subject: 'apple', date: 'Tue, 02 Jan 2024 10:00:00 +0000', id: 'apple' },
      { subject: 'Re: apple', date: 'Wed, 03 Jan 2024 10:00:00 +0000', id: 're-apple', refs: 'apple' },
      { subject: 'lunch?', date: 'Fri, 05 Jan 2024 10:00:00 +0000', id: 'lunch', refs: 'apple' },
      { subject: 'bytes', date: 'Thu, 04 Jan 2024 10:00:00 +0000', id: 'bytes' },
    ];
    const text = Buffer.from('Grüße aus Köln\r\n');
    for (const m of mail) {
      const refs = m.refs ? `In-Reply-To: <${m.refs}@v.test>\nReferences: <${m.refs}@v.test>\n` : '';
      const body = m.id === 'bytes' ? `MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n${text.toString('base64')}\n` : `\n${m.subject} body\n`;
      deliver(user, `From: ${m.id}@v.test\nSubject: ${m.subject}\nDate: ${m.date}\nMessage-ID: <${m.id}@v.test>\n${refs}${body}`);
    }
    const script = path.join(ROOT, 'test/clients/imapclient.pl');
    const out = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const child = spawn('perl', [script, String(x.d.ports.imap), user, 'pw-perl', path.join(BIN, 'sendmail'), '-C', x.sb.conf, '-i', user], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      child.on('close', (code) => resolve({ code, out, err }));
    });
    assert.equal(out.code, 0, out.err + out.out);
    const r = JSON.parse(out.out);

    for (const cap of ['IMAP4REV1', 'IMAP4REV2', 'ID', 'ENABLE', 'CONDSTORE', 'QRESYNC', 'ESEARCH', 'SPECIAL-USE', 'LIST-EXTENDED', 'LIST-STATUS', 'SORT', 'THREAD=REFERENCES', 'THREAD=ORDEREDSUBJECT', 'BINARY', 'QUOTA', 'MOVE', 'UIDPLUS', 'IDLE']) {
      assert.ok(r.capabilities.includes(cap), cap);
    }
    assert.deepEqual(r.id, { name: 'mailtk', version: VERSION });
    assert.deepEqual(r.enabled, ['CONDSTORE', 'QRESYNC']);
    // SPECIAL-USE: made at the first login; the library's LIST parser sees each one's use.
    for (const use of ['Drafts', 'Junk', 'Sent', 'Trash']) assert.deepEqual(r.folders[use], [`\\${use}`, '\\NoInferiors'].sort(), use);
    assert.deepEqual(r.specialUse, ['Drafts', 'Junk', 'Sent', 'Trash'].map((u) => `(\\NoInferiors \\${u}) "/" ${u}`));

    // The UIDs of the messages in delivery order; u('apple') is apple's.
    assert.equal(r.uids.length, mail.length);
    const u = (id: string) => Number(r.uids[mail.findIndex((m) => m.id === id)]);
    const byDate = [...mail].sort((a, b) => Date.parse(b.date) - Date.parse(a.date)).map((m) => u(m.id));
    assert.deepEqual(r.sortDate.map(Number), byDate);
    const base = (s: string) => s.replace(/^(re: )+/i, '');
    const bySubject = mail.map((m, i) => ({ m, i })).sort((a, b) => base(a.m.subject).localeCompare(base(b.m.subject)) || a.i - b.i).map(({ m }) => u(m.id));
    assert.deepEqual(r.sortSubject.map(Number), bySubject);
    // REFERENCES follows References: (lunch? is a reply to apple); ORDEREDSUBJECT groups by base subject only.
    // Threads in the order of their first message's date (RFC 5256).
    const ids = (t: unknown): unknown => (Array.isArray(t) ? t.map(ids) : Number(t));
    assert.deepEqual(ids(r.threadReferences), [[u('zebra')], [u('apple'), [u('re-apple')], [u('lunch')]], [u('bytes')]]);
    assert.deepEqual(ids(r.threadOrderedSubject), [[u('zebra')], [u('apple'), u('re-apple')], [u('bytes')], [u('lunch')]]);
    assert.deepEqual(r.esearch, { MIN: String(u('apple')), MAX: String(u('re-apple')), COUNT: '2', ALL: `${u('apple')}:${u('re-apple')}` });
    // BINARY: the base64 part decoded, byte for byte.
    assert.deepEqual(r.binary, { size: text.length, hex: text.toString('hex') });

    // CONDSTORE: the \Flagged STORE on apple raised its MODSEQ; CHANGEDSINCE the SELECT's
    // HIGHESTMODSEQ finds it alone; UNCHANGEDSINCE that value refuses apple, not Re: apple.
    assert.equal(r.condstore.modseqRose, true);
    assert.deepEqual(r.condstore.changedSince, [u('apple')]);
    assert.match(r.condstore.changedFlags[0], /\\Flagged/);
    assert.match(r.condstore.refused, new RegExp(`OK \\[MODIFIED ${u('apple')}\\]`));
    assert.equal(r.condstore.allowed.length, 1);
    assert.match(r.condstore.allowed[0], new RegExp(`UID ${u('re-apple')} FLAGS \\([^)]*\\\\Seen`));

    // UIDPLUS and MOVE: a fresh folder's first UIDs; lunch? moved to Trash, zebra expunged by UID.
    assert.equal(r.uidplus.appendUid, 1);
    assert.equal(r.uidplus.copyUid, 2);
    assert.match(r.uidplus.move.join('\n'), new RegExp(`^\\* OK \\[COPYUID \\d+ ${u('lunch')} 1\\]`, 'm'));
    assert.ok(r.uidplus.move.includes(`* VANISHED ${u('lunch')}`), r.uidplus.move.join('\n'));
    assert.ok(r.uidplus.expunge.includes(`* VANISHED ${u('zebra')}`), r.uidplus.expunge.join('\n'));
    const left = ['apple', 're-apple', 'bytes'].map(u);
    assert.deepEqual(r.uidplus.left.map(Number), left);
    const home = path.join(x.sb.spool, 'virtual/v.test/.home/perl/mail');
    assert.deepEqual(subjects(fs.readFileSync(path.join(home, 'Trash'), 'utf8')), ['lunch?']);
    assert.deepEqual(subjects(fs.readFileSync(path.join(home, 'Work/2024'), 'utf8')), ['appended', 'zebra']);

    // LIST-EXTENDED and LIST-STATUS
    assert.deepEqual(r.listSubscribed, ['(\\NoInferiors \\Subscribed) "/" Work/2024', 'Work/2024 (MESSAGES 2 UIDNEXT 3)']);
    assert.deepEqual(r.listStatus, [
      '* LIST (\\NoInferiors) "/" INBOX',
      `* STATUS INBOX (MESSAGES ${left.length} UIDNEXT ${mail.length + 1})`,
      '* LIST (\\NoInferiors \\Trash) "/" Trash',
      '* STATUS Trash (MESSAGES 1 UIDNEXT 2)',
      '* LIST (\\NoInferiors) "/" Work/2024',
      '* STATUS Work/2024 (MESSAGES 2 UIDNEXT 3)',
    ]);
    // QRESYNC from the first SELECT: the two UIDs gone, the two messages whose flags changed.
    assert.deepEqual(r.qresync.vanished, [[u('zebra'), u('lunch')].join(',')]);
    assert.deepEqual(r.qresync.fetched, [`(UID ${u('apple')} FLAGS (\\Flagged))`, `(UID ${u('re-apple')} FLAGS (\\Seen))`]);
    // IDLE: the delivery made while idling.
    assert.deepEqual(r.idle, [`* ${left.length + 1} EXISTS`]);
    // QUOTA: the INBOX as the session left it (RFC 9208: STORAGE in units of 1024 octets).
    const size = fs.statSync(virtualMbox(user)).size;
    assert.deepEqual(r.quota, ['* QUOTAROOT INBOX ""', `* QUOTA "" (STORAGE ${Math.ceil(size / 1024)} ${Math.floor(200_000 / 1024)} MESSAGE ${left.length + 1} 50)`]);
  });
});

describe("Python's imaplib, raw commands for the extensions other tests leave to other clients", () => {
  test('ID, ENABLE QRESYNC, CONDSTORE, BINARY, UIDPLUS, STATUS=SIZE, QRESYNC, UNSELECT, QUOTA', async () => {
    const user = 'py@v.test';
    virtualUser(user, 'pw-py', 100_000, 10);
    deliver(user, 'From: a@v.test\nSubject: first\n\nplain\n');
    deliver(user, `From: b@v.test\nSubject: second\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee the attachment\n--b\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n${Buffer.from([0, 1, 2, 255, 13, 10]).toString('base64')}\n--b--\n`);
    const p = await python(
      `
import imaplib, re, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
typ, data = m.xatom('ID', '("name" "imaplib")')
print('id', m.untagged_responses.pop('ID'))
m.login(sys.argv[2], 'pw-py')
print('enable', m.enable('QRESYNC'), m.untagged_responses.pop('ENABLED'))
typ, data = m.select('INBOX')
uv = int(m.untagged_responses['UIDVALIDITY'][0]); hms = int(m.untagged_responses['HIGHESTMODSEQ'][0])
typ, data = m.uid('STORE', '1', '+FLAGS', r'(\\Answered)')
print('store', data)
typ, data = m.uid('FETCH', '1:*', '(FLAGS)', '(CHANGEDSINCE %d)' % hms)
print('changedsince', data)
typ, data = m.fetch('2', '(BINARY.SIZE[2] BINARY.PEEK[2])')
print('binary', data)
typ, data = m.append('INBOX', None, None, b'From: c@v.test\\r\\nSubject: third\\r\\n\\r\\nappended\\r\\n')
print('append', data, m.untagged_responses.pop('APPENDUID', None))
typ, data = m.status('INBOX', '(MESSAGES SIZE UIDNEXT)')
print('status', data)
typ, data = m.fetch('1:*', '(RFC822.SIZE)')
print('sizes', sum(int(re.search(rb'RFC822.SIZE ([0-9]+)', l).group(1)) for l in data))
print('unselect', m.unselect())
typ, data = m.select('INBOX (QRESYNC (%d %d))' % (uv, hms))
print('qresync', [l for l in m.untagged_responses.get('FETCH', [])])
print('quota', m.getquotaroot('INBOX'))
m.logout()
`,
      [String(x.d.ports.imap), user],
    );
    assert.equal(p.code, 0, p.err + p.out);
    const line = (k: string) => p.out.split('\n').find((l) => l.startsWith(`${k} `))?.slice(k.length + 1) ?? '';
    assert.equal(line('id'), `[b'("name" "mailtk" "version" "${VERSION}")']`);
    assert.equal(line('enable'), "('OK', [b'ENABLE completed']) [b'QRESYNC']");
    assert.match(line('store'), /^\[b'1 \(UID 1 FLAGS \(\\\\Answered \\\\Recent\) MODSEQ \(\d+\)\)'\]$/);
    assert.equal(line('changedsince'), line('store'), 'CHANGEDSINCE the SELECT: only the message just changed');
    // A part holding a NUL comes as a literal8 (RFC 3516 4.2), which imaplib reads as any literal.
    assert.equal(line('binary'), String.raw`[(b'2 (BINARY.SIZE[2] 6 BINARY[2] ~{6}', b'\x00\x01\x02\xff\r\n'), b')']`);
    assert.match(line('append'), /^\[b'\[APPENDUID (\d+) 3\] APPEND completed'\] \[b'\1 3'\]$/);
    // STATUS=SIZE (RFC 8438): the sum of the messages' RFC822.SIZE.
    assert.equal(line('status'), `[b'INBOX (MESSAGES 3 SIZE ${line('sizes')} UIDNEXT 4)']`);
    assert.match(line('unselect'), /^\('OK', /);
    // QRESYNC from the first SELECT: the flag change and the message appended since (RFC 7162 3.2.5.1).
    assert.match(line('qresync'), /^\[b'1 \(UID 1 FLAGS \(\\\\Answered\) MODSEQ \(\d+\)\)', b'3 \(UID 3 FLAGS \(\) MODSEQ \(\d+\)\)'\]$/);
    const inbox = fs.statSync(virtualMbox(user)).size;
    assert.match(line('quota'), new RegExp(String.raw`^\('OK', \[\[b'INBOX ""'\], \[b'"" \(STORAGE ${Math.ceil(inbox / 1024)} ${Math.floor(100_000 / 1024)} MESSAGE 3 10\)'\]\]\)$`));
  });
});
