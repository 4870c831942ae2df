// LMTP hand-off to a real mail store: Dovecot's LMTP server (dovecot-lmtpd),
// started here on a loopback port and a UNIX socket with a private config (a
// passwd-file userdb and Maildirs in its own directory, the quota plugin),
// receives mailtk's mailbox deliveries when mailbox_transport names it.
// Through the real binaries: `sendmail -odq` queues, `sendmail -q` runs the
// queue (as mail_owner), and the test reads Dovecot's Maildirs. Bob's quota
// is too small at first: Dovecot answers 452 4.2.2 for him alone after the
// data (quota_full_tempfail), so alice has her copy, bob is deferred with
// Dovecot's words in the log and in the delay DSN, and once his quota grows
// the next run delivers his copy and not alice's again. Last, the README's
// "Scaling out" picture: two mailtk daemons (two MX hosts of one domain, each
// with its own queue) take mail over SMTP and hand it to the one Dovecot.
// Needs root (Dovecot switches to each user's uid) and Dovecot's LMTP
// server, which test/install-deps.sh installs; skipped otherwise.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DOVECOT, type DovecotServer, startDovecot } from './dovecot.ts';
import { spawnSync } from 'node:child_process';
import { IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, runAsync, startDaemon, waitFor } from './helpers.ts';

const LMTP = '/usr/lib/dovecot/lmtp';
const skip = !IS_ROOT
  ? 'needs root: Dovecot delivers as each mail user'
  : !fs.existsSync(DOVECOT) || !fs.existsSync(LMTP)
    ? 'Dovecot LMTP is not installed (test/install-deps.sh installs dovecot-lmtpd as root)'
    : false;

const USERS = ['alice', 'bob'];

describe('LMTP hand-off to Dovecot', { skip, timeout: 120_000 }, () => {
  let sb: Sandbox;
  let dovecot: DovecotServer;
  let D: string;

  /** Dovecot's userdb: bob's quota as given (Dovecot reads the file again when it changes). */
  const writeUserdb = (bobQuota: string) => {
    const lines = USERS.map((name) => {
      const u = sb.users[name];
      const quota = name === 'bob' ? `userdb_quota_rule=*:storage=${bobQuota}` : '';
      return `${name}::${u.uid}:${u.gid}::${D}/home/${name}::${quota}`;
    });
    const file = path.join(D, 'users');
    fs.writeFileSync(`${file}.new`, lines.join('\n') + '\n');
    fs.renameSync(`${file}.new`, file);
  };

  const setTransport = (lines: string) => {
    const conf = fs.readFileSync(sb.conf, 'utf8').replace(/\n# lmtp:[\s\S]*$/, '\n');
    fs.writeFileSync(sb.conf, `${conf}# lmtp:\n${lines}\n`);
  };

  /**
   * The messages of a user's Maildir (new/), oldest first: by the seconds and
   * microseconds Dovecot names each file with ("1765032500.M98765P12.host"),
   * compared as numbers (the microseconds are not zero-padded, so the names
   * of two deliveries within a second do not sort as text).
   */
  const maildir = (name: string): string[] => {
    const dir = path.join(D, 'home', name, 'Maildir', 'new');
    if (!fs.existsSync(dir)) return [];
    const when = (f: string) => {
      const m = /^(\d+)\.M(\d+)/.exec(f);
      return m ? Number(m[1]) * 1e6 + Number(m[2]) : Number.MAX_SAFE_INTEGER;
    };
    return fs
      .readdirSync(dir)
      .sort((a, b) => when(a) - when(b) || (a < b ? -1 : a > b ? 1 : 0))
      .map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
  };

  const maillog = () => fs.readFileSync(sb.log, 'utf8');

  const sendmail = async (args: string[], input = '') => {
    const r = await runAsync(sb, 'sendmail', args, input);
    assert.equal(r.status, 0, `sendmail ${args.join(' ')}: ${r.stderr}`);
    return r;
  };

  before(async () => {
    sb = makeSandbox({ hostname: 'mail.test', users: USERS });
    D = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-lmtp-dovecot-'));
    fs.chmodSync(D, 0o755);
    for (const name of USERS) {
      fs.mkdirSync(path.join(D, 'home', name), { recursive: true });
      fs.chownSync(path.join(D, 'home', name), sb.users[name].uid, sb.users[name].gid);
    }
    fs.mkdirSync(path.join(D, 'run'));
    fs.mkdirSync(path.join(D, 'state'));
    writeUserdb('100M');
    dovecot = await startDovecot(D, (port) => dovecotConf(D, port), '220');
  });

  after(async () => {
    if (process.env.MAILTK_KEEP) console.log(maillog(), dovecot?.log());
    await dovecot?.stop();
    sb?.cleanup();
  });

  test('mailbox_transport = lmtp:[127.0.0.1]:port: Dovecot stores the local deliveries, nothing goes to the mbox', async () => {
    setTransport(`mailbox_transport = lmtp:[127.0.0.1]:${dovecot.port}`);
    const v = await sendmail(['-bv', 'alice']);
    assert.equal(v.stdout, `alice@mail.test... deliverable: mailer lmtp, host [127.0.0.1]:${dovecot.port}, user alice\n`);
    await sendmail(['-odq', '-i', '-f', 'zed@else.test', 'alice', 'bob@mail.test'], 'Subject: via LMTP\n\nhello\n.dot line\n');
    await sendmail(['-q']);
    for (const name of USERS) {
      const got = maildir(name);
      assert.equal(got.length, 1, `${name}: ${dovecot.log()}\n${maillog()}`);
      assert.match(got[0], /^Return-Path: <zed@else\.test>\n/);
      assert.match(got[0], /\nSubject: via LMTP\n\nhello\n\.dot line\n$/);
    }
    assert.equal(sb.readMbox('alice'), '', 'nothing in the spool mbox');
    for (const name of USERS) {
      const sent = `to=<${name}@mail\\.test>, .*mailer=lmtp, relay=\\[127\\.0\\.0\\.1\\] \\[127\\.0\\.0\\.1\\], dsn=2\\.0\\.0, stat=Sent \\(<${name}@mail\\.test> \\S+ Saved\\)`;
      assert.match(maillog(), new RegExp(sent));
    }
  });

  test('a 4xx for one of two recipients (bob over quota) defers only that one; the next run sends his copy only', async () => {
    writeUserdb('10B');
    setTransport([`mailbox_transport = lmtp:[127.0.0.1]:${dovecot.port}`, 'queue_warn = 0s'].join('\n'));
    await sendmail(['-odq', '-i', '-f', 'alice@mail.test', 'alice', 'bob'], 'Subject: quota\n\nfor both\n');
    await sendmail(['-q']);
    const log = maillog();
    assert.match(log, /to=<bob@mail\.test>, .*mailer=lmtp, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], dsn=4\.2\.2, stat=Deferred: host 127\.0\.0\.1\[127\.0\.0\.1\] said: 452 4\.2\.2 .*\(in reply to end of DATA command\)/);
    const alice = maildir('alice');
    assert.equal(alice.length, 3, 'the first test\'s message, this one, and the delay DSN about bob');
    assert.match(alice[1], /\nSubject: quota\n/);
    assert.match(alice[2], /Action: delayed/);
    assert.match(alice[2], /Final-Recipient: rfc822; ?bob@mail\.test/);
    assert.match(alice[2], /Diagnostic-Code: smtp; 452 4\.2\.2 /);
    assert.equal(maildir('bob').length, 1, 'bob has only the first test\'s message');
    const q = await sendmail(['-bp']);
    assert.match(q.stdout, /\(1 request\)/);
    assert.match(q.stdout, /\(Deferred: host 127\.0\.0\.1\[127\.0\.0\.1\] said: 452 4\.2\.2 <bob@mail\.test> .*\)\n +<bob@mail\.test>\n/, 'mailq: bob alone is left, with the reason');

    writeUserdb('100M');
    await sendmail(['-qf']);
    assert.equal(maildir('bob').length, 2, `${maillog()}`);
    assert.match(maildir('bob')[1], /\nSubject: quota\n/);
    assert.equal(maildir('alice').length, 3, 'alice is not sent it again');
    assert.match((await sendmail(['-bp'])).stdout, / is empty\n/);
  });

  test('lmtp:unix:/path with lmtp_recipient = local: over Dovecot\'s UNIX socket, RCPT TO the bare user', async () => {
    const sock = path.join(D, 'run', 'lmtp');
    setTransport([`mailbox_transport = lmtp:unix:${sock}`, 'lmtp_recipient = local'].join('\n'));
    await sendmail(['-odq', '-i', '-f', 'zed@else.test', 'alice'], 'Subject: unix\n\nover a socket\n');
    await sendmail(['-q']);
    const got = maildir('alice');
    assert.match(got.at(-1)!, /\nSubject: unix\n/, `${dovecot.log()}\n${maillog()}`);
    // Dovecot's reply names the recipient as given: the bare user.
    assert.match(maillog(), new RegExp(`to=<alice@mail\\.test>, .*mailer=lmtp, relay=${sock.replace(/[.]/g, '\\.')}, dsn=2\\.0\\.0, stat=Sent \\(<alice> \\S+ Saved\\)`));
  });

  test('two MX daemons, each its own queue, in front of one store: mail taken by either lands in the same Maildir', async (t) => {
    if (!fs.existsSync('/usr/bin/swaks')) return t.skip('swaks is not installed (test/install-deps.sh installs it as root)');
    const mxs: Array<{ sb: Sandbox; daemon?: RunningDaemon }> = [];
    try {
      for (const name of ['mx1', 'mx2']) {
        const mx = makeSandbox({ hostname: 'mail.test', users: USERS, extraConf: `mailbox_transport = lmtp:[127.0.0.1]:${dovecot.port}` });
        mxs.push({ sb: mx });
        mxs.at(-1)!.daemon = await startDaemon(mx, ['-bD', '-q1h'], ['smtp']);
        const port = mxs.at(-1)!.daemon!.ports.smtp;
        const r = spawnSync('swaks', ['--server', `127.0.0.1:${port}`, '--from', 'zed@else.test', '--to', 'alice@mail.test', '--header', `Subject: via ${name}`, '--body', `taken by ${name}`], { encoding: 'utf8', timeout: 30_000 });
        assert.equal(r.status, 0, r.stdout + r.stderr);
      }
      const before = maildir('alice').length;
      const subjects = () => maildir('alice').map((m) => /\nSubject: (via mx\d)\n/.exec(m)?.[1]).filter(Boolean);
      await waitFor(() => subjects().length === 2, 20_000, `both MX hosts' mail in Dovecot (${before} before)`);
      assert.deepEqual(subjects().sort(), ['via mx1', 'via mx2']);
      for (const [i, mx] of mxs.entries()) {
        // The run's log lines are written at the end of its batch, just after the hand-off.
        const sent = /to=<alice@mail\.test>, .*mailer=lmtp, relay=\[127\.0\.0\.1\] \[127\.0\.0\.1\], dsn=2\.0\.0, stat=Sent/;
        await waitFor(() => sent.test(fs.readFileSync(mx.sb.log, 'utf8')), 10_000, `mx${i + 1}'s log line`);
        assert.equal(mx.sb.readMbox('alice'), '', 'nothing in the MX host\'s own spool');
      }
    } finally {
      for (const mx of mxs) {
        await mx.daemon?.stop();
        mx.sb.cleanup();
      }
    }
  });
});

/** Dovecot with only LMTP, on 127.0.0.1:port and D/run/lmtp (open to mail_owner), Maildirs under D/home. */
function dovecotConf(D: string, port: number): string {
  return `base_dir = ${D}/run
state_dir = ${D}/state
log_path = ${D}/log
protocols = lmtp
listen = 127.0.0.1
ssl = no
first_valid_uid = 1
mail_fsync = never
mail_location = maildir:~/Maildir
# RCPT TO:<user@mail.test> finds the user "user".
auth_username_format = %Ln
postmaster_address = postmaster@mail.test
mail_plugins = quota
quota_full_tempfail = yes
plugin {
  quota = maildir:User quota
}
passdb {
  driver = passwd-file
  args = ${D}/users
}
userdb {
  driver = passwd-file
  args = ${D}/users
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = ${port}
  }
  unix_listener lmtp {
    mode = 0666
  }
}
`;
}
