// Safety on the wire, against a real listener on loopback: SMTP smuggling,
// bare CR/LF and NUL in DATA, line limits, idle timeouts, limits on
// sessions in all and per client address, stress mode, STARTTLS command
// injection, and the shutdown that says 421. Each test says what it proves.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { listQueueIds } from '../src/queue/index.ts';
import { SmtpClient, type TestServer, startServer } from './transcripts/harness.ts';

async function session(port: number): Promise<SmtpClient> {
  const c = await SmtpClient.connect(port);
  assert.match((await c.reply())[0], /^220 /);
  assert.match((await c.command('EHLO client.test'))[0], /^250-/);
  return c;
}

async function startData(c: SmtpClient, to = 'bob@mail.test'): Promise<void> {
  assert.match((await c.command('MAIL FROM:<alice@mail.test>'))[0], /^250 /);
  assert.match((await c.command(`RCPT TO:<${to}>`))[0], /^250 /);
  assert.match((await c.command('DATA'))[0], /^354 /);
}

describe('DATA', () => {
  let s: TestServer;
  before(async () => (s = await startServer()));
  after(() => s.close());

  // SEC Consult's end-of-data variants (2023). The body after each one holds a
  // whole second transaction; it must stay data, and the message is refused.
  const VARIANTS = ['\n.\n', '\n.\r', '\r.\n', '\r.\r', '\n.\r\n', '\r.\r\n', '\r\n\x00.\r\n'];
  for (const v of VARIANTS) {
    test(`smuggling ${JSON.stringify(v)}: one message, refused; no second one`, async () => {
      const before = listQueueIds(s.config).length;
      const c = await session(s.smtpPort);
      await startData(c);
      const smuggled = 'MAIL FROM:<evil@x.test>\r\nRCPT TO:<carol@mail.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n';
      c.write(`Subject: first\r\n\r\nfirst${v}${smuggled}.\r\nNOOP\r\n`);
      const r = await c.reply();
      assert.match(r[0], v.includes('\x00') ? /^554 5\.6\.0 / : /^550 5\.5\.2 .*bare CR or LF/);
      assert.deepEqual(await c.reply(), ['250 2.0.0 OK'], 'the next reply answers NOOP: nothing else was run');
      assert.equal(listQueueIds(s.config).length, before, 'nothing queued');
      c.end();
    });
  }

  test('a bare LF inside the body refuses the message; the session goes on', async () => {
    const c = await session(s.smtpPort);
    await startData(c);
    c.write('Subject: x\r\n\r\nline\nother\r\n.\r\n');
    assert.match((await c.reply())[0], /^550 5\.5\.2 /);
    await startData(c);
    c.write('Subject: ok\r\n\r\nfine\r\n.\r\n');
    assert.match((await c.reply())[0], /^250 2\.0\.0 \w{14} Message accepted for delivery$/);
    c.end();
  });

  test('a NUL in the body refuses the message', async () => {
    const c = await session(s.smtpPort);
    await startData(c);
    c.write('Subject: x\r\n\r\na\x00b\r\n.\r\n');
    assert.deepEqual(await c.reply(), ['554 5.6.0 Message refused: it contains NUL characters']);
    c.end();
  });

  test('text lines: 998 characters pass, 999 are refused (RFC 5321 4.5.3.1.6)', async () => {
    const c = await session(s.smtpPort);
    await startData(c);
    c.write(`Subject: x\r\n\r\n${'a'.repeat(998)}\r\n.\r\n`);
    assert.match((await c.reply())[0], /^250 /);
    await startData(c);
    c.write(`Subject: x\r\n\r\n${'a'.repeat(999)}\r\n.\r\n`);
    assert.deepEqual(await c.reply(), ['554 5.6.0 Message refused: a line is longer than 998 characters (RFC 5321 4.5.3.1.6)']);
    c.end();
  });

  test('the message queued is the message sent: unstuffed, LF line ends', async () => {
    const c = await session(s.smtpPort);
    await startData(c);
    c.write('Subject: dots\r\n\r\n..leading dot\r\nend\r\n.\r\n');
    const id = /^250 2\.0\.0 (\w+) /.exec((await c.reply())[0])?.[1] as string;
    const { readData } = await import('../src/queue/index.ts');
    assert.match(readData(s.config, id).toString(), /\nSubject: dots\n\n\.leading dot\nend\n$/);
    c.end();
  });
});

describe('command lines', () => {
  let s: TestServer;
  before(async () => (s = await startServer()));
  after(() => s.close());

  test('over 512 octets: 500 5.5.2; the session goes on', async () => {
    const c = await session(s.smtpPort);
    assert.deepEqual(await c.command(`NOOP ${'x'.repeat(600)}`), ['500 5.5.2 Line too long']);
    assert.deepEqual(await c.command('NOOP'), ['250 2.0.0 OK']);
    c.end();
  });

  test('a megabyte without a line end is not buffered: one 500 when the line ends', async () => {
    const c = await session(s.smtpPort);
    for (let i = 0; i < 16; i++) c.write('y'.repeat(65536));
    assert.deepEqual(await c.command(''), ['500 5.5.2 Line too long']);
    assert.deepEqual(await c.command('NOOP'), ['250 2.0.0 OK']);
    c.end();
  });

  test('a NUL or bare CR in a command is refused', async () => {
    const c = await session(s.smtpPort);
    assert.deepEqual(await c.command('NOOP\x00'), ['500 5.5.1 Syntax error: control character in command']);
    assert.deepEqual(await c.command('MAIL FROM:<a@b.test>\rRCPT TO:<c@d.test>'), ['500 5.5.1 Syntax error: control character in command']);
    c.end();
  });

  test('commands may end in a bare LF (sendmail and Postfix accept it outside DATA)', async () => {
    const c = await session(s.smtpPort);
    c.write('NOOP\n');
    assert.deepEqual(await c.reply(), ['250 2.0.0 OK']);
    c.end();
  });
});

describe('time and numbers', () => {
  test('an idle client gets 421 4.4.2 after smtp_timeout, in commands and in DATA', async () => {
    const s = await startServer({ extraConf: 'smtp_timeout = 1s' });
    try {
      const c = await SmtpClient.connect(s.smtpPort);
      await c.reply();
      assert.deepEqual(await c.reply(5000), ['421 4.4.2 mail.test Error: timeout exceeded']);
      await c.closed();
      const d = await session(s.smtpPort);
      await startData(d);
      d.write('Subject: slow\r\n');
      assert.deepEqual(await d.reply(5000), ['421 4.4.2 mail.test Error: timeout exceeded']);
      await d.closed();
      assert.equal(listQueueIds(s.config).length, 0);
    } finally {
      await s.close();
    }
  });

  test('per client address (outside relay_networks): the one past smtp_max_clients_per_ip gets 421 4.7.0; another address is served', async () => {
    const s = await startServer({ extraConf: 'smtp_max_clients_per_ip = 2\nrelay_networks = 10.0.0.0/8' });
    try {
      const from = (localAddress: string) =>
        new Promise<SmtpClient>((resolve) => {
          const sock = net.connect({ port: s.smtpPort, host: '127.0.0.1', localAddress }, () => resolve(SmtpClient.wrap(sock)));
        });
      const held = [await from('127.0.0.2'), await from('127.0.0.2')];
      for (const c of held) assert.match((await c.reply())[0], /^220 /);
      const third = await from('127.0.0.2');
      assert.deepEqual(await third.reply(), ['421 4.7.0 mail.test Too many connections from your host']);
      await third.closed();
      const other = await from('127.0.0.3');
      assert.match((await other.reply())[0], /^220 /);
      for (const c of [...held, other]) c.end();
    } finally {
      await s.close();
    }
  });

  test('in all: the one past smtp_max_clients gets 421 4.3.2 while every session has a transaction under way', async () => {
    const s = await startServer({ extraConf: 'smtp_max_clients = 2' });
    try {
      const held = [await session(s.smtpPort), await session(s.smtpPort)];
      for (const c of held) assert.match((await c.command('MAIL FROM:<alice@mail.test>'))[0], /^250 /);
      const third = await SmtpClient.connect(s.smtpPort);
      assert.deepEqual(await third.reply(), ['421 4.3.2 mail.test Too many open connections, try again later']);
      for (const c of held) c.end();
    } finally {
      await s.close();
    }
  });

  test('in all: a newcomer to a full listener takes the place of the longest idle session without a transaction (idle 0.5 s at least)', async () => {
    const s = await startServer({ extraConf: 'smtp_max_clients = 2' });
    try {
      const idle = await SmtpClient.connect(s.smtpPort);
      await idle.reply();
      const busy = await session(s.smtpPort);
      assert.match((await busy.command('MAIL FROM:<alice@mail.test>'))[0], /^250 /);
      await new Promise((r) => setTimeout(r, 600)); // idle for half a second at least
      const third = await SmtpClient.connect(s.smtpPort);
      assert.match((await third.reply())[0], /^220 /);
      assert.deepEqual(await idle.reply(), ['421 4.3.2 mail.test Too many open connections, closing an idle session']);
      assert.match((await busy.command('RCPT TO:<bob@mail.test>'))[0], /^250 /, 'the session with a transaction goes on');
      for (const c of [busy, third]) c.end();
    } finally {
      await s.close();
    }
  });

  test('stress: once 3/4 of the slots are taken, idle and slow clients get smtp_stress_timeout', async () => {
    const s = await startServer({ extraConf: 'smtp_max_clients = 4\nsmtp_timeout = 60s\nsmtp_stress_timeout = 1s' });
    try {
      const started = Date.now();
      const slow = [await SmtpClient.connect(s.smtpPort), await SmtpClient.connect(s.smtpPort), await SmtpClient.connect(s.smtpPort)];
      for (const c of slow) await c.reply();
      // A slowloris client: one byte a while, never a whole line.
      const drip = setInterval(() => slow.forEach((c) => c.write('N')), 300);
      try {
        for (const c of slow) assert.deepEqual(await c.reply(5000), ['421 4.4.2 mail.test Error: timeout exceeded']);
      } finally {
        clearInterval(drip);
      }
      assert.ok(Date.now() - started < 5000);
    } finally {
      await s.close();
    }
  });
});

describe('STARTTLS', () => {
  let s: TestServer;
  before(async () => (s = await startServer({ submission: true, passwords: { alice: 's3cret' } })));
  after(() => s.close());

  test('plaintext pipelined after STARTTLS is dropped, never run inside TLS (CVE-2011-0411)', async () => {
    const c = await session(s.smtpPort);
    c.write('STARTTLS\r\nMAIL FROM:<injected@x.test>\r\n');
    assert.deepEqual(await c.reply(), ['220 2.0.0 Ready to start TLS']);
    await c.startTls();
    const ehlo = await c.command('EHLO client.test');
    assert.equal(ehlo[0], '250-mail.test Hello localhost [127.0.0.1]', 'the first reply in TLS is EHLO\'s');
    assert.ok(!ehlo.includes('250-STARTTLS'));
    assert.deepEqual(await c.command('MAIL FROM:<a@b.test>'), ['250 2.1.0 <a@b.test>... Sender ok'], 'no transaction was open');
    c.end();
  });

  test('after STARTTLS the state starts over; a second STARTTLS is refused', async () => {
    const c = await session(s.smtpPort);
    assert.match((await c.command('MAIL FROM:<a@b.test>'))[0], /^250 /);
    assert.deepEqual(await c.command('STARTTLS'), ['220 2.0.0 Ready to start TLS']);
    await c.startTls();
    assert.deepEqual(await c.command('RCPT TO:<bob@mail.test>'), ['503 5.5.1 Need MAIL before RCPT']);
    await c.command('EHLO again.test');
    assert.deepEqual(await c.command('STARTTLS'), ['503 5.5.1 TLS already active']);
    c.end();
  });

  test('AUTH is not offered on the smtp listener, with or without TLS', async () => {
    const c = await session(s.smtpPort);
    assert.deepEqual(await c.command('AUTH PLAIN AGFsaWNlAHMzY3JldA=='), ['503 5.5.1 Error: authentication not enabled']);
    c.end();
  });
});

describe('shutdown', () => {
  test('close() during 20 busy sessions: every message that got 250 is queued, and no other', async () => {
    const s = await startServer();
    try {
      const acknowledged: string[] = [];
      let stop = false;
      const client = async () => {
        const c = await SmtpClient.connect(s.smtpPort);
        await c.reply();
        await c.command('EHLO busy.test');
        while (!stop && !c.ended) {
          // Pipelined as a real client would, so that shutdown can land anywhere in a transaction.
          c.write('MAIL FROM:<alice@mail.test>\r\nRCPT TO:<bob@mail.test>\r\nDATA\r\n');
          const replies = [await c.reply(), await c.reply(), await c.reply()].map((r) => r[0] ?? '');
          if (!replies[2].startsWith('354')) break;
          const end = (await c.command('Subject: busy\r\n\r\nbody\r\n.'))[0] ?? '';
          const id = /^250 2\.0\.0 (\w{14}) /.exec(end)?.[1];
          if (!id) break;
          acknowledged.push(id);
        }
        c.end();
      };
      const clients = Array.from({ length: 20 }, client);
      await new Promise((r) => setTimeout(r, 400));
      await s.listeners.close(200);
      stop = true;
      await Promise.all(clients);
      assert.ok(acknowledged.length > 20, `${acknowledged.length} messages acknowledged`);
      assert.deepEqual(new Set(listQueueIds(s.config)), new Set(acknowledged));
    } finally {
      s.sb.cleanup();
    }
  });

  test('close(): a session that quits in time ends normally; an idle one gets 421; a half-sent message is not queued', async () => {
    const s = await startServer();
    try {
      const quick = await session(s.smtpPort);
      const idle = await session(s.smtpPort);
      const half = await session(s.smtpPort);
      await startData(half);
      half.write('Subject: half\r\n\r\nnot finished\r\n');
      const closing = s.listeners.close(1000);
      assert.deepEqual(await quick.command('QUIT'), ['221 2.0.0 mail.test closing connection']);
      assert.deepEqual(await idle.reply(5000), ['421 4.3.2 mail.test Service shutting down']);
      assert.deepEqual(await half.reply(5000), ['421 4.3.2 mail.test Service shutting down']);
      await closing;
      await idle.closed();
      assert.equal(listQueueIds(s.config).length, 0);
      await assert.rejects(SmtpClient.connect(s.smtpPort), /ECONNREFUSED/);
    } finally {
      s.sb.cleanup();
    }
  });
});
