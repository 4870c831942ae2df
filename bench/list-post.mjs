// bench/list-post.mjs: one 10 KB post to a MEMBERS-member mailing list
// (src/lists), to the same list with VERP on, and the same post to the same
// recipients through an :include: alias, in one sandbox, rounds alternating
// (A B C A B C) because the machine is shared. Each round: `sendmail -odq`
// queues the post, then one `sendmail -q` delivers it. Two times from the
// start of the submission:
//   queued:    every member's copy is in the queue. For the list, when the
//              fan-out entry (one entry, every member a recipient) appears;
//              with VERP, when the last of its MEMBERS entries (one a member)
//              appears; for the alias, when the submission has committed its
//              entry (its recipients are expanded at delivery, not before).
//   delivered: the run has written every member's mailbox.
// Prints each round, then medians and the ratios to the include.
// Usage: node bench/list-post.mjs [MEMBERS] [ROUNDS]   (bench/list-post.sh runs it)

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MEMBERS = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const H = 'bench.test';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-bench-list-'));
fs.chmodSync(dir, 0o755);
const conf = path.join(dir, 'mailtk.conf');
const spool = path.join(dir, 'mail');
const queue = path.join(dir, 'q');
const names = Array.from({ length: MEMBERS }, (_, i) => `m${String(i).padStart(5, '0')}`);
const addresses = names.map((n) => `${n}@${H}`);

function setup() {
  const passwd = ['root:x:0:0:root:/root:/bin/bash', 'poster:x:29999:29999::/nonexistent:/bin/sh'];
  names.forEach((n, i) => passwd.push(`${n}:x:${30000 + i}:${30000 + i}::/nonexistent:/bin/sh`));
  fs.writeFileSync(path.join(dir, 'passwd'), passwd.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'members.txt'), addresses.join('\n') + '\n');
  fs.writeFileSync(path.join(dir, 'aliases'), `postmaster: root\ninc: :include:${dir}/members.txt\n`);
  fs.writeFileSync(
    conf,
    [
      `hostname = ${H}`,
      `queue_dir = ${queue}`,
      `mail_spool_dir = ${spool}`,
      `alias_file = ${dir}/aliases`,
      `alias_db = ${dir}/aliases.cdb`,
      `local_host_names_file = ${dir}/local-host-names`,
      `access_file = ${dir}/access`,
      `log_file = ${dir}/maillog`,
      `pid_file = ${dir}/mailtk.pid`,
      `user_db = ${dir}/passwd`,
      `list_dir = ${dir}/lists`,
      `dns_servers = 127.0.0.1:9`,
      `delivery_mode = queue`,
      `max_recipients = ${MEMBERS + 100}`,
      '',
    ].join('\n'),
  );
  must('newaliases', []);
  must('mailtk', ['list', 'create', `list@${H}`, '--owner', `poster@${H}`, '--policy', 'anyone']);
  must('mailtk', ['list', 'add', `list@${H}`, ...addresses]);
  must('mailtk', ['list', 'create', `verp@${H}`, '--owner', `poster@${H}`, '--policy', 'anyone', '--verp']);
  must('mailtk', ['list', 'add', `verp@${H}`, ...addresses]);
}

function must(cmd, args, input) {
  const r = spawnSync(path.join(ROOT, 'bin', cmd), ['-C', conf, ...args], { input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.slice(0, 4).join(' ')}: exit ${r.status}: ${r.stderr}`);
  return r;
}

function exec(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(ROOT, 'bin', cmd), ['-C', conf, ...args], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd}: exit ${code}: ${err}`))));
    child.stdin.end(input ?? '');
  });
}

const body = `From: poster@${H}\nSubject: bench post\n\n` + ('x'.repeat(71) + '\n').repeat(140);

async function round(target) {
  fs.rmSync(spool, { recursive: true, force: true });
  fs.rmSync(queue, { recursive: true, force: true });
  fs.mkdirSync(spool, { mode: 0o1777 });
  fs.chmodSync(spool, 0o1777);
  const t0 = performance.now();
  await exec('sendmail', ['-odq', '-i', '-f', `poster@${H}`, target], body);
  const submitted = performance.now();
  const before = new Set(fs.readdirSync(queue).filter((f) => f.startsWith('qf')));
  const expected = target.startsWith('verp') ? MEMBERS : 1;
  const seen = new Set();
  let fanOut;
  const watcher = fs.watch(queue, (_event, name) => {
    if (fanOut !== undefined || !name || !name.startsWith('qf') || before.has(name)) return;
    seen.add(name);
    if (seen.size >= expected) fanOut = performance.now();
  });
  await exec('sendmail', ['-q']);
  const done = performance.now();
  watcher.close();
  const delivered = fs.readdirSync(spool).filter((f) => !f.includes('.') && fs.statSync(path.join(spool, f)).size > 0).length;
  if (delivered !== MEMBERS) throw new Error(`${target}: ${delivered} of ${MEMBERS} mailboxes written`);
  const left = fs.readdirSync(queue).filter((f) => f.startsWith('qf'));
  if (left.length) throw new Error(`${target}: ${left.length} entries left in the queue`);
  return { queued: (target.startsWith('inc') ? submitted : fanOut ?? done) - t0, delivered: done - t0 };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const s = (ms) => (ms / 1000).toFixed(2) + ' s';

try {
  setup();
  const results = { list: [], verp: [], include: [] };
  for (let i = 0; i < ROUNDS; i++) {
    for (const [kind, target] of [['list', `list@${H}`], ['verp', `verp@${H}`], ['include', `inc@${H}`]]) {
      const r = await round(target);
      results[kind].push(r);
      console.log(`round ${i + 1} ${kind.padEnd(7)} queued ${s(r.queued)}  delivered ${s(r.delivered)}`);
    }
  }
  const m = (kind, k) => median(results[kind].map((r) => r[k]));
  for (const kind of ['list', 'verp', 'include']) {
    console.log(`median ${kind.padEnd(7)} (${MEMBERS} members): queued ${s(m(kind, 'queued'))}, delivered ${s(m(kind, 'delivered'))}`);
  }
  for (const kind of ['list', 'verp']) {
    const target = kind === 'list' ? ' (target <= 1.2)' : '';
    console.log(`ratio ${kind}/include: delivered ${(m(kind, 'delivered') / m('include', 'delivered')).toFixed(2)}${target}, queued ${(m(kind, 'queued') / m('include', 'queued')).toFixed(2)}`);
  }
  console.log(`ratio verp/list: delivered ${(m('verp', 'delivered') / m('list', 'delivered')).toFixed(2)}, queued ${(m('verp', 'queued') / m('list', 'queued')).toFixed(2)}`);
} finally {
  if (!process.env.KEEP) fs.rmSync(dir, { recursive: true, force: true });
}
