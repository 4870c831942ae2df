// Privilege separation (issue 9), the identities: `sendmail -bD` started as
// root, with real accounts, real sockets and the real binaries. During an
// open SMTP session, a POP3 session and an IMAP session (logged in, INBOX
// selected), after a delivery, the daemon's process tree (walked through
// /proc) must be: the master root; the worker and the queue runner
// mail_owner (mailtk) in every uid and gid field; each logged-in user's agent
// that user in every uid field and the user's primary group in every gid
// field, with the mail group among its supplementary groups; and no process
// but the master with uid 0 or gid 0 anywhere. A mailbox a delivery creates
// is the user's, group mail, mode 0600.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import {
  IS_ROOT, type ProcIdentity, type RunningDaemon, type Sandbox, type TestUser,
  addSystemUsers, makeSandbox, setMailPassword, processTree, removeSystemUsers, startDaemon, waitFor,
} from './helpers.ts';
import { LineClient } from './mailbox/harness.ts';

const PASSWORD = 'Privsep-s3cret';
const skip = IS_ROOT ? false : 'needs root';

let sb: Sandbox;
let daemon: RunningDaemon | undefined;
let userA: TestUser;
let userB: TestUser;
let mailGid: number;
let owner: { uid: number; gid: number };
/** A supplementary group of A's, which its agent must carry. */
const extraGroup = `psv${process.pid}g`;
let extraGid = -1;
const open: LineClient[] = [];

before(async () => {
  if (!IS_ROOT) return;
  sb = makeSandbox({ users: [] });
  [userA, userB] = addSystemUsers(sb, ['a', 'b']);
  const g = spawnSync('groupadd', [extraGroup], { encoding: 'utf8' });
  assert.equal(g.status, 0, `groupadd: ${g.stderr}`);
  extraGid = Number(spawnSync('getent', ['group', extraGroup], { encoding: 'utf8' }).stdout.split(':')[2]);
  const m = spawnSync('usermod', ['-a', '-G', extraGroup, userA.name], { encoding: 'utf8' });
  assert.equal(m.status, 0, `usermod: ${m.stderr}`);
  mailGid = Number(spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2]);
  for (const u of [userA, userB]) setMailPassword(sb, u.name, PASSWORD);
  daemon = await startDaemon(sb, ['-bD', '-q1h']);
  const o = spawnSync('getent', ['passwd', 'mailtk'], { encoding: 'utf8' }).stdout.split(':');
  owner = { uid: Number(o[2]), gid: Number(o[3]) };
});

after(async () => {
  for (const c of open) c.close();
  const code = await daemon?.stop();
  const left = IS_ROOT ? removeSystemUsers() : [];
  if (extraGid >= 0) spawnSync('groupdel', [extraGroup]);
  sb?.cleanup();
  assert.deepEqual(left, [], 'every account made for the test is removed');
  if (daemon) assert.equal(code, 0, `the daemon exits 0 on SIGTERM (stderr: ${daemon.stderr()})`);
});

/** Send a line (unless undefined) and read lines up to one that `done` accepts. */
async function talk(c: LineClient, line: string | undefined, done: (l: string) => boolean): Promise<string[]> {
  if (line !== undefined) c.send(line);
  const got: string[] = [];
  for (;;) {
    const l = await c.line(10_000);
    if (l === undefined) throw new Error(`connection closed after ${JSON.stringify(got)}`);
    got.push(l);
    if (done(l)) return got;
  }
}
const smtpFinal = (l: string) => /^\d{3} /.test(l);

/** A whole SMTP transaction through the daemon. */
async function smtpSend(to: string, subject: string): Promise<void> {
  const c = await LineClient.connect(daemon!.ports.smtp);
  try {
    await talk(c, undefined, smtpFinal);
    await talk(c, 'EHLO client.test', smtpFinal);
    assert.match((await talk(c, 'MAIL FROM:<sender@client.test>', smtpFinal)).at(-1)!, /^250 /);
    assert.match((await talk(c, `RCPT TO:<${to}@${sb.hostname}>`, smtpFinal)).at(-1)!, /^250 /);
    assert.match((await talk(c, 'DATA', smtpFinal)).at(-1)!, /^354 /);
    c.send(`From: sender@client.test\r\nTo: ${to}@${sb.hostname}\r\nSubject: ${subject}\r\n\r\nbody of ${subject}`);
    assert.match((await talk(c, '.', smtpFinal)).at(-1)!, /^250 /);
    await talk(c, 'QUIT', smtpFinal);
  } finally {
    c.close();
  }
}

function describe(p: ProcIdentity): string {
  return `pid ${p.pid} (${p.argv.slice(1).join(' ').slice(0, 120)}) Uid ${p.uid.join(' ')} Gid ${p.gid.join(' ')} Groups ${p.groups.join(' ')}`;
}

/** Which part of the daemon a process is. */
function roleOf(p: ProcIdentity, masterPid: number): string {
  if (p.pid === masterPid) return 'master';
  const at = p.argv.findIndex((a) => a.endsWith('/agent.js'));
  // A session agent started ahead of the next login: root until the master names its user (as Dovecot's imap processes).
  if (at >= 0 && p.argv[at + 1] === '--spare') {
    if (p.uid[0] === 0) return 'spare';
    // A spare that became a user's: its argv still says --spare.
    const name = spawnSync('getent', ['passwd', String(p.uid[0])], { encoding: 'utf8' }).stdout.split(':')[0];
    return `session:${name}`;
  }
  // argv: agent.js NAME UID GID EXTRA_GID; the extra group is mail for a delivery agent, the user's own for a session's.
  if (at >= 0) return `${p.argv[at + 4] === String(mailGid) ? 'deliver' : 'session'}:${p.argv[at + 1]}`;
  if (p.env.MAILTK_ROLE === 'worker') return 'worker';
  if (p.argv.some((a) => a.endsWith('/runner.js')) && p.argv.includes('--serve')) return 'runner';
  return `other:${p.comm}`;
}

/** Every process but the master: no 0 in any uid, gid or supplementary group field. */
function noRootOutsideMaster(tree: ProcIdentity[], master: number, roles: Map<number, string>, listing: string): void {
  for (const p of tree) {
    if (p.pid === master || roles.get(p.pid) === 'spare') continue;
    assert.ok(!p.uid.includes(0), `no uid 0 outside the master: ${roles.get(p.pid)} ${describe(p)}\n${listing}`);
    assert.ok(!p.gid.includes(0), `no gid 0 outside the master: ${roles.get(p.pid)} ${describe(p)}\n${listing}`);
    assert.ok(!p.groups.includes(0), `no group 0 outside the master: ${roles.get(p.pid)} ${describe(p)}\n${listing}`);
  }
}

function userGroups(name: string): number[] {
  return spawnSync('id', ['-G', name], { encoding: 'utf8' }).stdout.trim().split(/\s+/).map(Number);
}

test('identities of the master, worker, runner and user agents during SMTP, POP3 and IMAP sessions', { skip }, async () => {
  // A delivery to each user through the daemon (the runner hands it to the user's agent).
  await smtpSend(userA.name, 'first for a');
  await smtpSend(userB.name, 'first for b');
  await waitFor(() => sb.readMbox(userA.name).includes('first for a') && sb.readMbox(userB.name).includes('first for b'), 20_000, 'both deliveries');

  // The mailbox a delivery created: the user's, group mail, 0600.
  for (const u of [userA, userB]) {
    const st = fs.lstatSync(sb.mbox(u.name));
    assert.ok(st.isFile(), `${u.name}'s mailbox is a regular file`);
    assert.equal(st.uid, u.uid, `${u.name}'s mailbox is owned by ${u.name}`);
    assert.equal(st.gid, mailGid, `${u.name}'s mailbox has group mail`);
    assert.equal(st.mode & 0o7777, 0o600, `${u.name}'s mailbox has mode 0600, not ${(st.mode & 0o7777).toString(8)}`);
  }

  // An SMTP session left open, past EHLO and MAIL.
  const smtp = await LineClient.connect(daemon!.ports.smtp);
  open.push(smtp);
  assert.match((await talk(smtp, undefined, smtpFinal)).at(-1)!, /^220 /);
  await talk(smtp, 'EHLO client.test', smtpFinal);
  assert.match((await talk(smtp, 'MAIL FROM:<sender@client.test>', smtpFinal)).at(-1)!, /^250 /);

  // A POP3 session of B, logged in.
  const pop = await LineClient.connect(daemon!.ports.pop3);
  open.push(pop);
  assert.match((await pop.line())!, /^\+OK/);
  assert.match((await talk(pop, `USER ${userB.name}`, (l) => /^[+-]/.test(l))).at(-1)!, /^\+OK/);
  assert.match((await talk(pop, `PASS ${PASSWORD}`, (l) => /^[+-]/.test(l))).at(-1)!, /^\+OK/);
  assert.match((await talk(pop, 'STAT', (l) => /^[+-]/.test(l))).at(-1)!, /^\+OK 1 /);

  // An IMAP session of A, logged in, INBOX selected.
  const imap = await LineClient.connect(daemon!.ports.imap);
  open.push(imap);
  assert.match((await imap.line())!, /^\* OK/);
  assert.match((await talk(imap, `a1 LOGIN ${userA.name} ${PASSWORD}`, (l) => l.startsWith('a1 '))).at(-1)!, /^a1 OK/);
  const sel = await talk(imap, 'a2 SELECT INBOX', (l) => l.startsWith('a2 '));
  assert.match(sel.at(-1)!, /^a2 OK/);
  assert.ok(sel.includes('* 1 EXISTS'), sel.join('\n'));

  // Another delivery while the sessions are open.
  await smtpSend(userA.name, 'second for a');
  await waitFor(() => sb.readMbox(userA.name).includes('second for a'), 20_000, 'the second delivery');

  const master = daemon!.child.pid!;
  // A snapshot of the tree; taken again (up to 5 times) while a short-lived helper is in it, each one checked.
  let tree: ProcIdentity[] = [];
  let roles = new Map<number, string>();
  let listing = '';
  for (let i = 0; i < 5; i++) {
    tree = processTree(master);
    roles = new Map(tree.map((p) => [p.pid, roleOf(p, master)]));
    listing = tree.map((p) => `${roles.get(p.pid)}: ${describe(p)}`).join('\n');
    noRootOutsideMaster(tree, master, roles, listing);
    if (![...roles.values()].some((r) => r.startsWith('other:'))) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const byRole = (r: string) => tree.filter((p) => roles.get(p.pid) === r);

  if (process.env.PRIVSEP_DEBUG) console.log(listing);
  // The master: root.
  const [m] = byRole('master');
  assert.deepEqual(m.uid, [0, 0, 0, 0], `the master is root\n${listing}`);

  // The worker and the runner: mail_owner in every field.
  for (const role of ['worker', 'runner']) {
    const ps = byRole(role);
    assert.equal(ps.length, 1, `exactly one ${role}\n${listing}`);
    assert.deepEqual(ps[0].uid, Array(4).fill(owner.uid), `the ${role} runs as mailtk (uid ${owner.uid})\n${listing}`);
    assert.deepEqual(ps[0].gid, Array(4).fill(owner.gid), `the ${role} has mailtk's group (gid ${owner.gid})\n${listing}`);
  }

  // Each user: one session agent (logged in), with the user's own groups only, and the delivery agent
  // of the delivery just made (it stays 30 s), with the mail group besides.
  for (const u of [userA, userB]) {
    for (const role of ['session', 'deliver'] as const) {
      const ps = byRole(`${role}:${u.name}`);
      assert.equal(ps.length, 1, `one ${role} agent for ${u.name}\n${listing}`);
      const [a] = ps;
      assert.deepEqual(a.uid, Array(4).fill(u.uid), `${u.name}'s ${role} agent has real, effective, saved and fs uid ${u.uid}\n${listing}`);
      assert.deepEqual(a.gid, Array(4).fill(u.gid), `${u.name}'s ${role} agent has gid ${u.gid} in every field\n${listing}`);
      if (role === 'deliver') assert.ok(a.groups.includes(mailGid), `${u.name}'s delivery agent has the mail group\n${listing}`);
      else assert.ok(!a.groups.includes(mailGid), `${u.name}'s session agent does not have the mail group\n${listing}`);
      if (u === userA) assert.ok(a.groups.includes(extraGid), `${u.name}'s ${role} agent keeps its supplementary group ${extraGroup} (${extraGid})\n${listing}`);
      const allowed = new Set([...userGroups(u.name), ...(role === 'deliver' ? [mailGid] : [])]);
      for (const g of a.groups) assert.ok(allowed.has(g), `${u.name}'s ${role} agent has group ${g}, which it should not\n${listing}`);
    }
  }

  // At most one spare session agent, the master's own child, which has been told no user yet.
  const spares = tree.filter((p) => roles.get(p.pid) === 'spare');
  assert.ok(spares.length <= 1, `one spare at most\n${listing}`);
  for (const p of spares) assert.equal(p.ppid, master, `the spare is the master's child\n${listing}`);

  // Nothing else lives in the tree (a helper would be listed above with its identity).
  const unknown = tree.filter((p) => roles.get(p.pid)!.startsWith('other:'));
  assert.deepEqual(unknown.map(describe), [], `only the master, worker, runner and agents\n${listing}`);

  // The sessions still work after the snapshot.
  assert.match((await talk(smtp, `RCPT TO:<${userA.name}@${sb.hostname}>`, smtpFinal)).at(-1)!, /^250 /);
  assert.match((await talk(pop, 'STAT', (l) => /^[+-]/.test(l))).at(-1)!, /^\+OK 1 /);
  const noop = await talk(imap, 'a3 NOOP', (l) => l.startsWith('a3 '));
  assert.match(noop.at(-1)!, /^a3 OK/);
  assert.match((await talk(imap, 'a4 LOGOUT', (l) => l.startsWith('a4 '))).at(-1)!, /^a4 OK/);
  assert.match((await talk(pop, 'QUIT', (l) => /^[+-]/.test(l))).at(-1)!, /^\+OK/);
  await talk(smtp, 'QUIT', smtpFinal);
});

test('the log is the master\'s: one file, written by all the processes, naming the identities', { skip }, () => {
  const text = fs.readFileSync(sb.log, 'utf8');
  assert.match(text, new RegExp(`master \\(pid ${daemon!.child.pid}, root\\): workers run as mailtk \\(uid ${owner.uid}\\)`));
  assert.match(text, new RegExp(`to=<?${userA.name}@`), 'the deliveries are logged');
  const st = fs.statSync(sb.log);
  assert.equal(st.uid, 0, 'the log file is root\'s (the master opened it)');
  assert.equal(st.mode & 0o002, 0, 'the log file is not world-writable');
});
