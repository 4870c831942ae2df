#!/usr/bin/env node
// sendmail -i user < 1 KB message: wall time per invocation, median of N,
// beside `node -e 0` in the same run (alternating, so noise hits both).
// Uses a temporary config with delivery_mode = queue, so what is timed is
// start-up, parsing, header preparation and the durable enqueue (the part
// cron and PHP wait for). Target: at most 1.6 times node's own start-up.
// Usage: node bench/startup.mjs [N=50]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const N = Number(process.argv[2] ?? 50);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-bench-startup-'));
fs.chmodSync(dir, 0o755); // as root, the queue is mail_owner's: it must reach it
const conf = path.join(dir, 'mailtk.conf');
fs.writeFileSync(path.join(dir, 'passwd'), `root:x:0:0:root:/root:/bin/sh\nbench:x:2000:2000:Bench:/tmp:/bin/sh\n${os.userInfo().username}:x:${os.userInfo().uid}:${os.userInfo().gid}::/tmp:/bin/sh\n`);
fs.writeFileSync(conf, `hostname = bench.test\nqueue_dir = ${dir}/q\nmail_spool_dir = ${dir}/mail\nlog_file = ${dir}/maillog\nuser_db = ${dir}/passwd\ndelivery_mode = queue\n`);
const msg = Buffer.from('Subject: startup bench\nTo: bench\n\n' + 'x'.repeat(72).concat('\n').repeat(13));

function time(cmd, args, input) {
  const t = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { input, stdio: ['pipe', 'ignore', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - t) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
  return ms;
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const node = [];
const sendmail = [];
for (let i = 0; i < 3; i++) time(process.execPath, ['-e', '0']), time(path.join(root, 'bin/sendmail'), ['-C', conf, '-i', 'bench'], msg);
for (let i = 0; i < N; i++) {
  node.push(time(process.execPath, ['-e', '0']));
  sendmail.push(time(path.join(root, 'bin/sendmail'), ['-C', conf, '-i', 'bench'], msg));
}
const queued = fs.readdirSync(path.join(dir, 'q')).filter((f) => f.startsWith('qf')).length;
fs.rmSync(dir, { recursive: true, force: true });
const mn = median(node);
const ms = median(sendmail);
console.log(`node -e 0:           median ${mn.toFixed(1)} ms over ${N}`);
console.log(`sendmail -i (1 KB):  median ${ms.toFixed(1)} ms over ${N} (${queued} queued)`);
console.log(`startup-bench ratio=${(ms / mn).toFixed(2)} target<=1.60 sendmail_ms=${ms.toFixed(1)} node_ms=${mn.toFixed(1)}`);
