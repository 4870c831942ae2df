// STARTTLS's certificate: made (self-signed, for the host name, key 0600)
// on the first start when there is none, then used; a pair with one half
// missing is a configuration error naming the missing file. And a message
// sent over TLS after AUTH says so in its Received field.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { readData } from '../src/queue/index.ts';
import { startSmtpListeners } from '../src/server/index.ts';
import { makeSandbox } from './helpers.ts';
import { SmtpClient, serverConf, startServer } from './transcripts/harness.ts';

test('no certificate: a self-signed one is made for the host name, and STARTTLS uses it', async () => {
  const sb = makeSandbox();
  fs.appendFileSync(sb.conf, serverConf(sb, { copyCert: false }) + '\n');
  const config = loadConfig({ file: sb.conf });
  const listeners = await startSmtpListeners(config);
  try {
    assert.equal(fs.statSync(config.tlsKeyFile).mode & 0o777, 0o600);
    const cert = new X509Certificate(fs.readFileSync(config.tlsCertFile));
    assert.match(cert.subject, /CN=mail\.test/);
    assert.match(cert.subjectAltName ?? '', /DNS:mail\.test/);
    assert.match(fs.readFileSync(sb.log, 'utf8'), /STARTTLS: made a self-signed certificate for mail\.test/);
    const c = await SmtpClient.connect(listeners.addresses[0].port);
    await c.reply();
    await c.command('EHLO client.test');
    assert.deepEqual(await c.command('STARTTLS'), ['220 2.0.0 Ready to start TLS']);
    await c.startTls();
    const peer = (c.socket as import('node:tls').TLSSocket).getPeerX509Certificate();
    assert.equal(peer?.fingerprint256, cert.fingerprint256);
    c.end();
  } finally {
    await listeners.close(0);
    sb.cleanup();
  }
});

test('a certificate without its key: a configuration error that names the missing file', async () => {
  const sb = makeSandbox();
  try {
    fs.appendFileSync(sb.conf, serverConf(sb) + '\n');
    fs.rmSync(path.join(sb.dir, 'etc/tls/mailtk.key'));
    await assert.rejects(startSmtpListeners(loadConfig({ file: sb.conf })), (e: Error & { exit?: number }) => {
      assert.match(e.message, /etc\/tls\/mailtk\.key is missing: give both tls_cert_file and tls_key_file/);
      assert.equal(e.exit, 78);
      return true;
    });
  } finally {
    sb.cleanup();
  }
});

test('a port in use: a clear error, exit status 71', async () => {
  const first = await startServer();
  const sb = makeSandbox();
  try {
    fs.appendFileSync(sb.conf, serverConf(sb) + `\nsmtp_listen = 127.0.0.1:${first.smtpPort}\n`);
    await assert.rejects(startSmtpListeners(loadConfig({ file: sb.conf })), (e: Error & { exit?: number }) => {
      assert.match(e.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.smtpPort} \\(smtp_listen\\): .*EADDRINUSE`));
      assert.equal(e.exit, 71);
      return true;
    });
  } finally {
    sb.cleanup();
    await first.close();
  }
});

test('over TLS, after AUTH: Received says ESMTPSA, the TLS version and cipher, and who authenticated', async () => {
  const s = await startServer({ submission: true, passwords: { alice: 's3cret' } });
  try {
    const c = await SmtpClient.connect(s.submissionPort as number);
    await c.reply();
    await c.command('EHLO laptop.test');
    await c.command('STARTTLS');
    await c.startTls();
    const ehlo = await c.command('EHLO laptop.test');
    assert.ok(ehlo.includes('250-AUTH PLAIN LOGIN') && !ehlo.includes('250-STARTTLS'), ehlo.join('\n'));
    assert.deepEqual(await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0s3cret').toString('base64')}`), ['235 2.7.0 Authentication successful']);
    await c.command('MAIL FROM:<alice@mail.test>');
    await c.command('RCPT TO:<pal@far.test>');
    await c.command('DATA');
    const id = /^250 2\.0\.0 (\w+) /.exec((await c.command('Subject: tls\r\n\r\nx\r\n.'))[0])?.[1] as string;
    c.end();
    const data = readData(s.config, id).toString();
    assert.match(
      data,
      new RegExp(`^Received: from laptop\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\n\\t\\(authenticated as alice\\)\\n\\tby mail\\.test \\(mailtk 0\\.1\\.0\\) with ESMTPSA id ${id}\\n\\t\\(version=TLSv1\\.3 cipher=TLS_\\w+ bits=\\d+\\)\\n\\tfor <pal@far\\.test>;\\n`),
    );
  } finally {
    await s.close();
  }
});
