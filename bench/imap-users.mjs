// Driver of bench/imap-users.sh (issue 9): many IMAP users logged in at once.
//
//   node imap-users.mjs measure CONFIG.json SERVER ROUND BUDGET_S  -> one JSON line on stdout
//   node imap-users.mjs report CONFIG.json RESULTS.jsonl          -> the table
//
// measure: against one running server, logs in user 0 (LOGIN, SELECT INBOX,
// FETCH 1:* (FLAGS), and stays logged in), samples the server's memory, then
// logs in every other user, CONCURRENCY at a time, each the same way and
// staying in, and samples again; then logs everyone out. Raw sockets, so the
// client costs nothing to parse. A login's time runs from the TCP connect to
// the tagged OK of LOGIN. SELECT must show every message and FETCH must return
// one FLAGS line for each, or the run fails.
//
// Memory is PSS as smem counts it (the Pss of /proc/PID/smaps_rollup: each
// page shared by k processes counts 1/k to each), summed over the server's
// whole process tree: the pid in its pid file and every descendant, found by
// walking the parent pid in /proc/*/stat again at every sample, since
// processes come and go (a server made of a master, workers and one process
// per user is counted whole; a process that detaches from the tree is not).
// A sample is the median of 5 readings 0.4 s apart after 1.5 s of quiet.
//
// report: medians over rounds per server, and mailtk/Dovecot ratios.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Nearest-rank percentile. */
const pct = (a, p) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)];
};
const WAIT_MS = 120_000;

function readUsers(file) {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [name, password, uid, gid] = l.split('\t');
      return { name, password, uid: Number(uid), gid: Number(gid) };
    });
}

/** One IMAP connection: send lines, wait for the greeting or a tagged reply. */
class Conn {
  constructor(port) {
    this.buf = '';
    this.waiter = null;
    this.dead = null;
    this.sock = net.connect({ host: '127.0.0.1', port });
    this.sock.setNoDelay(true);
    this.sock.on('data', (d) => {
      this.buf += d.toString('latin1');
      this.poke();
    });
    this.sock.on('error', (e) => this.fail(e));
    this.sock.on('close', () => this.fail(new Error('connection closed by the server')));
  }
  fail(e) {
    this.dead ??= e;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.reject(e);
    }
  }
  poke() {
    if (!this.waiter) return;
    const { re, from } = this.waiter;
    re.lastIndex = Math.max(0, from - 2);
    const m = re.exec(this.buf);
    if (!m) {
      this.waiter.from = Math.max(0, this.buf.length - 300);
      return;
    }
    const end = m.index + m[0].length;
    const text = this.buf.slice(0, end);
    this.buf = this.buf.slice(end);
    const w = this.waiter;
    this.waiter = null;
    clearTimeout(w.timer);
    w.resolve({ status: m[1], text });
  }
  /** Resolves with the text up to and including the line `re` matches (group 1 = status). */
  until(re, what) {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.fail(new Error(`no reply to ${what} in ${WAIT_MS / 1000} s`)), WAIT_MS);
      this.waiter = {
        re,
        from: 0,
        timer,
        resolve,
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.poke();
    });
  }
  async command(tag, line) {
    this.sock.write(`${tag} ${line}\r\n`);
    const r = await this.until(new RegExp(`(?:^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`, 'g'), line.split(' ')[0]);
    if (r.status !== 'OK') throw new Error(`${line.split(' ')[0]}: ${r.text.trim().split('\r\n').pop()}`);
    return r.text;
  }
  close() {
    this.sock.destroy();
  }
}

const quoted = (s) => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** Log in, open INBOX and read every message's flags; returns the open connection and the login time. */
async function loginUser(port, user, messages) {
  const t0 = performance.now();
  const c = new Conn(port);
  try {
    const g = await c.until(/^\* (OK|PREAUTH|BYE)[^\r\n]*\r\n/g, 'the greeting');
    if (g.status !== 'OK') throw new Error(`greeting: ${g.text.trim()}`);
    await c.command('a1', `LOGIN ${quoted(user.name)} ${quoted(user.password)}`);
    const ms = performance.now() - t0;
    const sel = await c.command('a2', 'SELECT INBOX');
    const exists = Number(/\* (\d+) EXISTS/.exec(sel)?.[1]);
    if (exists !== messages) throw new Error(`SELECT INBOX: ${exists} messages, not ${messages}`);
    const fetched = await c.command('a3', 'FETCH 1:* (FLAGS)');
    const n = fetched.match(/(?:^|\r\n)\* \d+ FETCH /g)?.length ?? 0;
    if (n !== messages) throw new Error(`FETCH 1:* (FLAGS): ${n} replies, not ${messages}`);
    return { conn: c, ms };
  } catch (e) {
    c.close();
    throw new Error(`${user.name}: ${e.message}`);
  }
}

/** Every pid of the tree under root (root included), by parent pids in /proc/PID/stat. */
function treePids(root) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let st;
    try {
      st = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
    } catch {
      continue; // gone
    }
    const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
    if (!kids.has(ppid)) kids.set(ppid, []);
    kids.get(ppid).push(Number(d));
  }
  const out = [];
  const queue = [root];
  while (queue.length) {
    const p = queue.shift();
    out.push(p);
    queue.push(...(kids.get(p) ?? []));
  }
  return out;
}

function rootPid(pidfile) {
  const pid = Number(fs.readFileSync(pidfile, 'utf8').trim().split(/\s+/)[0]);
  if (!Number.isInteger(pid) || pid <= 1 || !fs.existsSync(`/proc/${pid}`)) throw new Error(`${pidfile}: no live pid`);
  return pid;
}

/** PSS (kB) summed over the tree, its process count; a process we may not read fails the run. */
function treePss(pidfile) {
  const root = rootPid(pidfile);
  let kb = 0;
  let procs = 0;
  for (const pid of treePids(root)) {
    let text;
    try {
      text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch (e) {
      if (e.code === 'ENOENT' || e.code === 'ESRCH') continue; // exited meanwhile
      throw new Error(`cannot read /proc/${pid}/smaps_rollup: ${e.message}`);
    }
    const m = /^Pss:\s+(\d+) kB/m.exec(text);
    if (!m) continue; // exited between open and read (empty rollup)
    kb += Number(m[1]);
    procs++;
  }
  return { kb, procs };
}

async function settledPss(pidfile) {
  await sleep(1500);
  const s = [];
  for (let i = 0; i < 5; i++) {
    if (i) await sleep(400);
    s.push(treePss(pidfile));
  }
  return { kb: median(s.map((x) => x.kb)), procs: median(s.map((x) => x.procs)) };
}

async function measure(cfgFile, name, round, budgetS) {
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  const server = cfg.servers[name];
  const users = readUsers(cfg.users);
  const budget = Number(budgetS);
  if (!(budget > 0)) throw new Error('no time left');
  const timer = setTimeout(() => {
    process.stderr.write(`imap-users: ${name}: out of time (${budget} s left for this server)\n`);
    process.exit(1);
  }, budget * 1000);

  const conns = [];
  const logins = [];
  const first = await loginUser(server.port, users[0], cfg.messages);
  conns.push(first.conn);
  logins.push(first.ms);
  const one = await settledPss(server.pidfile);

  const t0 = performance.now();
  let next = 1;
  const worker = async () => {
    while (next < users.length) {
      const u = users[next++];
      const r = await loginUser(server.port, u, cfg.messages);
      conns.push(r.conn);
      logins.push(r.ms);
    }
  };
  await Promise.all(Array.from({ length: Math.min(cfg.concurrency, users.length - 1) }, worker));
  const allInMs = performance.now() - t0;
  const all = await settledPss(server.pidfile);
  const load = Number(fs.readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
  for (const c of conns) if (c.dead) throw new Error(`${name}: a session was closed while logged in: ${c.dead.message}`);

  await Promise.allSettled(
    conns.map(async (c) => {
      try {
        await c.command('z', 'LOGOUT');
      } finally {
        c.close();
      }
    }),
  );
  clearTimeout(timer);
  const rec = { server: name, round: Number(round), users: users.length, one, all, logins, allInMs, load };
  process.stdout.write(`${JSON.stringify(rec)}\n`);
  const mb = (kb) => (kb / 1024).toFixed(1);
  process.stderr.write(
    `imap-users: ${name}: PSS ${mb(one.kb)} MB with 1 user (${one.procs} processes), ${mb(all.kb)} MB with ${users.length} (${all.procs}), ` +
      `${mb((all.kb - one.kb) / (users.length - 1))} MB per additional user; login p50 ${pct(logins, 50).toFixed(0)} ms p99 ${pct(logins, 99).toFixed(0)} ms\n`,
  );
}

function report(cfgFile, resultsFile) {
  const cfg = JSON.parse(fs.readFileSync(cfgFile, 'utf8'));
  let recs = fs
    .readFileSync(resultsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
  const n = recs[0].users;
  const conc = Math.min(cfg.concurrency, n - 1);
  // Only rounds in which both servers were measured.
  const done = [...new Set(recs.map((r) => r.round))].filter((k) => recs.filter((r) => r.round === k).length === 2);
  recs = recs.filter((r) => done.includes(r.round));
  if (!recs.length) throw new Error('no complete round to report');
  const rounds = done.length;
  const roundsText =
    rounds === 1 ? '1 round' : `${rounds} rounds in alternating order (figures are medians over rounds)`;
  const asked = cfg.rounds > rounds ? ` (of ${cfg.rounds} asked: the time budget ran out)` : '';
  const load = median(recs.map((r) => r.load));
  const mboxBytes = fs.statSync(cfg.mbox).size;
  let dcVersion = '?';
  try {
    dcVersion = execFileSync('dovecot', ['--version'], { encoding: 'utf8' }).trim().split(' ')[0];
  } catch {
    // unknown
  }
  const rows = [
    ['PSS, 1 user logged in (MB)', (r) => r.one.kb / 1024, 1],
    [`PSS, ${n} users logged in (MB)`, (r) => r.all.kb / 1024, 1],
    ['PSS per additional user (MB)', (r) => (r.all.kb - r.one.kb) / 1024 / (n - 1), 2],
    [`processes, ${n} users`, (r) => r.all.procs, 0],
    ['login of user 0, alone (ms)', (r) => r.logins[0], 1],
    ['login p50 (ms)', (r) => pct(r.logins, 50), 1],
    ['login p99 (ms)', (r) => pct(r.logins, 99), 1],
    [`${n - 1} logins, ${conc} at a time (s)`, (r) => r.allInMs / 1000, 2],
  ];
  const fig = {};
  for (const [label, f] of rows) {
    for (const s of ['mailtk', 'dovecot']) fig[`${label}:${s}`] = median(recs.filter((r) => r.server === s).map(f));
  }
  console.log(
    `What: ${n} real accounts each log in over IMAP (LOGIN, SELECT INBOX, FETCH 1:* (FLAGS)) and stay logged in; ` +
      `every user has the same ${cfg.messages}-message INBOX (${(mboxBytes / 1048576).toFixed(1)} MB mbox, ` +
      `${(mboxBytes / cfg.messages / 1024).toFixed(1)} KB a message), one copy per user for each server. ` +
      `mailtk (${cfg.code}) is \`sendmail -bd\` run as root with user_db = system; Dovecot ${dcVersion} runs mbox with a passwd-file ` +
      `of the same uids and passwords. Memory is PSS as smem counts it (Pss of /proc/PID/smaps_rollup, shared pages ` +
      `divided among the processes that map them), summed over the server's whole process tree (the pid-file pid and ` +
      `every descendant, found again at each sample), the median of 5 readings after 1.5 s of quiet: first with user 0 ` +
      `alone logged in, then with all ${n}; per additional user = (all - one) / ${n - 1}. Login time runs from TCP connect ` +
      `to the tagged OK of LOGIN, over all ${n} logins (user 0 alone, then ${conc} at a time). One server runs ` +
      `at a time, from fresh mbox copies and no index, on 127.0.0.1; ${roundsText}${asked}; ratio = mailtk / Dovecot. ` +
      `Load average (1 min) with every user in: ${load.toFixed(1)} on ${os.cpus().length} CPUs ` +
      `(login times grow with whatever else the machine runs).`,
  );
  console.log('');
  const w = Math.max(...rows.map((r) => r[0].length)) + 2;
  console.log(`${''.padEnd(w)}${'mailtk'.padStart(10)}${'Dovecot'.padStart(10)}${'ratio'.padStart(9)}`);
  const parts = [];
  for (const [label, , digits] of rows) {
    const a = fig[`${label}:mailtk`];
    const b = fig[`${label}:dovecot`];
    const ratio = b ? (a / b).toFixed(2) : '-';
    console.log(`${label.padEnd(w)}${a.toFixed(digits).padStart(10)}${b.toFixed(digits).padStart(10)}${ratio.padStart(9)}`);
  }
  const per = fig['PSS per additional user (MB):mailtk'];
  console.log('');
  console.log(`mailtk per additional user: ${per.toFixed(2)} MB, ${per <= 20 ? 'within' : 'OVER'} the 20 MB target`);
  const key = (label, short, digits) => {
    const a = fig[`${label}:mailtk`];
    const b = fig[`${label}:dovecot`];
    parts.push(`${short}=${a.toFixed(digits)}/${b.toFixed(digits)}(x${b ? (a / b).toFixed(2) : '-'})`);
  };
  key('PSS per additional user (MB)', 'per_user_mb', 2);
  key(`PSS, ${n} users logged in (MB)`, 'total_mb', 1);
  key(`processes, ${n} users`, 'procs', 0);
  key('login p50 (ms)', 'login_p50_ms', 1);
  key('login p99 (ms)', 'login_p99_ms', 1);
  console.log(`imap-users users=${n} messages=${cfg.messages} rounds=${rounds} mailtk/dovecot: ${parts.join(' ')}`);
}

const [mode, ...args] = process.argv.slice(2);
try {
  if (mode === 'measure') await measure(...args);
  else if (mode === 'report') report(...args);
  else throw new Error('usage: imap-users.mjs measure CONFIG SERVER ROUND BUDGET_S | report CONFIG RESULTS');
} catch (e) {
  process.stderr.write(`imap-users: ${e.message}\n`);
  process.exit(1);
}
