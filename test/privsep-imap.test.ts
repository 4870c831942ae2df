// Privilege separation (issue 9), IMAP attacks: a real ordinary account A,
// logged in to `sendmail -bD` started as root, plants symbolic links (its own,
// lchown'd to A) at every level of its folder tree and sends every IMAP
// command that takes a mailbox name through them. Each attack must fail, and
// nothing outside A's own files may change: the files of a root-owned 0700
// canary directory keep their bytes, owner and mode, no name appears in or
// leaves it, another account B's mailbox stays byte for byte, and the spool
// keeps its names. Then the /tmp backup attack on mbox rewrites (A plants
// files named as the old crash backup of B's mailbox, B's session rewrites
// it), and a LIST pattern that backtracks exponentially against a long
// folder name, which must neither hang A's session nor the SMTP listener.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  IS_ROOT, type RunningDaemon, type Sandbox, type TestUser,
  addSystemUsers, makeSandbox, setMailPassword, processTree, removeSystemUsers, run, startDaemon,
} from './helpers.ts';
import { LineClient } from './mailbox/harness.ts';

const PASSWORD = 'Privsep-imap-s3cret';
const skip = IS_ROOT ? false : 'needs root';
const SECRET = 'CANARY-SECRET-7c1f';

let sb: Sandbox;
let daemon: RunningDaemon | undefined;
let A: TestUser;
let B: TestUser;
let mailGid: number;
let canary: string;
const planted: string[] = []; // files this test put in the real /tmp

before(async () => {
  if (!IS_ROOT) return;
  sb = makeSandbox({ users: [] });
  [A, B] = addSystemUsers(sb, ['a', 'b']);
  mailGid = Number(spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2]);
  for (const u of [A, B]) setMailPassword(sb, u.name, PASSWORD);
  // B's mailbox, delivered the ordinary way (B:mail 0600).
  for (const subject of ['b one', 'b two', 'b three']) {
    const r = run(sb, 'sendmail', ['-odi', '-i', B.name], `From: friend@else.test\nTo: ${B.name}\nSubject: ${subject}\n\nbody of ${subject}, for B only\n`);
    assert.equal(r.status, 0, `sendmail to B: ${r.stderr}`);
  }
  assert.equal(fs.statSync(sb.mbox(B.name)).uid, B.uid);
  makeCanary();
  daemon = await startDaemon(sb, ['-bD', '-q1h']);
});

after(async () => {
  const code = await daemon?.stop();
  const left = IS_ROOT ? removeSystemUsers() : [];
  for (const f of planted) fs.rmSync(f, { force: true });
  sb?.cleanup();
  assert.deepEqual(left, [], 'every account made for the test is removed');
  if (daemon) assert.equal(code, 0, `the daemon exits 0 on SIGTERM (stderr: ${daemon.stderr()})`);
});

// ------------------------------------------------------------ the canary and what must not change

/** root:root 0700, with files of known bytes, owners and modes, and two directories. */
function makeCanary(): void {
  canary = path.join(sb.dir, 'canary');
  fs.mkdirSync(canary, { mode: 0o700 });
  fs.chmodSync(canary, 0o700);
  const mbox = (n: string) => `From root@canary.test Thu Jan  1 00:00:00 2026\nSubject: ${SECRET} ${n}\n\n${SECRET} body ${n}\n\n`;
  const files: Array<[string, string, number]> = [
    ['f1', mbox('f1'), 0o600],
    ['f2', `${SECRET} plain text\n`, 0o644],
    ['d/.keep', `${SECRET} hidden in d\n`, 0o600],
    ['own/.keep', `${SECRET} where own's index would go\n`, 0o600],
    ['INBOX/.keep', `${SECRET} where INBOX's index would go\n`, 0o600],
  ];
  for (const [name, text, mode] of files) {
    fs.mkdirSync(path.dirname(path.join(canary, name)), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(canary, name), text, { mode });
    fs.chmodSync(path.join(canary, name), mode);
  }
}

/** Everything under a directory (itself included): type, owner, mode, and bytes of files. */
function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (p: string, rel: string) => {
    const st = fs.lstatSync(p);
    const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? `link->${fs.readlinkSync(p)}` : 'other';
    const bytes = st.isFile() ? createHash('sha256').update(fs.readFileSync(p)).digest('hex').slice(0, 16) : '';
    out[rel] = `${kind} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${bytes}`;
    if (st.isDirectory()) for (const n of fs.readdirSync(p).sort()) walk(path.join(p, n), rel ? `${rel}/${n}` : n);
  };
  walk(dir, '');
  return out;
}

interface World {
  canary: Record<string, string>;
  bMbox: string;
  bStat: string;
  spoolNames: string[];
}

function world(): World {
  const st = fs.lstatSync(sb.mbox(B.name), { throwIfNoEntry: false });
  return {
    canary: snapshotTree(canary),
    bMbox: st ? fs.readFileSync(sb.mbox(B.name)).toString('latin1') : '(missing)',
    bStat: st ? `${st.isFile()} ${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)} ${st.nlink}` : '(missing)',
    spoolNames: fs.readdirSync(sb.spool).sort(),
  };
}

function assertUnchanged(before: World, what: string): void {
  const now = world();
  assert.deepEqual(now.canary, before.canary, `${what}: the canary directory is unchanged (bytes, owners, modes, names)`);
  assert.equal(now.bStat, before.bStat, `${what}: B's mailbox keeps its type, owner, mode and links`);
  assert.ok(now.bMbox === before.bMbox, `${what}: B's mailbox is byte-identical`);
  assert.deepEqual(now.spoolNames, before.spoolNames, `${what}: no name appeared in or left the spool`);
}

// ------------------------------------------------------------ A's folder tree, with links planted

type Layout = 'mail-link' | 'folder-file' | 'folder-dir' | 'deep-dir' | 'index' | 'index-folder' | 'index-file' | 'subscriptions' | 'spool';

const A_INBOX = (n: number) =>
  Array.from({ length: n }, (_, i) => `From a@own.test Thu Jan  1 00:00:0${i} 2026\nSubject: a's own ${i + 1}\n\nA's own message ${i + 1}\n\n`).join('');

/** As root, rebuild A's ~/mail (and INBOX) with one planted link, all of it A's. */
function plant(layout: Layout): void {
  const mail = path.join(A.home, 'mail');
  fs.rmSync(mail, { recursive: true, force: true });
  const inbox = sb.mbox(A.name);
  fs.rmSync(inbox, { force: true });
  fs.writeFileSync(inbox, A_INBOX(2), { mode: 0o600 });
  fs.chownSync(inbox, A.uid, mailGid);
  const link = (target: string, at: string) => {
    fs.symlinkSync(target, at);
    fs.lchownSync(at, A.uid, A.gid);
  };
  if (layout === 'mail-link') return link(canary, mail);
  fs.mkdirSync(mail, { mode: 0o700 });
  fs.chownSync(mail, A.uid, A.gid);
  const own = path.join(mail, 'own');
  fs.writeFileSync(own, 'From a@own.test Thu Jan  1 00:00:00 2026\nSubject: in own\n\nkept in own\n\n', { mode: 0o600 });
  fs.chownSync(own, A.uid, A.gid);
  if (layout === 'folder-file') link(path.join(canary, 'f1'), path.join(mail, 'f'));
  if (layout === 'folder-dir') link(canary, path.join(mail, 'sub'));
  if (layout === 'deep-dir') {
    fs.mkdirSync(path.join(mail, 'real'), { mode: 0o700 });
    fs.chownSync(path.join(mail, 'real'), A.uid, A.gid);
    link(canary, path.join(mail, 'real', 'deeper'));
  }
  if (layout === 'index') link(canary, path.join(mail, '.imap'));
  if (layout === 'index-folder' || layout === 'index-file') {
    fs.mkdirSync(path.join(mail, '.imap'), { mode: 0o700 });
    fs.chownSync(path.join(mail, '.imap'), A.uid, A.gid);
  }
  if (layout === 'index-folder') {
    link(path.join(canary, 'own'), path.join(mail, '.imap', 'own'));
    link(path.join(canary, 'INBOX'), path.join(mail, '.imap', 'INBOX'));
    link(path.join(canary, 'd'), path.join(mail, '.imap', 'target'));
  }
  if (layout === 'index-file') {
    for (const dir of ['own', 'INBOX']) {
      fs.mkdirSync(path.join(mail, '.imap', dir), { mode: 0o700 });
      fs.chownSync(path.join(mail, '.imap', dir), A.uid, A.gid);
      link(path.join(canary, 'f2'), path.join(mail, '.imap', dir, 'mailtk.index'));
      link(path.join(canary, 'f1'), path.join(mail, '.imap', dir, 'mailtk.cache'));
    }
    link(path.join(canary, 'f2'), path.join(mail, '.imap', '.uidvalidity'));
  }
  if (layout === 'subscriptions') link(path.join(canary, 'f1'), path.join(mail, '.subscriptions'));
  if (layout === 'spool') link(sb.spool, path.join(mail, 'sp'));
}

// ------------------------------------------------------------ a small IMAP client

class Imap {
  private n = 0;
  private constructor(private c: LineClient) {}

  static async login(user: TestUser): Promise<Imap> {
    const c = await LineClient.connect(daemon!.ports.imap);
    const greeting = await c.line();
    assert.match(greeting ?? '', /^\* OK/);
    const s = new Imap(c);
    const r = await s.cmd(`LOGIN ${user.name} ${PASSWORD}`);
    assert.match(r.status, /^OK/, `login of ${user.name}: ${r.lines.join(' | ')}`);
    return s;
  }

  /** One command (a literal goes as LITERAL+); its untagged lines and the tagged status. */
  async cmd(line: string, literal?: string, timeoutMs = 10_000): Promise<{ status: string; lines: string[] }> {
    const tag = `t${++this.n}`;
    if (literal === undefined) this.c.send(`${tag} ${line}`);
    else this.c.socket.write(`${tag} ${line} {${Buffer.byteLength(literal)}+}\r\n${literal}\r\n`);
    const lines: string[] = [];
    for (;;) {
      const l = await this.c.line(timeoutMs);
      if (l === undefined) return { status: 'CLOSED', lines };
      if (l.startsWith(`${tag} `)) return { status: l.slice(tag.length + 1), lines };
      lines.push(l);
    }
  }

  close(): void {
    this.c.close();
  }
}

const MESSAGE = 'From: a@own.test\r\nSubject: appended by A\r\n\r\nappended by A\r\n';

interface Attack {
  layout: Layout;
  /** The commands of one session; the last one is the attack. */
  steps: Array<string | [string, string]>;
  /** The attack's tagged reply must not be OK (false: it acts on A's own files only, any reply will do). */
  mustFail: boolean;
  /** Names that must not appear in any reply (LIST, LSUB). */
  hidden?: RegExp;
}

const sel = 'SELECT INBOX';
const attacks: Attack[] = [
  // ~/mail itself is a link to the canary directory.
  ...['SELECT f1', 'EXAMINE f1', 'CREATE new', 'CREATE newdir/', 'DELETE f1', 'DELETE d', 'RENAME f1 moved', 'RENAME INBOX moved',
    'SUBSCRIBE INBOX', 'UNSUBSCRIBE INBOX', 'STATUS f1 (MESSAGES UIDNEXT)'].map((c) => ({ layout: 'mail-link' as const, steps: [c], mustFail: true })),
  { layout: 'mail-link', steps: [['APPEND f1', MESSAGE]], mustFail: true },
  { layout: 'mail-link', steps: [sel, 'COPY 1 f1'], mustFail: true },
  { layout: 'mail-link', steps: [sel, 'MOVE 1 f1'], mustFail: true },
  { layout: 'mail-link', steps: ['LIST "" "*"'], mustFail: false, hidden: /\b(f1|f2|d|own)\b|CANARY/ },
  { layout: 'mail-link', steps: ['LSUB "" "*"'], mustFail: false, hidden: /CANARY/ },
  // A folder file ~/mail/f is a link to a canary file.
  ...['SELECT f', 'EXAMINE f', 'STATUS f (MESSAGES)', 'CREATE f/x'].map((c) => ({ layout: 'folder-file' as const, steps: [c], mustFail: true })),
  { layout: 'folder-file', steps: [['APPEND f', MESSAGE]], mustFail: true },
  { layout: 'folder-file', steps: [sel, 'COPY 1 f'], mustFail: true },
  { layout: 'folder-file', steps: [sel, 'MOVE 1 f'], mustFail: true },
  { layout: 'folder-file', steps: ['SELECT f', 'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE'], mustFail: true },
  // These act on the link itself, which is A's: only the canary must stay as it is.
  ...['DELETE f', 'RENAME f g', 'RENAME own f', 'SUBSCRIBE f', 'UNSUBSCRIBE f'].map((c) => ({ layout: 'folder-file' as const, steps: [c], mustFail: false })),
  { layout: 'folder-file', steps: ['LIST "" "*"'], mustFail: false, hidden: /CANARY/ },
  // A folder directory ~/mail/sub is a link to the canary directory.
  ...['SELECT sub/f1', 'EXAMINE sub/f1', 'STATUS sub/f1 (MESSAGES)', 'CREATE sub/new', 'CREATE sub/newdir/', 'DELETE sub/f1', 'DELETE sub/d',
    'RENAME sub/f1 own2', 'RENAME own sub/own', 'RENAME INBOX sub/inbox'].map((c) => ({ layout: 'folder-dir' as const, steps: [c], mustFail: true })),
  { layout: 'folder-dir', steps: [['APPEND sub/f1', MESSAGE]], mustFail: true },
  { layout: 'folder-dir', steps: [sel, 'COPY 1 sub/f1'], mustFail: true },
  { layout: 'folder-dir', steps: [sel, 'MOVE 1 sub/f1'], mustFail: true },
  { layout: 'folder-dir', steps: ['SELECT sub/f1', 'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE'], mustFail: true },
  { layout: 'folder-dir', steps: ['SUBSCRIBE sub/f1'], mustFail: false },
  { layout: 'folder-dir', steps: ['LIST "" "*"'], mustFail: false, hidden: /sub\/|CANARY/ },
  { layout: 'folder-dir', steps: ['LIST "" "sub/*"'], mustFail: false, hidden: /sub\/|CANARY/ },
  // A directory one level down, ~/mail/real/deeper, is a link to the canary directory.
  ...['SELECT real/deeper/f1', 'EXAMINE real/deeper/f1', 'STATUS real/deeper/f1 (MESSAGES)', 'CREATE real/deeper/new', 'CREATE real/deeper/x/',
    'DELETE real/deeper/f1', 'DELETE real/deeper/d', 'RENAME real/deeper/f1 own2', 'RENAME own real/deeper/own'].map((c) => ({ layout: 'deep-dir' as const, steps: [c], mustFail: true })),
  { layout: 'deep-dir', steps: [['APPEND real/deeper/f1', MESSAGE]], mustFail: true },
  { layout: 'deep-dir', steps: [sel, 'COPY 1 real/deeper/f1'], mustFail: true },
  { layout: 'deep-dir', steps: [sel, 'MOVE 1 real/deeper/f1'], mustFail: true },
  { layout: 'deep-dir', steps: ['LIST "" "*"'], mustFail: false, hidden: /deeper\/|CANARY/ },
  // The index directory ~/mail/.imap is a link to the canary directory: any reply, but nothing written there.
  ...['SELECT INBOX', 'SELECT own', 'EXAMINE own', 'STATUS own (MESSAGES UIDVALIDITY)', 'STATUS INBOX (MESSAGES)', 'CREATE newone', 'DELETE own',
    'RENAME own renamed'].map((c) => ({ layout: 'index' as const, steps: [c], mustFail: false })),
  { layout: 'index', steps: [['APPEND own', MESSAGE]], mustFail: false },
  { layout: 'index', steps: [sel, 'COPY 1 own'], mustFail: false },
  { layout: 'index', steps: [sel, 'MOVE 1 own'], mustFail: false },
  { layout: 'index', steps: [sel, 'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE'], mustFail: false },
  // One folder's index directory (~/mail/.imap/own, .imap/INBOX, and RENAME's target) is a link into the canary.
  ...['SELECT own', 'SELECT INBOX', 'STATUS own (MESSAGES UIDVALIDITY)', 'DELETE own', 'RENAME own renamed', 'RENAME own target', 'RENAME INBOX target']
    .map((c) => ({ layout: 'index-folder' as const, steps: [c], mustFail: false })),
  { layout: 'index-folder', steps: [['APPEND own', MESSAGE]], mustFail: false },
  { layout: 'index-folder', steps: [sel, 'STORE 1 +FLAGS (\\Deleted)', 'EXPUNGE', 'COPY 1 own'], mustFail: false },
  // The index files themselves (mailtk.index, mailtk.cache, .uidvalidity) are links to canary files.
  ...['SELECT own', 'EXAMINE own', 'STATUS own (MESSAGES UIDVALIDITY)', 'DELETE own', 'RENAME own renamed', 'CREATE newone']
    .map((c) => ({ layout: 'index-file' as const, steps: [c], mustFail: false })),
  { layout: 'index-file', steps: [['APPEND own', MESSAGE]], mustFail: false },
  { layout: 'index-file', steps: [sel, 'STORE 1 +FLAGS (\\Flagged)', 'FETCH 1:* (FLAGS ENVELOPE)', 'COPY 1 own', 'CLOSE'], mustFail: false },
  // ~/mail/.subscriptions is a link to a canary file.
  ...['SUBSCRIBE own', 'UNSUBSCRIBE own'].map((c) => ({ layout: 'subscriptions' as const, steps: [c], mustFail: false })),
  { layout: 'subscriptions', steps: ['LSUB "" "*"'], mustFail: false, hidden: /CANARY|f1/ },
  // ~/mail/sp is a link to the spool directory, where B's mailbox is.
  { layout: 'spool', steps: ['SELECT "sp/B"', 'STORE 1:* +FLAGS (\\Deleted)', 'EXPUNGE'], mustFail: true },
  ...['EXAMINE "sp/B"', 'STATUS "sp/B" (MESSAGES)', 'DELETE "sp/B"', 'RENAME "sp/B" stolen', 'RENAME own "sp/nobody"', 'RENAME INBOX "sp/nobody"',
    'CREATE "sp/nobody"', 'CREATE "sp/newdir/"', 'SUBSCRIBE "sp/B"'].map((c) => ({ layout: 'spool' as const, steps: [c], mustFail: !c.startsWith('SUBSCRIBE') })),
  { layout: 'spool', steps: [['APPEND "sp/B"', MESSAGE]], mustFail: true },
  { layout: 'spool', steps: [sel, 'COPY 1 "sp/B"'], mustFail: true },
  { layout: 'spool', steps: [sel, 'MOVE 1 "sp/B"'], mustFail: true },
];

/** "sp/B" stands for B's real name in the spool. */
const withNames = (line: string) => line.replace(/"sp\/B"/g, `"sp/${B?.name}"`);

describe('symlink attacks by A over IMAP', { skip }, () => {
  const failures: string[] = [];

  for (const a of attacks) {
    const label = `${a.layout}: ${a.steps.map((s) => (typeof s === 'string' ? s : s[0])).join(' ; ')}`;
    test(label, async () => {
      plant(a.layout);
      const before = world();
      const s = await Imap.login(A);
      const replies: string[] = [];
      let last = { status: '', lines: [] as string[] };
      try {
        for (const step of a.steps) {
          last = typeof step === 'string' ? await s.cmd(withNames(step)) : await s.cmd(withNames(step[0]), step[1]);
          replies.push(`${typeof step === 'string' ? step : step[0]} -> ${last.status}`, ...last.lines);
        }
        await s.cmd('LOGOUT');
      } finally {
        s.close();
      }
      const transcript = replies.join('\n');
      if (process.env.PRIVSEP_DEBUG) console.log(`${label}\n  ${transcript.replace(/\n/g, '\n  ')}`);
      try {
        assertUnchanged(before, label);
        if (a.mustFail) assert.doesNotMatch(last.status, /^OK/, `${label}: the attack is refused\n${transcript}`);
        if (a.hidden) for (const l of last.lines) assert.doesNotMatch(l, a.hidden, `${label}: nothing of the canary is shown\n${transcript}`);
        for (const l of replies) assert.doesNotMatch(l, new RegExp(SECRET), `${label}: no canary bytes in any reply\n${transcript}`);
      } catch (e) {
        failures.push(`${label}\n  ${(e as Error).message.split('\n')[0]}\n  ${transcript.replace(/\n/g, '\n  ')}`);
        // Put the world back for the next attack (as root): B's mailbox and the spool as they were.
        restore(before);
        throw e;
      }
    });
  }

  after(() => {
    if (failures.length && process.env.PRIVSEP_DEBUG) console.log(failures.join('\n\n'));
  });
});

/** After a failed attack: B's mailbox and the spool's names as before (the canary cannot be changed by A's agent as this test sets it up). */
function restore(before: World): void {
  const mbox = sb.mbox(B.name);
  fs.rmSync(mbox, { force: true });
  fs.writeFileSync(mbox, Buffer.from(before.bMbox, 'latin1'), { mode: 0o600 });
  fs.chownSync(mbox, B.uid, mailGid);
  for (const n of fs.readdirSync(sb.spool)) if (!before.spoolNames.includes(n)) fs.rmSync(path.join(sb.spool, n), { recursive: true, force: true });
  fs.rmSync(path.join(A.home, 'mail'), { recursive: true, force: true });
}

// ------------------------------------------------------------ the old /tmp crash backup

describe('the rewrite backup in /tmp', { skip }, () => {
  test("A's files named like B's old crash backup are never replayed into B's mailbox", async () => {
    const mbox = path.resolve(sb.mbox(B.name));
    const original = fs.readFileSync(mbox);
    const st = fs.statSync(mbox);
    const tag = createHash('sha256').update(mbox).digest('hex').slice(0, 12);
    const exact = path.join(os.tmpdir(), `.mailtk-rewrite.${path.basename(mbox)}.${tag}`);
    // What the old recovery accepted: a header for this very file (path, dev, ino, sizes), then the content.
    const content = Buffer.alloc(original.length, ' ');
    Buffer.from(`From evil@a.test Thu Jan  1 00:00:00 2026\nSubject: PLANTED-BY-A\n\nPLANTED-BY-A\n`).copy(content);
    content[content.length - 1] = 0x0a;
    const header = { v: 1, path: mbox, dev: st.dev, ino: st.ino, start: 0, newEnd: original.length, oldEnd: original.length, oldTail: null };
    const backup = Buffer.concat([Buffer.from(`mailtk-rewrite ${JSON.stringify(header)}\n`), content]);
    const names = [exact, `${exact}.new`, path.join(os.tmpdir(), `.mailtk-rewrite.${path.basename(mbox)}.000000000000`), path.join(os.tmpdir(), `.mailtk-rewrite.${path.basename(mbox)}.x`)];
    for (const f of names) {
      planted.push(f);
      fs.rmSync(f, { force: true });
      fs.writeFileSync(f, backup, { mode: 0o644 });
      fs.chownSync(f, A.uid, A.gid);
    }
    plant('folder-file'); // A's own tree, as a real user has it
    const before = world();

    const s = await Imap.login(B);
    const transcript: string[] = [];
    try {
      for (const line of ['SELECT INBOX', 'STORE 1 +FLAGS (\\Flagged)', 'CLOSE', 'SELECT INBOX', 'FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])', 'LOGOUT']) {
        const r = await s.cmd(line);
        transcript.push(`${line} -> ${r.status}`, ...r.lines);
      }
    } finally {
      s.close();
    }
    const text = transcript.join('\n');
    const now = fs.readFileSync(mbox, 'latin1');
    assert.doesNotMatch(now, /PLANTED-BY-A/, `B's mailbox does not take A's planted content\n${text}`);
    assert.doesNotMatch(text, /PLANTED-BY-A/, `B's session shows none of A's content\n${text}`);
    for (const subject of ['b one', 'b two', 'b three']) assert.ok(now.includes(`Subject: ${subject}\n`), `B keeps "${subject}"\n${text}`);
    assert.match(text, /^STORE 1 \+FLAGS \(\\Flagged\) -> OK/m, `B's STORE works\n${text}`);
    assert.match(now, /X-Status: F|Flagged/, `the flag B stored was written by the rewrite\n${now.slice(0, 400)}`);
    const after = fs.statSync(mbox);
    assert.deepEqual([after.uid, after.gid, after.mode & 0o7777], [st.uid, st.gid, st.mode & 0o7777], "B's mailbox keeps owner and mode");
    assert.deepEqual(snapshotTree(canary), before.canary);
    // The planted files are A's own and stay A's (nothing rewrote them as B).
    for (const f of names) {
      const p = fs.lstatSync(f, { throwIfNoEntry: false });
      if (p) assert.equal(p.uid, A.uid, `${f} is still A's`);
    }
  });
});

// ------------------------------------------------------------ LIST that backtracks

describe('a LIST pattern that backtracks exponentially', { skip }, () => {
  test('answers within 2 s, and the SMTP listener greets within 1 s meanwhile', async () => {
    plant('folder-file');
    const s = await Imap.login(A);
    const long = 'a'.repeat(200);
    try {
      const created = await s.cmd(`CREATE ${long}`);
      assert.match(created.status, /^OK/, `A may create a folder with a 200-character name: ${created.status}`);
      const pattern = `${'*a'.repeat(17)}*ab`;
      const started = Date.now();
      const listing = s.cmd(`LIST "" "${pattern}"`, undefined, 2_000).then(
        (r) => ({ ...r, ms: Date.now() - started }),
        (e: Error) => ({ status: `no answer: ${e.message.slice(0, 80)}`, lines: [] as string[], ms: Date.now() - started }),
      );
      await new Promise((r) => setTimeout(r, 100));
      const greetMs = await smtpGreetingMs();
      const r = await listing;
      if (process.env.PRIVSEP_DEBUG) console.log(`LIST: ${r.status} ${r.ms} ms ${r.lines.join(' | ')}; greeting ${greetMs} ms`);
      assert.ok(greetMs < 1000, `the SMTP greeting arrives within 1 s while A's LIST runs (took ${greetMs} ms)`);
      assert.ok(r.ms < 2000 && /^OK/.test(r.status), `LIST "" "${pattern}" answers within 2 s (status ${r.status}, ${r.ms} ms)`);
      assert.deepEqual(r.lines, [], 'no name matches (none ends in b)');
    } finally {
      s.close();
      killStuckAgent(A);
    }
  });
});

/** Milliseconds from connect to the 220 line. */
function smtpGreetingMs(): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = Date.now();
    const c = net.connect(daemon!.ports.smtp, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      resolve(Date.now() - t);
    }, 5_000);
    c.on('data', (d) => {
      buf += d;
      if (/^220 .*\r\n/.test(buf)) {
        clearTimeout(timer);
        c.end('QUIT\r\n');
        resolve(Date.now() - t);
      }
    });
    c.on('error', reject);
  });
}

/** An agent still busy a second after its session closed is stuck: end it (it is this test daemon's child). */
function killStuckAgent(u: TestUser): void {
  const busy = () =>
    processTree(daemon!.child.pid!).filter((p) => p.argv.some((x) => x.endsWith('/agent.js')) && p.uid[0] === u.uid && cpuBusy(p.pid));
  for (const p of busy()) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** True when the process is running on a CPU (state R). */
function cpuBusy(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('R');
  } catch {
    return false;
  }
}
