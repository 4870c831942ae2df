// The daemon's log as administrators rotate it: after `mv maillog
// maillog.1; kill -HUP <daemon>` the next lines (the master's, and the SMTP
// worker's, which writes through the master) are in the new maillog. With
// -bD the start-up lines (version, listeners) are on the terminal too, and a
// daemon that cannot start says why in the log.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, startDaemon, waitFor } from './helpers.ts';
import { SmtpClient } from './transcripts/harness.ts';

const boxes: Sandbox[] = [];
after(() => {
  for (const sb of boxes) sb.cleanup();
});

async function sendOne(port: number, subject: string): Promise<void> {
  const c = await SmtpClient.connect(port);
  await c.reply();
  await c.command('EHLO client.test');
  await c.command('MAIL FROM:<a@client.test>');
  await c.command('RCPT TO:<root@mail.test>');
  await c.command('DATA');
  const r = await c.command(`Subject: ${subject}\r\n\r\nx\r\n.`);
  assert.match(r[0] ?? '', /^250 /);
  c.end();
}

test('SIGHUP reopens the log: the next lines go to the new file', async () => {
  const sb = makeSandbox({ users: [] });
  boxes.push(sb);
  const d = await startDaemon(sb, ['-bD', '-q1h'], ['smtp']);
  try {
    fs.renameSync(sb.log, `${sb.log}.1`);
    d.child.kill('SIGHUP');
    await waitFor(() => fs.existsSync(sb.log) && /configuration reloaded on SIGHUP/.test(fs.readFileSync(sb.log, 'utf8')), 10_000, 'the reload line in the new log');
    await sendOne(d.ports.smtp, 'after-rotation');
    await waitFor(() => /from=<a@client\.test>/.test(fs.readFileSync(sb.log, 'utf8')), 10_000, "the worker's line in the new log");
    assert.doesNotMatch(fs.readFileSync(`${sb.log}.1`, 'utf8'), /from=<a@client\.test>/, 'nothing more in the old file');
  } finally {
    await d.stop();
  }
});

test('-bD shows its version and listeners on the terminal; a start that fails is logged', async () => {
  const sb = makeSandbox({ users: [] });
  boxes.push(sb);
  const busy = net.createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const port = (busy.address() as net.AddressInfo).port;
  try {
    const conf = fs.readFileSync(sb.conf, 'utf8').replace(/^smtp_listen = .*$/m, `smtp_listen = 127.0.0.1:${port}`).replace(/^(pop3|imap)_listen = .*$/gm, '$1_listen =');
    fs.writeFileSync(sb.conf, conf);
    const r = spawnSync(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD', '-q1h'], { env: sb.env, encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 71, `exit 71 (EX_OSERR): ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}`));
    assert.match(fs.readFileSync(sb.log, 'utf8'), new RegExp(`SYSERR: daemon not started: cannot listen on 127\\.0\\.0\\.1:${port}`));
  } finally {
    busy.close();
  }
  fs.writeFileSync(sb.conf, fs.readFileSync(sb.conf, 'utf8').replace(/^smtp_listen = .*$/m, 'smtp_listen = 127.0.0.1:0'));
  const child = (await import('node:child_process')).spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD', '-q1h'], { env: sb.env, stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  try {
    await waitFor(() => /smtp listener on 127\.0\.0\.1:\d+/.test(out), 20_000, 'the listener line on stdout');
    assert.match(out, /starting daemon \(mailtk [\d.]+\): listeners/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
});
