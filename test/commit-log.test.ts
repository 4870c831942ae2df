// The daemon's commit log through the real binaries: a daemon killed with
// SIGKILL whose queue files were lost (what a power loss does to files the
// log made durable for them) gets every accepted message back at its next
// start, and a queue run delivers each exactly once; messages delivered
// before the kill are not delivered again after the restart.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, run, splitMbox, waitFor } from './helpers.ts';
import { SmtpClient } from './transcripts/harness.ts';

const boxes: Sandbox[] = [];
const daemons: ChildProcess[] = [];
after(() => {
  for (const d of daemons) if (d.exitCode === null) d.kill('SIGKILL');
  for (const sb of boxes) sb.cleanup();
});

async function startDaemon(sb: Sandbox, env: NodeJS.ProcessEnv = {}): Promise<{ d: ChildProcess; port: number }> {
  const before = fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8').length : 0;
  const d = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD', '-q20m'], { env: { ...sb.env, ...env }, stdio: 'ignore' });
  daemons.push(d);
  let port = 0;
  await waitFor(() => {
    const log = fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '';
    port = Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(log.slice(before))?.[1] ?? 0);
    return port > 0;
  }, 15_000, 'the daemon to listen');
  return { d, port };
}

async function send(port: number, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const c = await SmtpClient.connect(port);
    await c.reply();
    await c.command('EHLO client.test');
    await c.command('MAIL FROM:<carol@mail.test>');
    await c.command('RCPT TO:<bob@mail.test>');
    await c.command('DATA');
    const ok = await c.command(`Subject: logged ${i}\r\n\r\nmessage ${i}\r\n.`);
    assert.match(ok.at(-1)!, /^250 2\.0\.0 (\S+)/);
    ids.push(/^250 2\.0\.0 (\S+)/.exec(ok.at(-1)!)![1]);
    await c.command('QUIT');
  }
  return ids;
}

const qfs = (sb: Sandbox) => fs.readdirSync(sb.queue).filter((n) => /^qf[^.]+$/.test(n));
const childrenOf = (pid: number) =>
  fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n) && (() => {
    try {
      return fs.readFileSync(`/proc/${n}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(pid);
    } catch {
      return false;
    }
  })());

// A power loss takes the whole tree: as root the daemon is a master with a worker, a runner and agents.
const kill9 = (d: ChildProcess) =>
  new Promise((r) => {
    const tree = (pid: number): number[] => childrenOf(pid).flatMap((c) => [Number(c), ...tree(Number(c))]);
    // Children first: a worker that outlived its master even briefly would shut down cleanly.
    const all = tree(d.pid!);
    for (const pid of all) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    d.once('exit', r);
    d.kill('SIGKILL');
  });

test('SIGKILL and lost queue files: the restarted daemon brings every accepted message back, delivered once', async () => {
  const sb = makeSandbox({ extraConf: 'delivery_mode = queue\n' });
  boxes.push(sb);
  const first = await startDaemon(sb);
  // The daemon's start-up run (on an empty queue) must be over, so that nothing is delivered before the kill.
  await waitFor(() => childrenOf(first.d.pid!).length > 0, 15_000, 'the daemon\'s runner');
  await new Promise((r) => setTimeout(r, 1500));
  const ids = await send(first.port, 5);
  await kill9(first.d);
  assert.equal(qfs(sb).length, 5);
  // What the disk may hold after a power loss: the log, fsync'd; not the qf/df written after it.
  for (const n of fs.readdirSync(sb.queue)) if (/^(qf|df|tf)/.test(n)) fs.rmSync(path.join(sb.queue, n));

  const second = await startDaemon(sb);
  // Every 250 came back: queued again, or already delivered by the new daemon's start-up run.
  const delivered = () => [...fs.readFileSync(sb.log, 'utf8').matchAll(/(\S+): to=<bob@mail\.test>.*stat=Sent/g)].map((m) => m[1]);
  assert.deepEqual([...new Set([...qfs(sb).map((n) => n.slice(2)), ...delivered()])].sort(), [...ids].sort(), 'every 250 came back');
  // One segment or several, depending on how the five fell in time.
  const again = [...fs.readFileSync(sb.log, 'utf8').matchAll(/(\d+) queue entries written again/g)].reduce((n, m) => n + Number(m[1]), 0);
  assert.equal(again, 5);
  await kill9(second.d);
  const r = run(sb, 'sendmail', ['-q']);
  assert.equal(r.status, 0, r.stderr);
  const got = splitMbox(sb.readMbox('bob'));
  assert.equal(got.length, 5);
  for (let i = 0; i < 5; i++) assert.equal(got.filter((m) => m.includes(`Subject: logged ${i}\n`)).length, 1);
});

test('messages delivered before a SIGKILL are not delivered again after the restart', async () => {
  const sb = makeSandbox();
  boxes.push(sb);
  // Segments stay live for a minute: the restart must recover them, and must skip what was delivered.
  const env = { MAILTK_COMMITLOG_RETIRE_MS: '60000' };
  const first = await startDaemon(sb, env);
  await send(first.port, 4);
  await waitFor(() => splitMbox(sb.readMbox('bob')).length === 4 && qfs(sb).length === 0, 15_000, 'the four deliveries');
  assert.ok(fs.readdirSync(path.join(sb.queue, 'commitlog')).some((n) => /^c\d+-\d+$/.test(n)), 'a segment still live');
  await kill9(first.d);
  const second = await startDaemon(sb, env);
  assert.deepEqual(qfs(sb), [], 'nothing comes back');
  const r = run(sb, 'sendmail', ['-q']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(splitMbox(sb.readMbox('bob')).length, 4);
  await kill9(second.d);
});
