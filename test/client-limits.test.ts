// Limits per client over the wire (issue 13, items 2 and 4), against
// listeners in this process: rate limits per client address (Postfix's
// anvil: connections 421 4.7.0, MAIL and RCPT 452 4.7.0, each logged with
// its key; client_limit_exceptions not counted), the limit per subnet, a
// refusal that closes the socket at once though the client never closes, the
// SMTP waits step by step, and the short wait of a POP3/IMAP session before
// login. relay_networks is moved off loopback unless a test says otherwise.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { describe, test } from 'node:test';
import { LineClient, PASSWORD, startMailboxServer } from './mailbox/harness.ts';
import { SmtpClient, startServer } from './transcripts/harness.ts';

function from(port: number, localAddress: string): Promise<SmtpClient> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(SmtpClient.wrap(sock)));
    sock.once('error', reject);
  });
}

async function greeted(port: number, localAddress: string): Promise<SmtpClient> {
  const c = await from(port, localAddress);
  assert.match((await c.reply())[0], /^220 /);
  assert.match((await c.command('EHLO client.test'))[0], /^250/);
  return c;
}

describe('rate limits per client address (anvil)', () => {
  test('connections: the one past smtp_client_connection_rate_limit gets 421 4.7.0 and is closed; another address is served', async () => {
    const s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8\nsmtp_client_connection_rate_limit = 3' });
    try {
      for (let i = 0; i < 3; i++) {
        const c = await from(s.smtpPort, '127.0.5.1');
        assert.match((await c.reply())[0], /^220 /);
        c.end();
      }
      const fourth = await from(s.smtpPort, '127.0.5.1');
      assert.deepEqual(await fourth.reply(), ['421 4.7.0 mail.test Error: too many connections from your address']);
      await fourth.closed();
      const other = await from(s.smtpPort, '127.0.5.2');
      assert.match((await other.reply())[0], /^220 /);
      other.end();
      assert.match(fs.readFileSync(s.sb.log, 'utf8'), /rejecting connection from \[127\.0\.5\.1\]: rate 4\/60s \(smtp_client_connection_rate_limit = 3\)/);
    } finally {
      await s.close();
    }
  });

  test('messages and recipients: 452 4.7.0 past smtp_client_message_rate_limit and smtp_client_recipient_rate_limit, across sessions', async () => {
    const s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8\nsmtp_client_message_rate_limit = 2\nsmtp_client_recipient_rate_limit = 3' });
    try {
      const a = await greeted(s.smtpPort, '127.0.6.1');
      assert.match((await a.command('MAIL FROM:<x@remote.test>'))[0], /^250 /);
      for (const u of ['alice', 'bob', 'carol']) assert.match((await a.command(`RCPT TO:<${u}@mail.test>`))[0], /^250 /);
      assert.deepEqual(await a.command('RCPT TO:<alice2@mail.test>'), ['452 4.7.0 Error: too many recipients from your address, try again later']);
      assert.match((await a.command('RSET'))[0], /^250 /);
      a.end();
      const b = await greeted(s.smtpPort, '127.0.6.1');
      assert.match((await b.command('MAIL FROM:<x@remote.test>'))[0], /^250 /, 'the second message');
      assert.deepEqual(await b.command('RCPT TO:<bob@mail.test>'), ['452 4.7.0 Error: too many recipients from your address, try again later'], 'the count outlives the session');
      assert.match((await b.command('RSET'))[0], /^250 /);
      assert.deepEqual(await b.command('MAIL FROM:<x@remote.test>'), ['452 4.7.0 Error: too much mail from your address, try again later']);
      b.end();
      const other = await greeted(s.smtpPort, '127.0.6.2');
      assert.match((await other.command('MAIL FROM:<x@remote.test>'))[0], /^250 /);
      assert.match((await other.command('RCPT TO:<bob@mail.test>'))[0], /^250 /);
      other.end();
      const log = fs.readFileSync(s.sb.log, 'utf8');
      assert.match(log, /rejecting message from \[127\.0\.6\.1\]: rate 3\/60s \(smtp_client_message_rate_limit = 2\)/);
      assert.match(log, /rejecting recipient from \[127\.0\.6\.1\]: rate 4\/60s \(smtp_client_recipient_rate_limit = 3\)/);
    } finally {
      await s.close();
    }
  });

  test('client_limit_exceptions (default $relay_networks, loopback here) are not counted', async () => {
    const s = await startServer({ extraConf: 'smtp_client_connection_rate_limit = 1\nsmtp_client_message_rate_limit = 1' });
    try {
      for (let i = 0; i < 3; i++) {
        const c = await greeted(s.smtpPort, '127.0.7.1');
        assert.match((await c.command('MAIL FROM:<x@remote.test>'))[0], /^250 /);
        c.end();
      }
    } finally {
      await s.close();
    }
  });
});

describe('limits on sessions', () => {
  test('per subnet: the one past smtp_max_clients_per_subnet gets 421 4.7.0; another subnet is served', async () => {
    const s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8\nsmtp_max_clients_per_subnet = 2' });
    try {
      const held = [await from(s.smtpPort, '127.0.8.1'), await from(s.smtpPort, '127.0.8.2')];
      for (const c of held) assert.match((await c.reply())[0], /^220 /);
      const third = await from(s.smtpPort, '127.0.8.3');
      assert.deepEqual(await third.reply(), ['421 4.7.0 mail.test Too many connections from your network']);
      const other = await from(s.smtpPort, '127.0.9.1');
      assert.match((await other.reply())[0], /^220 /);
      for (const c of [...held, other]) c.end();
      assert.match(fs.readFileSync(s.sb.log, 'utf8'), /too many sessions from 127\.0\.8\.0\/24 \(smtp_max_clients_per_subnet\)/);
    } finally {
      await s.close();
    }
  });

  test('a refused client that never closes is closed by the server at once', async () => {
    const s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8\nsmtp_max_clients_per_ip = 1' });
    try {
      const first = await from(s.smtpPort, '127.0.10.1');
      await first.reply();
      const start = Date.now();
      const refused = await new Promise<net.Socket>((resolve) => {
        const sock = net.connect({ port: s.smtpPort, host: '127.0.0.1', localAddress: '127.0.10.1', allowHalfOpen: true }, () => resolve(sock));
      });
      const got = await new Promise<string>((resolve) => {
        let text = '';
        refused.on('data', (d) => (text += d));
        refused.on('end', () => resolve(text)); // the server's FIN; this side never ends
      });
      assert.match(got, /^421 4\.7\.0 /);
      assert.ok(Date.now() - start < 1000, `closed after ${Date.now() - start} ms`);
      refused.destroy();
      first.end();
    } finally {
      await s.close();
    }
  });
});

describe('timeouts', () => {
  test('SMTP step by step: smtpd_helo_timeout before HELO; smtpd_mail_timeout after it', async () => {
    const s = await startServer({ extraConf: 'smtp_timeout = 60s\nsmtpd_helo_timeout = 1s\nsmtpd_mail_timeout = 30s' });
    try {
      const start = Date.now();
      const idle = await SmtpClient.connect(s.smtpPort);
      await idle.reply();
      assert.deepEqual(await idle.reply(5000), ['421 4.4.2 mail.test Error: timeout exceeded']);
      assert.ok(Date.now() - start < 3000);
      const c = await greeted(s.smtpPort, '127.0.0.1');
      await new Promise((r) => setTimeout(r, 1500));
      assert.deepEqual(await c.command('NOOP'), ['250 2.0.0 OK'], 'after EHLO the wait is smtpd_mail_timeout');
      c.end();
    } finally {
      await s.close();
    }
  });

  test('SMTP smtpd_data_timeout: a message whose lines keep coming still ends when its time is up', async () => {
    const s = await startServer({ extraConf: 'smtp_timeout = 60s\nsmtpd_data_timeout = 1s' });
    try {
      const c = await greeted(s.smtpPort, '127.0.0.1');
      await c.command('MAIL FROM:<a@mail.test>');
      await c.command('RCPT TO:<bob@mail.test>');
      assert.match((await c.command('DATA'))[0], /^354 /);
      const drip = setInterval(() => c.write('more\r\n'), 200);
      try {
        assert.deepEqual(await c.reply(5000), ['421 4.4.2 mail.test Error: timeout exceeded']);
      } finally {
        clearInterval(drip);
      }
    } finally {
      await s.close();
    }
  });

  test('POP3 and IMAP before login wait mailbox_login_timeout; after login, their own timeouts', async () => {
    const s = await startMailboxServer({ users: ['bob'], extraConf: 'mailbox_login_timeout = 1s' });
    try {
      const start = Date.now();
      const pop = await LineClient.connect(s.pop3);
      assert.match((await pop.line()) ?? '', /^\+OK/);
      assert.equal(await pop.line(5000), '-ERR autologout: idle for too long');
      const imap = await LineClient.connect(s.imap);
      assert.match((await imap.line()) ?? '', /^\* OK/);
      assert.equal(await imap.line(5000), '* BYE Autologout; idle for too long');
      assert.ok(Date.now() - start < 4000, `${Date.now() - start} ms`);
      const user = await LineClient.connect(s.pop3);
      await user.line();
      user.send('USER bob');
      await user.line();
      user.send(`PASS ${PASSWORD}`);
      assert.match((await user.line()) ?? '', /^\+OK/);
      await new Promise((r) => setTimeout(r, 1500));
      user.send('NOOP');
      assert.equal(await user.line(), '+OK', 'logged in: pop3_timeout');
      user.close();
    } finally {
      await s.close();
    }
  });

  test('under stress (3/4 of mailbox_max_clients) a session before login waits mailbox_stress_timeout', async () => {
    const s = await startMailboxServer({ users: ['bob'], extraConf: 'mailbox_max_clients = 4\nmailbox_stress_timeout = 1s' });
    try {
      const start = Date.now();
      const clients = await Promise.all([1, 2, 3].map(() => LineClient.connect(s.imap)));
      for (const c of clients) assert.match((await c.line()) ?? '', /^\* OK/);
      for (const c of clients) assert.equal(await c.line(5000), '* BYE Autologout; idle for too long');
      assert.ok(Date.now() - start < 4000, `${Date.now() - start} ms`);
    } finally {
      await s.close();
    }
  });
});
