// The remote delivery keys of mailtk.conf: defaults (Postfix's time limits),
// parsed forms, and bad values rejected with file:line and exit 78.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-remote-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;

function load(text: string) {
  const f = path.join(dir, `c${++n}.conf`);
  fs.writeFileSync(f, text);
  return loadConfig({ file: f, env: {} });
}

test('defaults: system resolvers, 20 destinations at once, opportunistic TLS, Postfix time limits', () => {
  const c = load('');
  assert.deepEqual(c.dnsServers, []);
  assert.equal(c.remoteConcurrency, 20);
  assert.equal(c.smtpTlsLevel, 'may');
  assert.equal(c.smartHost, '');
  assert.equal(c.transportMap, '/etc/mail/mailertable');
  assert.deepEqual(c.smtpTimeouts, {
    connect: 30_000,
    helo: 300_000,
    starttls: 300_000,
    mail: 300_000,
    rcpt: 300_000,
    dataInit: 120_000,
    dataXfer: 180_000,
    dataDone: 600_000,
    quit: 300_000,
  });
});

test('dns_servers takes address:port lists, IPv6 in brackets', () => {
  assert.deepEqual(load('dns_servers = 127.0.0.1:5353, [::1]:53 192.0.2.1\n').dnsServers, ['127.0.0.1:5353', '[::1]:53', '192.0.2.1']);
});

test('bad values name file:line', () => {
  const bad = (text: string, what: RegExp) =>
    assert.throws(() => load(text), (e: unknown) => {
      assert.match((e as Error).message, /c\d+\.conf:2: /);
      assert.match((e as Error).message, what);
      assert.equal((e as { exit: number }).exit, 78);
      return true;
    });
  bad('\ndns_servers = dns.example.org\n', /resolver addresses/);
  bad('\ndns_servers = 127.0.0.1:99999\n', /resolver addresses/);
  bad('\nsmtp_tls_security_level = maybe\n', /none, may, encrypt or verify/);
  bad('\nsmart_host = [relay:25\n', /\[host\]:port/);
  bad('\nremote_concurrency = 0\n', /at least 1/);
  bad('\nsmtp_rcpt_timeout = soon\n', /not a time interval/);
});
