// CONDSTORE and QRESYNC (RFC 7162) on the wire: each response raw against the
// in-process listeners, then imapflow (which enables both) against the real
// daemon (`sendmail -bD` with -C, loopback ports), and the index file: a
// version 1 index (before mod-sequences) still reads, UIDs and flags kept.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { decodeIndex, encodeIndex } from '../src/mailbox/folder-file.ts';
import { type RunningDaemon, waitFor } from './helpers.ts';
import { deliver, ImapClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';
import { type ImapDaemon, startImapDaemon } from './imap-daemon.ts';

/** UIDVALIDITY, HIGHESTMODSEQ and the MODSEQ of each UID, from a SELECT and a FETCH. */
async function state(c: ImapClient, mailbox = 'INBOX'): Promise<{ validity: number; highest: number; modseq: Map<number, number> }> {
  const sel = (await c.ok(`EXAMINE ${mailbox} (CONDSTORE)`)).untagged.join('\n');
  const validity = Number(/UIDVALIDITY (\d+)/.exec(sel)?.[1]);
  const highest = Number(/HIGHESTMODSEQ (\d+)/.exec(sel)?.[1]);
  const modseq = new Map<number, number>();
  for (const l of (await c.ok('UID FETCH 1:* (MODSEQ)')).untagged) {
    const m = /UID (\d+) MODSEQ \((\d+)\)/.exec(l);
    if (m) modseq.set(Number(m[1]), Number(m[2]));
  }
  await c.ok('UNSELECT');
  return { validity, highest, modseq };
}

describe('CONDSTORE and QRESYNC, raw', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob', 'carol', 'dave'] });
    for (const u of ['alice', 'bob', 'carol', 'dave']) for (const x of ['one', 'two', 'three', 'four']) deliver(s.sb, u, x);
  });
  after(() => s.close());

  test('capabilities, ENABLE, SELECT (CONDSTORE) with HIGHESTMODSEQ, FETCH MODSEQ and CHANGEDSINCE, STATUS HIGHESTMODSEQ', async () => {
    const c = await ImapClient.login(s.imap, 'alice');
    try {
      assert.match((await c.ok('CAPABILITY')).untagged[0], / CONDSTORE QRESYNC( |$)/);
      const plain = (await c.ok('SELECT INBOX')).untagged.join('\n');
      assert.doesNotMatch(plain, /HIGHESTMODSEQ/, 'not before CONDSTORE is on');
      assert.doesNotMatch((await c.ok('STORE 1 +FLAGS (\\Answered)')).untagged[0], /MODSEQ/);
      const sel = await c.ok('SELECT INBOX (CONDSTORE)');
      assert.match(sel.untagged.join('\n'), /^\* OK \[CLOSED\]/, 'the first mailbox is over');
      const highest = Number(/^\* OK \[HIGHESTMODSEQ (\d+)\]/m.exec(sel.untagged.join('\n'))?.[1]);
      assert.ok(highest > 1);
      const fetched = (await c.ok('FETCH 1:4 (UID MODSEQ)')).untagged;
      const mods = fetched.map((l) => Number(/MODSEQ \((\d+)\)/.exec(l)?.[1]));
      assert.equal(Math.max(...mods), highest, 'HIGHESTMODSEQ is the highest MODSEQ');
      assert.equal(new Set(mods).size, 4);

      // A change raises the message's MODSEQ above every other; CHANGEDSINCE finds only it.
      const stored = (await c.ok('STORE 3 +FLAGS (\\Flagged)')).untagged;
      assert.deepEqual(stored, [`* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (${highest + 1}))`], 'STORE answers with UID and MODSEQ once CONDSTORE is on');
      assert.deepEqual((await c.ok(`FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest})`)).untagged, [`* 3 FETCH (FLAGS (\\Flagged) MODSEQ (${highest + 1}))`]);
      assert.deepEqual((await c.ok(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${highest + 1})`)).untagged, []);
      // Storing what is already there changes nothing, and raises nothing.
      assert.deepEqual((await c.ok('STORE 3 +FLAGS (\\Flagged)')).untagged, [`* 3 FETCH (UID 3 FLAGS (\\Flagged) MODSEQ (${highest + 1}))`]);
      // Reading a body sets \Seen: the response tells UID and the new MODSEQ too.
      const read = (await c.ok('FETCH 4 (BODY[TEXT])')).untagged.join('\n');
      assert.match(read, new RegExp(`^\\* 4 FETCH \\(UID 4 BODY\\[TEXT\\] \\{\\d+\\}\\n[^]*MODSEQ \\(${highest + 2}\\) FLAGS \\(\\\\Seen\\)\\)$`));
      assert.match((await c.ok('STATUS INBOX (HIGHESTMODSEQ MESSAGES)')).untagged[0], new RegExp(`^\\* STATUS INBOX \\(HIGHESTMODSEQ ${highest + 2} MESSAGES 4\\)$`));
      for (const bad of ['FETCH 1 (FLAGS) (CHANGEDSINCE x)', 'FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)', 'FETCH 1 (FLAGS) (FOO 1)', 'SELECT INBOX (QRESYNC (1 1))', 'SELECT INBOX (FOO)']) {
        assert.equal((await c.run(bad)).status, 'BAD', bad);
      }
    } finally {
      c.close();
    }
  });

  test('STORE (UNCHANGEDSINCE n): [MODIFIED] names what changed since, .SILENT still tells the new MODSEQ', async () => {
    const c = await ImapClient.login(s.imap, 'bob');
    try {
      const { highest, modseq } = await state(c);
      await c.ok('SELECT INBOX');
      const since = modseq.get(2)!;
      // Messages 3 and 4 arrived after message 2's MODSEQ: they fail, 1 and 2 are stored.
      const r = await c.ok(`STORE 1:4 (UNCHANGEDSINCE ${since}) +FLAGS.SILENT (\\Seen)`);
      assert.equal(r.text, '[MODIFIED 3:4] STORE completed');
      assert.deepEqual(r.untagged, [`* 1 FETCH (UID 1 MODSEQ (${highest + 1}))`, `* 2 FETCH (UID 2 MODSEQ (${highest + 1}))`]);
      const u = await c.ok(`UID STORE 1:4 (UNCHANGEDSINCE ${highest}) FLAGS (\\Draft)`);
      assert.equal(u.text, '[MODIFIED 1:2] UID STORE completed');
      assert.deepEqual(u.untagged, [`* 3 FETCH (UID 3 FLAGS (\\Draft \\Recent) MODSEQ (${highest + 2}))`, `* 4 FETCH (UID 4 FLAGS (\\Draft \\Recent) MODSEQ (${highest + 2}))`]);
      assert.equal((await c.ok('STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Flagged)')).text, '[MODIFIED 1] STORE completed', 'UNCHANGEDSINCE 0 always fails');
      assert.equal((await c.run('STORE 1 (UNCHANGEDSINCE) +FLAGS (\\Flagged)')).status, 'BAD');
      // imapflow puts the modifier last, after the flag list: read as well.
      assert.equal((await c.ok('UID STORE 1 +FLAGS (\\Flagged) (UNCHANGEDSINCE 1)')).text, '[MODIFIED 1] UID STORE completed');
    } finally {
      c.close();
    }
  });

  test('SEARCH MODSEQ (and ESEARCH) adds the highest MODSEQ found; another session\'s change comes with its MODSEQ', async () => {
    const c = await ImapClient.login(s.imap, 'carol');
    const other = await ImapClient.login(s.imap, 'carol');
    try {
      const { modseq } = await state(c);
      await c.ok('SELECT INBOX');
      const m3 = modseq.get(3)!;
      assert.deepEqual((await c.ok(`SEARCH MODSEQ ${m3}`)).untagged, [`* SEARCH 3 4 (MODSEQ ${modseq.get(4)})`]);
      assert.deepEqual((await c.ok(`UID SEARCH MODSEQ "/flags/\\\\draft" all ${m3} NOT UID 4`)).untagged, [`* SEARCH 3 (MODSEQ ${m3})`]);
      assert.match((await c.ok(`SEARCH RETURN (COUNT) MODSEQ ${m3}`)).untagged[0], new RegExp(`^\\* ESEARCH \\(TAG "t\\d+"\\) COUNT 2 MODSEQ ${modseq.get(4)}$`));
      // RFC 4731 3.2: with MIN or MAX alone, the MODSEQ of the message(s) returned.
      const m2 = modseq.get(2)!;
      const es = async (cmd: string) => (await c.ok(cmd)).untagged.map((l) => l.replace(/^\* ESEARCH \(TAG "t\d+"\)/, '*'));
      assert.deepEqual(await es(`SEARCH RETURN (MIN) MODSEQ ${m2}`), [`* MIN 2 MODSEQ ${m2}`]);
      assert.deepEqual(await es(`SEARCH RETURN (MAX) MODSEQ ${m2}`), [`* MAX 4 MODSEQ ${modseq.get(4)}`]);
      assert.deepEqual(await es(`SEARCH RETURN (MIN MAX) MODSEQ ${m2} NOT 4`), [`* MIN 2 MAX 3 MODSEQ ${m3}`]);
      assert.deepEqual(await es(`UID SEARCH RETURN (ALL) MODSEQ ${m2}`), [`* UID ALL 2:4 MODSEQ ${modseq.get(4)}`]);
      assert.deepEqual((await c.ok('SEARCH MODSEQ 999999')).untagged, ['* SEARCH'], 'nothing found: no MODSEQ');
      assert.equal((await c.run('SEARCH MODSEQ "/flags/x" bogus 1')).status, 'BAD');
      // SORT too (RFC 7162's sort-data): the highest MODSEQ of the messages it names.
      // By subject ("two" > "three" > "four"): deliveries within one second tie on ARRIVAL (RFC 5256: then in mailbox order).
      assert.deepEqual((await c.ok(`SORT (REVERSE SUBJECT) UTF-8 MODSEQ ${m2}`)).untagged, [`* SORT 2 3 4 (MODSEQ ${modseq.get(4)})`]);
      assert.deepEqual((await c.ok(`UID SORT (ARRIVAL) UTF-8 MODSEQ ${m2} NOT 4`)).untagged, [`* SORT 2 3 (MODSEQ ${m3})`]);
      assert.deepEqual((await c.ok('SORT (ARRIVAL) UTF-8 MODSEQ 999999')).untagged, ['* SORT']);
      assert.deepEqual((await c.ok('SORT (ARRIVAL) UTF-8 2:3')).untagged, ['* SORT 2 3'], 'no MODSEQ key: no MODSEQ');

      await other.ok('SELECT INBOX');
      const st = (await other.ok('STORE 1 +FLAGS ($Work)')).untagged;
      assert.doesNotMatch(st[0], /MODSEQ/, 'the other session has not turned CONDSTORE on');
      const news = (await c.ok('NOOP')).untagged;
      assert.match(news.join('\n'), /^\* 1 FETCH \(UID 1 FLAGS \(\$Work \\Recent\) MODSEQ \(\d+\)\)$/m);
    } finally {
      c.close();
      other.close();
    }
  });

  test('QRESYNC: VANISHED for expunges, [HIGHESTMODSEQ] after EXPUNGE, SELECT (QRESYNC ...) and UID FETCH (CHANGEDSINCE n VANISHED)', async () => {
    const c = await ImapClient.login(s.imap, 'dave');
    try {
      assert.deepEqual((await c.ok('ENABLE QRESYNC')).untagged, ['* ENABLED QRESYNC']);
      const before = await state(c);
      await c.ok('SELECT INBOX');
      assert.match((await c.ok('STORE 2 +FLAGS (\\Deleted)')).untagged[0], /MODSEQ/);
      const ex = await c.ok('EXPUNGE');
      assert.deepEqual(ex.untagged, ['* VANISHED 2', '* 3 RECENT'], 'the \\Recent message gone: RECENT too (RFC 3501 7.3.2)');
      const highest = Number(/^\[HIGHESTMODSEQ (\d+)\]/.exec(ex.text)?.[1]);
      assert.ok(highest > before.highest + 1);
      await c.ok('UID STORE 3 +FLAGS (\\Answered)');

      const fetched = await c.ok(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${before.highest} VANISHED)`);
      assert.deepEqual(fetched.untagged[0], '* VANISHED (EARLIER) 2');
      assert.match(fetched.untagged[1], /^\* 2 FETCH \(UID 3 FLAGS \(\\Answered \\Recent\) MODSEQ \(\d+\)\)$/);
      assert.equal(fetched.untagged.length, 2);

      // A client that knew the mailbox at before.highest: what went, then what changed, for the UIDs it asks about.
      const sel = await c.ok(`SELECT INBOX (QRESYNC (${before.validity} ${before.highest} 1:4))`);
      const lines = sel.untagged;
      const at = lines.indexOf('* VANISHED (EARLIER) 2');
      assert.ok(at > 0, lines.join('\n'));
      assert.match(lines[at + 1], /^\* 2 FETCH \(UID 3 FLAGS \(\\Answered\) MODSEQ \(\d+\)\)$/);
      assert.equal(lines.length, at + 2);
      // Known UIDs narrow both; sequence match data that agrees up to UID 3 means nothing below it is new news.
      assert.deepEqual((await c.ok(`SELECT INBOX (QRESYNC (${before.validity} ${before.highest} 4))`)).untagged.filter((l) => /VANISHED|FETCH/.test(l)), []);
      const matched = await c.ok(`SELECT INBOX (QRESYNC (${before.validity} ${before.highest} 1:4 (1:2 1,3)))`);
      assert.ok(matched.untagged.includes('* VANISHED (EARLIER) 2'), 'the history is exact: the match data is not needed');
      // Another UIDVALIDITY: an ordinary SELECT.
      assert.deepEqual((await c.ok(`SELECT INBOX (QRESYNC (${before.validity + 1} 1))`)).untagged.filter((l) => /VANISHED|FETCH/.test(l)), []);
      assert.equal((await c.run(`SELECT INBOX (QRESYNC (${before.validity} 0))`)).status, 'BAD', 'the modseq is non-zero');
      assert.equal((await c.run('FETCH 1:* (FLAGS) (CHANGEDSINCE 1 VANISHED)')).status, 'BAD', 'VANISHED only with UID FETCH');
    } finally {
      c.close();
    }
  });

  test('a second session sees another\'s expunge as VANISHED; mod-sequences survive the folder being closed and opened', async () => {
    deliver(s.sb, 'alice', 'five');
    const a = await ImapClient.login(s.imap, 'alice');
    const b = await ImapClient.login(s.imap, 'alice');
    try {
      await a.ok('ENABLE QRESYNC');
      await a.ok('SELECT INBOX');
      await b.ok('SELECT INBOX');
      await b.ok('UID STORE 5 +FLAGS (\\Deleted)');
      await b.ok('UID EXPUNGE 5');
      assert.ok((await a.ok('NOOP')).untagged.includes('* VANISHED 5'));
    } finally {
      await a.logout();
      await b.logout();
    }
    const c = await ImapClient.login(s.imap, 'alice');
    try {
      const first = await state(c);
      await c.logout(); // the last session: the folder is released, its index written
      const d = await ImapClient.login(s.imap, 'alice');
      const again = await state(d);
      assert.deepEqual(again, first, 'the same UIDVALIDITY, HIGHESTMODSEQ and MODSEQs after the folder was released');
      await d.ok('ENABLE QRESYNC');
      const sel = await d.ok(`SELECT INBOX (QRESYNC (${first.validity} 1))`);
      assert.ok(sel.untagged.includes('* VANISHED (EARLIER) 5'), 'the expunge is remembered in the index');
      d.close();
    } finally {
      c.close();
    }
  });
});

describe('the index before mod-sequences', () => {
  test('a version 1 index reads with every MODSEQ 1; version 2 keeps modseqs and the expunge history', () => {
    const rec = { uid: 7, offset: 0, length: 100, fromLen: 30, headerLength: 40, size: 75, headerSize: 42, internalDate: 1e12, fp: 'abcdefghijkl', flags: 1, headerFlags: 0, keywords: 3, modseq: 12 };
    const state = {
      uidValidity: 99, uidNext: 8, recentUid: 7, keywords: ['a', 'b'], stamp: { dev: '1', ino: '2', size: 100, mtimeNs: '3' }, records: [rec],
      quoting: 'mboxrd' as const, highestModseq: 14, vanished: [[3, 13]] as Array<[number, number]>, vanishedFloor: 2,
    };
    const v2 = encodeIndex(state);
    assert.deepEqual(decodeIndex(v2), state);
    // The same index as version 1 wrote it: another magic, 68-byte records, no modseqs in the head.
    const headLen = v2.readUInt32LE(8);
    const head = JSON.parse(v2.toString('utf8', 12, 12 + headLen));
    delete head.highestModseq;
    delete head.vanished;
    delete head.vanishedFloor;
    const h1 = Buffer.from(JSON.stringify(head));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(h1.length);
    const v1 = Buffer.concat([Buffer.from('MTKIDX1\n'), len, h1, v2.subarray(12 + headLen, 12 + headLen + 68)]);
    const read = decodeIndex(v1);
    assert.deepEqual(read?.records, [{ ...rec, modseq: 1 }]);
    assert.equal(read?.uidValidity, 99);
    assert.equal(read?.highestModseq, undefined);
  });
});

describe('imapflow against the daemon', () => {
  let x: ImapDaemon | undefined;
  let d: RunningDaemon;
  before(async () => {
    x = await startImapDaemon('erin', ['one', 'two', 'three']);
    d = x.d;
  });
  after(async () => {
    await x?.stop();
  });

  const flow = (qresync: boolean) =>
    new ImapFlow({ host: '127.0.0.1', port: d.ports.imap, secure: false, auth: { user: 'erin', pass: PASSWORD }, logger: false, qresync, tls: { rejectUnauthorized: false }, clientInfo: { name: 'condstore-test', version: '1' } });

  test('CONDSTORE and QRESYNC enabled; highestModseq, changedSince, unchangedSince, status, and expunges as VANISHED', async () => {
    const f = flow(true);
    const g = flow(false);
    await f.connect();
    await g.connect();
    try {
      assert.ok(f.enabled.has('CONDSTORE') && f.enabled.has('QRESYNC'), [...f.enabled].join(' '));
      const box = await f.mailboxOpen('INBOX');
      assert.equal(typeof box.highestModseq, 'bigint');
      const start = box.highestModseq as bigint;
      const all = [];
      for await (const m of f.fetch('1:*', { uid: true, flags: true })) all.push(m);
      assert.equal(all.length, 3);
      assert.ok(all.every((m) => typeof m.modseq === 'bigint' && m.modseq <= start));

      assert.ok(await f.messageFlagsAdd({ uid: '2' }, ['\\Flagged'], { uid: true }));
      const changed = [];
      for await (const m of f.fetch('1:*', { uid: true, flags: true }, { uid: true, changedSince: start })) changed.push(m);
      assert.deepEqual(changed.map((m) => [m.uid, [...(m.flags ?? [])].includes('\\Flagged')]), [[2, true]]);
      assert.ok((changed[0].modseq as bigint) > start);

      // unchangedSince below message 3's modseq: nothing is stored.
      await f.messageFlagsAdd({ uid: '3' }, ['\\Seen'], { uid: true, unchangedSince: 1n });
      const three = await f.fetchOne('3', { flags: true }, { uid: true });
      assert.ok(three && !three.flags?.has('\\Seen'), JSON.stringify(three, (_k, v) => (typeof v === 'bigint' ? String(v) : v instanceof Set ? [...v] : v)));

      const st = await g.status('INBOX', { highestModseq: true, messages: true });
      assert.equal(st.messages, 3);
      assert.equal(st.highestModseq, changed[0].modseq);

      const gone: Array<{ uid?: number; vanished: boolean }> = [];
      f.on('expunge', (e) => gone.push(e));
      await g.mailboxOpen('INBOX');
      await g.messageDelete({ uid: '1' }, { uid: true });
      await f.noop();
      await waitFor(() => gone.length > 0, 5000, 'the expunge to reach the QRESYNC session');
      assert.deepEqual(gone.map((e) => [e.uid, e.vanished]), [[1, true]]);
    } finally {
      await f.logout();
      await g.logout();
    }
  });
});
