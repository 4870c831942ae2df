// IMAP4rev2 (RFC 9051) beside IMAP4rev1: both advertised, a session is rev1
// until ENABLE IMAP4rev2 (Appendix A). Raw commands against the in-process
// listeners show what each revision is sent (RECENT, \Recent and [UNSEEN n]
// for rev1 only; SELECT's LIST response, ESEARCH for every SEARCH, UTF-8
// mailbox names for rev2), then imapflow, which enables IMAP4rev2 by itself,
// against the real daemon, and s-nail (a rev1 client) beside a rev2 session.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ImapFlow } from 'imapflow';
import { decodeMutf7, encodeMutf7 } from '../src/server/imap-names.ts';
import type { RunningDaemon, Sandbox } from './helpers.ts';
import { deliver, ImapClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';
import { type ImapDaemon, startImapDaemon } from './imap-daemon.ts';

/** The untagged lines as text (the test client reads bytes as latin1; names of a rev2 session are UTF-8). */
const all = (r: { untagged: string[] }) => Buffer.from(r.untagged.join('\n'), 'latin1').toString('utf8');

describe('modified UTF-7 (RFC 3501 5.1.3)', () => {
  test('encodes and decodes as the RFC spells it; what is not modified UTF-7 is left alone', () => {
    const cases: Array<[string, string]> = [
      ['INBOX', 'INBOX'],
      ['Entwürfe', 'Entw&APw-rfe'],
      ['R&D', 'R&-D'],
      ['~peter/mail/台北/日本語', '~peter/mail/&U,BTFw-/&ZeVnLIqe-'],
      ['a😀b', 'a&2D3eAA-b'],
    ];
    for (const [utf8, mutf7] of cases) {
      assert.equal(encodeMutf7(utf8), mutf7);
      assert.equal(decodeMutf7(mutf7), utf8);
    }
    for (const bad of ['R&D', 'x&AGE-', '&Jjo', 'ü', '&Jjo!-']) assert.equal(decodeMutf7(bad), undefined, bad);
  });
});

describe('IMAP4rev1 and IMAP4rev2 sessions, raw', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob'] });
    for (const x of ['one', 'two', 'three']) deliver(s.sb, 'alice', x);
    for (const x of ['one', 'two']) deliver(s.sb, 'bob', x);
  });
  after(() => s.close());

  test('both revisions advertised; a rev1 session is served as before: RECENT, \\Recent, [UNSEEN n], SEARCH', async () => {
    const c = await ImapClient.login(s.imap, 'bob');
    try {
      assert.match(all(await c.ok('CAPABILITY')), /^\* CAPABILITY IMAP4rev1 IMAP4rev2 /);
      const sel = await c.ok('SELECT INBOX');
      assert.ok(sel.untagged.includes('* 2 RECENT'), all(sel));
      assert.ok(sel.untagged.includes('* OK [UNSEEN 1] First unseen'), all(sel));
      assert.doesNotMatch(all(sel), /^\* LIST /m);
      assert.deepEqual((await c.ok('SEARCH ALL')).untagged, ['* SEARCH 1 2']);
      assert.deepEqual((await c.ok('FETCH 1 (FLAGS)')).untagged, ['* 1 FETCH (FLAGS (\\Recent))']);
      assert.match(all(await c.ok('STATUS Sent (RECENT MESSAGES)')), /^\* STATUS Sent \(RECENT 0 MESSAGES 0\)$/);
    } finally {
      await c.logout();
    }
  });

  test('ENABLE IMAP4rev2: no RECENT, \\Recent or [UNSEEN n]; SELECT sends LIST; SEARCH answers ESEARCH; STATUS RECENT is refused', async () => {
    const c = await ImapClient.login(s.imap, 'alice');
    try {
      assert.deepEqual((await c.ok('ENABLE imap4rev2')).untagged, ['* ENABLED IMAP4rev2'], 'named as CAPABILITY names it');
      assert.deepEqual((await c.ok('ENABLE IMAP4rev2')).untagged, ['* ENABLED'], 'already on (RFC 5161 3.2)');
      const sel = await c.ok('SELECT INBOX');
      assert.doesNotMatch(all(sel), /RECENT|UNSEEN/);
      assert.ok(sel.untagged.includes('* 3 EXISTS'), all(sel));
      assert.ok(sel.untagged.includes('* LIST (\\NoInferiors) "/" INBOX'), all(sel));
      assert.match(sel.text, /^\[READ-WRITE\]/);
      assert.deepEqual((await c.ok('FETCH 1:* (FLAGS)')).untagged, ['* 1 FETCH (FLAGS ())', '* 2 FETCH (FLAGS ())', '* 3 FETCH (FLAGS ())']);
      const esearch = async (cmd: string) => (await c.ok(cmd)).untagged.map((l) => l.replace(/^\* ESEARCH \(TAG "t\d+"\)/, '* ESEARCH (TAG)'));
      assert.deepEqual(await esearch('SEARCH ALL'), ['* ESEARCH (TAG) ALL 1:3']);
      assert.deepEqual(await esearch('UID SEARCH 2:3'), ['* ESEARCH (TAG) UID ALL 2:3']);
      assert.deepEqual(await esearch('SEARCH SEEN'), ['* ESEARCH (TAG)'], 'no match: no ALL (RFC 4731 3.1)');
      assert.deepEqual(await esearch('SEARCH RETURN (COUNT) ALL'), ['* ESEARCH (TAG) COUNT 3']);
      assert.deepEqual((await c.ok('SEARCH RETURN (SAVE) 2')).untagged, [], 'SAVE alone answers nothing (RFC 5182 2.1)');
      const st = await c.run('STATUS INBOX (MESSAGES RECENT)');
      assert.equal(st.status, 'BAD', 'RECENT is not a status-att of RFC 9051');
      assert.match(all(await c.ok('STATUS Sent (MESSAGES DELETED SIZE)')), /^\* STATUS Sent \(MESSAGES 0 DELETED 0 SIZE 0\)$/);
      assert.equal((await c.run('LIST "" "*" RETURN (STATUS (RECENT))')).status, 'BAD');

      // New mail: EXISTS, no RECENT; and the rev2 session claimed no \Recent, so a rev1 session has them all.
      deliver(s.sb, 'alice', 'four');
      const news = (await c.ok('NOOP')).untagged;
      assert.deepEqual(news, ['* 4 EXISTS']);
      const old = await ImapClient.login(s.imap, 'alice');
      try {
        assert.ok((await old.ok('EXAMINE INBOX')).untagged.includes('* 4 RECENT'));
      } finally {
        await old.logout();
      }
    } finally {
      await c.logout();
    }
  });

  test('UTF-8 mailbox names in a rev2 session are the modified UTF-7 names of a rev1 session', async () => {
    const v2 = await ImapClient.login(s.imap, 'alice');
    const v1 = await ImapClient.login(s.imap, 'alice');
    try {
      await v2.ok('ENABLE IMAP4rev2');
      await v2.ok('CREATE "Entwürfe"');
      await v2.ok('CREATE "R&D"');
      assert.ok(fs.existsSync(path.join(s.sb.users.alice.home, 'mail', 'Entw&APw-rfe')), 'kept under its modified UTF-7 name');
      const l1 = all(await v1.ok('LIST "" "*"'));
      assert.match(l1, /^\* LIST \(\\NoInferiors\) "\/" Entw&APw-rfe$/m);
      assert.match(l1, /^\* LIST \(\\NoInferiors\) "\/" R&-D$/m);
      const l2 = all(await v2.ok('LIST "" "*"'));
      assert.match(l2, /^\* LIST \(\\NoInferiors\) "\/" \{9\}\nEntwürfe$/m, 'UTF-8, sent as a literal');
      assert.match(l2, /^\* LIST \(\\NoInferiors\) "\/" R&D$/m);
      assert.match(all(await v2.ok('LIST "" "Entw%"')), /Entwürfe/, 'patterns match the UTF-8 names');
      assert.equal((await v2.ok('LIST "" "Entw&APw-rfe"')).untagged.length, 0, 'the modified UTF-7 spelling is no rev2 name');

      await v1.ok('SELECT INBOX');
      await v1.ok('COPY 1 Entw&APw-rfe');
      const sel = await v2.ok('SELECT "Entwürfe"');
      assert.ok(sel.untagged.includes('* 1 EXISTS'), all(sel));
      assert.match(all(sel), /^\* LIST \(\\NoInferiors\) "\/" \{9\}\nEntwürfe$/m);
      assert.match(all(await v2.ok('STATUS "R&D" (MESSAGES)')), /^\* STATUS R&D \(MESSAGES 0\)$/);
      await v2.ok('RENAME "R&D" "Forschung & Entwicklung"');
      assert.match(all(await v1.ok('LIST "" "Forschung*"')), /"Forschung &- Entwicklung"/);
      await v2.ok('SUBSCRIBE "Entwürfe"');
      assert.match(all(await v1.ok('LSUB "" "*"')), /^\* LSUB \(\) "\/" Entw&APw-rfe$/m);
      await v2.ok('DELETE "Forschung & Entwicklung"');
    } finally {
      await v1.logout();
      await v2.logout();
    }
  });
});

describe('imapflow (which enables IMAP4rev2) against the daemon', () => {
  let x: ImapDaemon | undefined;
  let d: RunningDaemon;
  let sb: Sandbox;
  before(async () => {
    x = await startImapDaemon('erin', ['one', 'two', 'three']);
    ({ d, sb } = x);
  });
  after(async () => {
    await x?.stop();
  });

  test('a rev2 session: search by ESEARCH, UTF-8 folder names, STATUS DELETED, flags without \\Recent', async () => {
    const f = new ImapFlow({ host: '127.0.0.1', port: d.ports.imap, secure: false, auth: { user: 'erin', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await f.connect();
    try {
      assert.ok(f.enabled.has('IMAP4rev2') || f.enabled.has('IMAP4REV2'), [...f.enabled].join(' '));
      await f.mailboxOpen('INBOX');
      assert.deepEqual(await f.search({ seen: false }), [1, 2, 3]);
      assert.deepEqual(await f.search({ uid: '2:*' }, { uid: true }), [2, 3]);
      await f.messageFlagsAdd('2', ['\\Deleted']);
      const st = await f.status('INBOX', { messages: true, deleted: true, size: true });
      assert.equal(st.messages, 3);
      assert.equal(st.deleted, 1);
      assert.ok((st.size ?? 0) > 0);
      for await (const m of f.fetch('1:*', { flags: true })) assert.ok(!m.flags?.has('\\Recent'), [...(m.flags ?? [])].join(' '));

      await f.mailboxCreate('Brouillons élaborés');
      await f.messageCopy('1', 'Brouillons élaborés');
      const listed = (await f.list()).map((m) => m.path);
      assert.ok(listed.includes('Brouillons élaborés'), listed.join(', '));
      assert.ok(fs.existsSync(path.join(sb.users.erin.home, 'mail', encodeMutf7('Brouillons élaborés'))));
      const box = await f.status('Brouillons élaborés', { messages: true });
      assert.equal(box.messages, 1);
    } finally {
      await f.logout();
    }
  });
});

const execFileAsync = promisify(execFile);
const noSnail = spawnSync('s-nail', ['-V']).status !== 0 && 's-nail is not installed (test/install-deps.sh installs it)';

/** s-nail (an IMAP4rev1 client: it sends no ENABLE) on a user's INBOX over IMAP, running `commands` (-Y) in batch mode. */
async function snailImap(s: MailboxServer, user: string, commands: string[]): Promise<{ out: string; err: string }> {
  const home = path.join(s.sb.dir, 'snail-imap-home');
  fs.mkdirSync(home, { recursive: true });
  const url = `imap://${user}@127.0.0.1:${s.imap}`;
  const args = ['-n', '-N', '-#', '-S', 'v15-compat', '-S', `password=${PASSWORD}`, '-S', 'tls-verify=ignore', '-S', `folder=${url}`, ...commands.flatMap((c) => ['-Y', c]), '-Y', 'quit', '-f', url];
  const r = await execFileAsync('s-nail', args, { env: { PATH: process.env.PATH, HOME: home, MAIL: '/dev/null', LC_ALL: 'C.UTF-8' }, timeout: 60_000 });
  return { out: r.stdout, err: r.stderr };
}

describe('s-nail over IMAP, an IMAP4rev1 client beside a rev2 one', { skip: noSnail }, () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['frank'] });
    for (const x of ['first', 'second']) deliver(s.sb, 'frank', `for s-nail ${x}`, `body of ${x}\n`);
  });
  after(() => s.close());

  test('reads, flags and copies into a folder a rev2 session named in UTF-8', async () => {
    const v2 = await ImapClient.login(s.imap, 'frank');
    try {
      await v2.ok('ENABLE IMAP4rev2');
      await v2.ok('CREATE "Entwürfe"');
    } finally {
      await v2.logout();
    }
    const r = await snailImap(s, 'frank', ['headers', 'print 2', 'flag 1', 'copy 1 +Entwürfe']);
    assert.doesNotMatch(r.err, /error|fail/i, r.err);
    assert.match(r.out, /for s-nail first/);
    assert.match(r.out, /body of second/);
    const c = await ImapClient.login(s.imap, 'frank');
    try {
      await c.ok('ENABLE IMAP4rev2');
      const sel = await c.ok('EXAMINE "Entwürfe"');
      assert.ok(sel.untagged.includes('* 1 EXISTS'), sel.untagged.join('\n'));
      await c.ok('EXAMINE INBOX');
      const flags = (await c.ok('FETCH 1:2 (FLAGS)')).untagged.join('\n');
      assert.match(flags, /^\* 1 FETCH \(FLAGS \([^)]*\\Flagged/m, flags);
      assert.match(flags, /^\* 2 FETCH \(FLAGS \([^)]*\\Seen/m, 'printed: \\Seen');
    } finally {
      await c.logout();
    }
  });
});
