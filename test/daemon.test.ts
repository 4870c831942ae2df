// The daemon as an administrator runs it: `sendmail -bD -q20m` writes its pid
// file, a second daemon on the same pid file is refused with a clear message,
// SIGHUP reloads the configuration without dropping an open session, and
// SIGTERM exits 0 and removes the pid file.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { BIN, type Sandbox, makeSandbox, waitFor } from './helpers.ts';

let sb: Sandbox;
let daemon: ChildProcess;
let port = 0;
const pidFile = () => path.join(sb.dir, 'mailtk.pid');
const log = () => (fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8') : '');

before(async () => {
  sb = makeSandbox();
  daemon = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD', '-q20m'], { env: sb.env, stdio: 'ignore' });
  await waitFor(() => {
    port = Number(/smtp listener on 127\.0\.0\.1:(\d+)/.exec(log())?.[1] ?? 0);
    return port > 0 && fs.existsSync(pidFile());
  }, 15_000, 'the daemon to listen');
});

after(() => {
  if (daemon.exitCode === null) daemon.kill('SIGKILL');
  sb.cleanup();
});

/** A raw SMTP session: send a line, read until a final reply line. */
function session(): { send(line: string): Promise<string>; close(): void } {
  const sock = net.connect(port, '127.0.0.1');
  let buf = '';
  let wake: (() => void) | undefined;
  sock.on('data', (d) => {
    buf += d;
    wake?.();
  });
  const reply = () =>
    new Promise<string>((resolve) => {
      const check = () => {
        const m = /(^|\n)(\d{3}) [^\n]*\r\n/.exec(buf);
        if (!m) return;
        const out = buf.slice(0, m.index + m[0].length);
        buf = buf.slice(out.length);
        wake = undefined;
        resolve(out);
      };
      wake = check;
      check();
    });
  const greeting = reply();
  return {
    async send(line: string) {
      await greeting;
      sock.write(`${line}\r\n`);
      return reply();
    },
    close: () => sock.destroy(),
  };
}

test('the pid file holds the daemon\'s pid; a second daemon is refused', () => {
  assert.equal(fs.readFileSync(pidFile(), 'utf8').trim(), String(daemon.pid));
  const second = spawnSync(path.join(BIN, 'sendmail'), ['-C', sb.conf, '-bD'], { env: sb.env, encoding: 'utf8', timeout: 20_000 });
  assert.notEqual(second.status, 0);
  assert.match(second.stderr, new RegExp(`already runs with pid file ${pidFile().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
});

test('SIGHUP reloads the configuration without dropping an open session', async () => {
  const s = session();
  assert.match(await s.send('EHLO client.test'), /^250-/);
  fs.writeFileSync(path.join(sb.dir, 'etc/access'), 'From:spammer@bad.test REJECT\n');
  daemon.kill('SIGHUP');
  await waitFor(() => /configuration reloaded on SIGHUP/.test(log()), 10_000, 'the reload');
  assert.match(await s.send('MAIL FROM:<alice@mail.test>'), /^250 /, 'the session opened before SIGHUP goes on');
  assert.match(await s.send('RSET'), /^250 /);
  s.close();
  const t = session();
  await t.send('EHLO client.test');
  assert.match(await t.send('MAIL FROM:<spammer@bad.test>'), /^5\d\d /, 'the reloaded access file applies to new sessions');
  t.close();
});

test('SIGTERM: exit 0, pid file gone', async () => {
  const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
  daemon.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.ok(!fs.existsSync(pidFile()));
  assert.match(log(), /stopping daemon/);
});
