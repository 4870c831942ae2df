// Privilege separation (issue 9), .forward and :include: identities, through
// a root `sendmail -odi` (a short-lived master whose queue run is mail_owner's
// and whose reads and programs are each user's): A's .forward cannot make
// mailtk read a root-only file for it (nothing of the file reaches a mailbox,
// a bounce, the queue or the log), cannot run a program as the owner of a
// file it names (B), and a .forward owned by someone else or writable by its
// group is ignored with a log line naming the rule. A program in A's own
// .forward runs as A, and while it runs the tree is: sendmail root, its
// runner mailtk, A's agent and the program A.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import {
  BIN, IS_ROOT, type Sandbox, type TestUser,
  addSystemUsers, makeSandbox, processTree, removeSystemUsers, run, waitFor,
} from './helpers.ts';

const skip = IS_ROOT ? false : 'needs root';
const QUEUE_RETURN_S = 4;

let sb: Sandbox;
let A: TestUser;
let B: TestUser;
let canary: string;
let markers: string;
let seq = 0;

before(() => {
  if (!IS_ROOT) return;
  // Short, so that a message deferred once bounces at the next queue run (the bounce is checked too).
  sb = makeSandbox({ users: [], extraConf: `queue_return = ${QUEUE_RETURN_S}s` });
  [A, B] = addSystemUsers(sb, ['a', 'b']);
  canary = path.join(sb.dir, 'canary');
  fs.mkdirSync(canary, { mode: 0o700 });
  fs.chmodSync(canary, 0o700);
  fs.writeFileSync(path.join(canary, 'rootonly'), `secret-line@x\nsecret-line-two@x\n${B.name}\n`, { mode: 0o600 });
  // Where programs may leave markers: anyone may create files, no one may remove another's.
  markers = path.join(sb.dir, 'markers');
  fs.mkdirSync(markers);
  fs.chmodSync(markers, 0o1777);
});

after(() => {
  if (process.env.PRIVSEP_DEBUG && sb) console.log(logText());
  const left = IS_ROOT ? removeSystemUsers() : [];
  sb?.cleanup();
  assert.deepEqual(left, [], 'every account made for the test is removed');
});

const logText = () => (fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '');

/** A file of `owner`'s with this text and mode. */
function put(file: string, text: string, owner: TestUser, mode: number): void {
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, text, { mode });
  fs.chownSync(file, owner.uid, owner.gid);
  fs.chmodSync(file, mode);
}

/** Root submits to `to` and delivers before exiting (-odi); returns the subject used. */
function submit(to: TestUser): string {
  const subject = `privsep forward ${++seq}`;
  const r = run(sb, 'sendmail', ['-odi', '-i', to.name], `From: root@${sb.hostname}\nTo: ${to.name}\nSubject: ${subject}\n\nbody ${seq}\n`);
  assert.equal(r.status, 0, `sendmail -odi ${to.name}: ${r.stderr}`);
  return subject;
}

/** Every file under the sandbox but the canary whose bytes contain `needle`. */
function filesContaining(needle: string): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (p === canary) continue;
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && fs.readFileSync(p).includes(needle)) found.push(p);
    }
  };
  walk(sb.dir);
  return found;
}

test("a program in A's own .forward runs as A; the root sendmail -q's tree meanwhile", { skip }, async () => {
  const marker = path.join(markers, 'ran-as-a');
  const started = path.join(markers, 'started');
  const go = path.join(markers, 'go');
  const script = `cat >/dev/null; id -u > ${marker}; id -g >> ${marker}; id -G >> ${marker}; : > ${started}; i=0; while [ ! -e ${go} ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done`;
  put(path.join(A.home, '.forward'), `"|/bin/sh -c '${script}'"\n`, A, 0o644);
  // Queued now, delivered by a root `sendmail -q` (cron's way).
  const q = run(sb, 'sendmail', ['-odq', '-i', A.name], `Subject: for the program\n\nhello\n`);
  assert.equal(q.status, 0, q.stderr);
  const runner = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-q'], { env: sb.env, stdio: 'ignore' });
  const exited = new Promise<number | null>((r) => runner.once('exit', r));
  try {
    await waitFor(() => fs.existsSync(started), 20_000, 'the program to start');
    const tree = processTree(runner.pid!);
    const mailtk = spawnSync('getent', ['passwd', 'mailtk'], { encoding: 'utf8' }).stdout.split(':');
    const listing = tree.map((p) => `${p.pid} ppid ${p.ppid} ${p.comm} Uid ${p.uid.join(' ')} Gid ${p.gid.join(' ')} Groups ${p.groups.join(' ')} ${p.argv.slice(1, 4).join(' ')}`).join('\n');
    if (process.env.PRIVSEP_DEBUG) console.log(listing);
    const top = tree.find((p) => p.pid === runner.pid)!;
    assert.deepEqual(top.uid, [0, 0, 0, 0], `sendmail -q (the master of its run) is root\n${listing}`);
    const run_ = tree.filter((p) => p.argv.some((a) => a.endsWith('/runner.js')));
    assert.equal(run_.length, 1, `one queue run process\n${listing}`);
    assert.deepEqual(run_[0].uid, Array(4).fill(Number(mailtk[2])), `the queue run is mailtk's\n${listing}`);
    const agent = tree.filter((p) => p.argv.some((a) => a.endsWith('/agent.js')));
    assert.equal(agent.length, 1, `one agent\n${listing}`);
    assert.deepEqual(agent[0].uid, Array(4).fill(A.uid), `the agent is A\n${listing}`);
    const shells = tree.filter((p) => p.comm === 'sh' || p.comm === 'sleep');
    assert.ok(shells.length > 0, `the program is in the tree\n${listing}`);
    for (const p of tree.filter((x) => x !== top)) {
      assert.ok(!p.uid.includes(0) && !p.gid.includes(0) && !p.groups.includes(0), `nothing but sendmail itself has id 0: ${p.pid} ${p.comm}\n${listing}`);
    }
    for (const p of shells) assert.deepEqual([p.uid, p.gid], [Array(4).fill(A.uid), Array(4).fill(A.gid)], `the program runs as A:A\n${listing}`);
  } finally {
    fs.writeFileSync(go, '');
    assert.equal(await exited, 0, 'sendmail -q exits 0');
  }
  const [uid, gid] = fs.readFileSync(marker, 'utf8').split('\n');
  assert.equal(Number(uid), A.uid, 'the program ran as A');
  assert.equal(Number(gid), A.gid, "with A's group");
  assert.equal(fs.statSync(marker).uid, A.uid);
});

test(":include: of a root-only file in A's .forward: not read for A, nothing of it anywhere, also in the bounce", { skip }, async () => {
  put(path.join(A.home, '.forward'), `:include:${canary}/rootonly\n`, A, 0o644);
  const logBefore = logText().length;
  const submitted = Date.now();
  const subject = submit(A);
  assert.doesNotMatch(sb.readMbox(B.name), new RegExp(subject), 'the included list was not used (B is on it)');
  assert.doesNotMatch(sb.readMbox(A.name), new RegExp(subject), 'nor delivered to A as if the .forward were not there');
  assert.deepEqual(filesContaining('secret-line'), [], 'secret-line is in no mailbox, queue file or log line');
  const log = logText().slice(logBefore);
  assert.match(log, new RegExp(`include ${canary}/rootonly: permission denied`), `the refusal is logged with its reason\n${log}`);
  // Past queue_return, a root queue run returns it to the sender (root): the bounce says why, and nothing of the file.
  await new Promise((r) => setTimeout(r, Math.max(0, submitted + QUEUE_RETURN_S * 1000 + 300 - Date.now())));
  // The run returns it and delivers the return.
  for (let i = 0; i < 3 && !sb.readMbox('root').includes(subject); i++) {
    const q = run(sb, 'sendmail', ['-qf']);
    assert.equal(q.status, 0, q.stderr);
  }
  const bounce = sb.readMbox('root');
  assert.match(bounce, new RegExp(`Subject: ${subject}`), `the message came back to root\n${logText().slice(logBefore)}`);
  assert.match(bounce, /rootonly: permission denied/, 'the bounce gives the reason');
  assert.doesNotMatch(sb.readMbox(B.name), new RegExp(subject));
  assert.deepEqual(filesContaining('secret-line'), [], 'secret-line is in no mailbox, bounce, queue file or log line');
});

test(":include: of B's file with a program in A's .forward: nothing runs as B", { skip }, () => {
  const marker = path.join(markers, 'ran-as-b');
  const list = path.join(B.home, 'list');
  put(list, `"|/bin/sh -c 'cat >/dev/null; id -u > ${marker}'"\n`, B, 0o644);
  put(path.join(A.home, '.forward'), `:include:${list}\n`, A, 0o644);
  const logBefore = logText().length;
  submit(A);
  const ran = fs.existsSync(marker) ? fs.statSync(marker) : undefined;
  assert.ok(!ran || ran.uid !== B.uid, `the program did not run as B (marker owned by uid ${ran?.uid})`);
  assert.ok(!ran || ran.uid !== 0, 'the program did not run as root');
  assert.equal(ran, undefined, `ideally nothing ran at all (marker holds ${ran ? fs.readFileSync(marker, 'utf8').trim() : ''})`);
  const log = logText().slice(logBefore);
  assert.match(log, new RegExp(`${list}: owned by uid ${B.uid}, not by ${A.name}`), `the rule is named in the log\n${log}`);
});

test("a .forward owned by someone else, or writable by its group, is ignored with the rule in the log", { skip }, () => {
  const forward = path.join(A.home, '.forward');
  const cases: Array<[string, TestUser, number, RegExp]> = [
    ['owned by B', B, 0o644, new RegExp(`forward ${forward}: owned by uid ${B.uid}, not by its user ${A.name} or root; ignored`)],
    ['group-writable', A, 0o664, new RegExp(`forward ${forward}: group or world writable; ignored`)],
    ['world-writable', A, 0o646, new RegExp(`forward ${forward}: group or world writable; ignored`)],
  ];
  for (const [what, owner, mode, rule] of cases) {
    put(forward, `${B.name}\n`, owner, mode);
    const logBefore = logText().length;
    const subject = submit(A);
    const log = logText().slice(logBefore);
    assert.match(log, rule, `${what}: the log names the rule\n${log}`);
    assert.match(sb.readMbox(A.name), new RegExp(`Subject: ${subject}\n`), `${what}: the mail stays with A`);
    assert.doesNotMatch(sb.readMbox(B.name), new RegExp(`Subject: ${subject}\n`), `${what}: the .forward did not send it to B`);
  }
});
