// The daemon out of file descriptors: started under a low RLIMIT_NOFILE
// (util-linux prlimit) and flooded with connections that are held open, it
// keeps running, tells the excess 421 (never a silent close of a connection
// it took), goes on serving the session it had, logs the shortage once per
// interval, and takes new sessions again once the flood is gone. As root the
// master itself is then starved of descriptors (prlimit --pid): a user agent,
// queue runner or worker it cannot start is logged and tried again, and the
// message waiting for that agent is delivered once descriptors are back.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { BIN, IS_ROOT, type Sandbox, makeSandbox, processTree, readProcess, run, waitFor } from './helpers.ts';
import { SmtpClient } from './transcripts/harness.ts';

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const boxes: Sandbox[] = [];
after(() => {
  for (const sb of boxes) sb.cleanup();
});

const LIMITS = ['smtp_max_clients = 2000', 'smtp_max_clients_per_ip = 2000', 'smtp_max_clients_per_subnet = 2000', 'pop3_listen =', 'imap_listen ='];

interface Daemon {
  child: ChildProcess;
  port: number;
  stderr(): string;
  stop(): Promise<number | null>;
}

/** `prlimit --nofile=N sendmail -bD ARGS` (prlimit execs: the pid is the daemon's) until it listens. */
async function startLimited(sb: Sandbox, nofile: number | undefined, args: string[]): Promise<Daemon> {
  const cmd = path.join(BIN, 'sendmail');
  const argv = ['-C', sb.conf, '-bD', ...args];
  const child = nofile ? spawn('prlimit', [`--nofile=${nofile}`, cmd, ...argv], { env: sb.env, stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(cmd, argv, { env: sb.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let port = 0;
  await waitFor(() => {
    port = Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(readLog(sb))?.[1] ?? 0);
    return port > 0 || child.exitCode !== null;
  }, 20_000, 'the daemon to listen');
  assert.equal(child.exitCode, null, `the daemon exited: ${err}`);
  return {
    child,
    port,
    stderr: () => err,
    async stop() {
      const tree = processTree(child.pid!).filter((p) => p.pid !== child.pid);
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
        if (child.exitCode === null) child.kill('SIGKILL');
      }
      for (const p of tree) if (readProcess(p.pid)?.argv.join(' ') === p.argv.join(' ')) process.kill(p.pid, 'SIGKILL');
      return child.exitCode;
    },
  };
}

const readLog = (sb: Sandbox) => (fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '');

/** One SMTP message on an open client; the final reply to the message's text. */
async function send(c: SmtpClient, subject: string, to = 'alice@mail.test'): Promise<string> {
  for (const line of ['MAIL FROM:<a@client.test>', `RCPT TO:<${to}>`, 'DATA']) {
    const r = (await c.command(line)).at(-1) ?? '';
    if (!/^[23]/.test(r)) return `${line}: ${r}`;
  }
  return (await c.command(`Subject: ${subject}\r\n\r\nbody\r\n.`)).at(-1) ?? '';
}

/** Open `n` connections and keep them; each one's fate: its first line, or "closed" without one. */
async function flood(port: number, n: number): Promise<{ sockets: net.Socket[]; fate: string[] }> {
  const sockets: net.Socket[] = [];
  const fate: string[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.connect(port, '127.0.0.1');
    let first = '';
    s.on('data', (d) => {
      if (!first) fate[i] = first = String(d).slice(0, 3);
    });
    s.on('error', () => undefined);
    s.on('close', () => {
      if (!first) fate[i] = 'closed';
    });
    sockets.push(s);
    if (i % 50 === 49) await new Promise((r) => setTimeout(r, 20));
  }
  return { sockets, fate };
}

test('a flood under a low open-file limit: 421 for the excess, the open session goes on, new sessions after', { skip: !hasPrlimit && 'needs prlimit (util-linux)', timeout: 120_000 }, async () => {
  const sb = makeSandbox({ users: ['alice'], extraConf: LIMITS.join('\n') });
  boxes.push(sb);
  const d = await startLimited(sb, 128, ['-q1h']);
  try {
    const mine = await SmtpClient.connect(d.port);
    assert.match((await mine.reply())[0] ?? '', /^220 /);
    await mine.command('EHLO client.test');
    const N = 600;
    const { sockets, fate } = await flood(d.port, N);
    await waitFor(() => fate.filter(Boolean).length === N, 30_000, 'every flood connection answered or closed');
    const count = (x: string) => fate.filter((f) => f === x).length;
    assert.ok(count('421') > 0, `the excess is told 421 (${count('220')} greeted, ${count('421')} refused, ${count('closed')} closed silently)`);
    assert.equal(count('closed'), 0, `no connection closed without a word (${count('220')} greeted, ${count('421')} refused)`);
    assert.equal(count('220') + count('421'), N);
    // The flood still holds what it got; the session opened before it is served to the end.
    assert.match(await send(mine, 'during the flood'), /^250 /);
    mine.end();
    assert.equal(d.child.exitCode, null, `the daemon is running: ${d.stderr()}`);
    for (const s of sockets) s.destroy();
    // Descriptors free again: a new session is greeted.
    let greeted = '';
    for (let i = 0; i < 50 && !/^220 /.test(greeted); i++) {
      const c = await SmtpClient.connect(d.port);
      greeted = (await c.reply())[0] ?? '';
      if (/^220 /.test(greeted)) {
        assert.match(await send(c, 'after the flood'), /^250 /);
        c.end();
      } else {
        c.end();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    assert.match(greeted, /^220 /, 'new sessions once the flood is gone');
    await waitFor(() => (sb.readMbox('alice').match(/^Subject: (during|after) the flood/gm) ?? []).length === 2, 20_000, 'both messages delivered');
    const log = readLog(sb);
    const shortage = log.match(/rejecting new smtp sessions: \d+ of 128 file descriptors left/g) ?? [];
    assert.ok(shortage.length >= 1 && shortage.length <= 3, `the shortage logged once per interval, not per connection: ${shortage.length}`);
    assert.doesNotMatch(d.stderr(), /SentHandleNotReceivedWarning|TypeError|EMFILE/);
    assert.doesNotMatch(log, /worker exited|^\s+at /m);
    assert.equal(await d.stop(), 0, 'SIGTERM: exit 0');
  } finally {
    await d.stop();
  }
});

/** The master's own descriptors: how many are open, and its soft and hard limits set to `soft`. */
function starve(pid: number, soft: number | 'unlimited'): void {
  const hard = /^Max open files\s+\S+\s+(\S+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1];
  const r = spawnSync('prlimit', [`--pid=${pid}`, `--nofile=${soft === 'unlimited' ? hard : soft}:${hard}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
}

test('the master out of descriptors: the worker, agents and runs it cannot start are tried again, and the message is delivered', { skip: (!IS_ROOT && 'needs root: only a root daemon has a master') || (!hasPrlimit && 'needs prlimit (util-linux)'), timeout: 120_000 }, async () => {
  const sb = makeSandbox({ users: ['alice'], extraConf: [...LIMITS, 'min_backoff = 1s', 'max_backoff = 2s'].join('\n') });
  boxes.push(sb);
  const d = await startLimited(sb, undefined, ['-q2s']);
  const master = d.child.pid!;
  try {
    const worker = () => processTree(master).find((p) => p.ppid === master && p.argv.includes('-bD'));
    await waitFor(() => worker() !== undefined, 10_000, 'the worker');
    starve(master, fs.readdirSync(`/proc/${master}/fd`).length);
    // Queued by another process; its delivery needs alice's agent, which the master cannot start now.
    assert.equal(run(sb, 'sendmail', ['-odq', 'alice'], 'Subject: starved\n\nbody\n').status, 0);
    await waitFor(() => /cannot start a user agent for alice .*EMFILE/.test(readLog(sb)), 30_000, 'the agent that could not start, logged');
    assert.equal(sb.readMbox('alice'), '', 'not delivered while the agent cannot start');
    // The queue runner dies: the next runs cannot start another.
    process.kill(processTree(master).find((p) => p.ppid === master && p.argv.includes('--serve'))!.pid, 'SIGKILL');
    await waitFor(() => /queue run failed: queue runner could not be started: .*EMFILE/.test(readLog(sb)), 15_000, 'the run that could not start, logged');
    // The worker dies: the master cannot start another for now.
    process.kill(worker()!.pid, 'SIGKILL');
    await waitFor(() => /cannot start the worker: .*EMFILE/.test(readLog(sb)), 15_000, 'the worker that could not start, logged');
    assert.equal(d.child.exitCode, null, `the master is running: ${d.stderr()}`);
    starve(master, 'unlimited');
    await waitFor(() => worker() !== undefined, 15_000, 'a new worker once descriptors are back');
    await waitFor(() => /Subject: starved/.test(sb.readMbox('alice')), 30_000, 'the deferred message delivered');
    assert.equal((sb.readMbox('alice').match(/^Subject: starved/gm) ?? []).length, 1, 'once');
    const c = await SmtpClient.connect(d.port);
    assert.match((await c.reply())[0] ?? '', /^220 /, 'the new worker serves');
    c.end();
    assert.doesNotMatch(d.stderr(), /TypeError|SentHandleNotReceivedWarning/);
    assert.equal(await d.stop(), 0, 'SIGTERM: exit 0');
  } finally {
    await d.stop();
  }
});
