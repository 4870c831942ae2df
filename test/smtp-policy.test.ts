// Acceptance and relay control over a real listener: the open-relay tricks
// (none may be relayed), local address literals, the access file's verdicts
// and their log lines, SIGHUP reloads, VRFY/EXPN when enabled, and what the
// queue receives: DSN parameters, the Received field, the headers added.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadConfig } from '../src/config/index.ts';
import { listQueue, listQueueIds, readData } from '../src/queue/index.ts';
import { IS_ROOT } from './helpers.ts';
import { SmtpClient, type TestServer, startServer } from './transcripts/harness.ts';

async function session(port: number, helo = 'client.test'): Promise<SmtpClient> {
  const c = await SmtpClient.connect(port);
  await c.reply();
  await c.command(`EHLO ${helo}`);
  return c;
}

function logText(s: TestServer): string {
  return fs.readFileSync(s.sb.log, 'utf8');
}

describe('open relay tricks from a client outside relay_networks', () => {
  let s: TestServer;
  // More refusals than smtp_max_errors allows by default (20), in one session.
  before(async () => (s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8\nsmtp_max_errors = 100' })));
  after(() => s.close());

  const TRICKS = [
    '<victim@other.test>',
    '<VICTIM@OTHER.TEST>',
    ' <victim@other.test>',
    '<victim@other.test> ',
    '< victim@other.test >',
    '<victim%other.test@mail.test>',
    '<alice%other.test@mail.test>',
    'victim%other.test@mail.test',
    '<other.test!victim>',
    '<other.test!victim@mail.test>',
    '<mail.test!other.test!victim>',
    '<@mail.test:victim@other.test>',
    '<@mail.test,@mail.test:victim@other.test>',
    '<"victim@other.test"@mail.test>',
    '<"victim%other.test"@mail.test>',
    '<victim\\@other.test@mail.test>',
    '<victim@other.test@mail.test>',
    '<victim@mail.test@other.test>',
    '<victim@other.test.>',
    '<victim@other.test..>',
    '<victim@[10.0.0.1]>',
    '<victim@[IPv6:2001:db8::1]>',
    '<victim@mail.test.other.test>',
    '<victim@localhost.other.test>',
    '<victim@other.test%mail.test>',
    '<victim@other.test:25>',
    '<victim@other.test\t>',
  ];

  test(`${TRICKS.length} tricks: none relayed, nothing queued`, async () => {
    const c = await session(s.smtpPort);
    assert.match((await c.command('MAIL FROM:<someone@outside.test>'))[0], /^250 /);
    const refused: string[] = [];
    for (const trick of TRICKS) {
      const r = (await c.command(`RCPT TO:${trick}`))[0];
      assert.match(r ?? '', /^5\d\d /, `RCPT TO:${trick}: ${r}`);
      refused.push(`${trick} -> ${r}`);
    }
    assert.deepEqual(await c.command('DATA'), ['503 5.5.1 Need RCPT (recipient)']);
    assert.equal(listQueueIds(s.config).length, 0);
    const denied = refused.filter((r) => / 550 5\.7\.1 .*Relaying denied$/.test(r)).length;
    assert.ok(denied >= 20, `most are refused as relaying:\n${refused.join('\n')}`);
    c.end();
  });

  test('a local user at our own address literal is local, not a relay', async () => {
    const c = await session(s.smtpPort);
    await c.command('MAIL FROM:<someone@outside.test>');
    assert.deepEqual(await c.command('RCPT TO:<alice@[127.0.0.1]>'), ['250 2.1.5 <alice@[127.0.0.1]>... Recipient ok']);
    assert.deepEqual(await c.command('RCPT TO:<alice@MAIL.TEST.>'), ['250 2.1.5 <alice@MAIL.TEST.>... Recipient ok']);
    c.end();
  });

  test('an address literal of this host is local for routing too; any other literal is a relay', async () => {
    const c = await session(s.smtpPort);
    await c.command('MAIL FROM:<someone@outside.test>');
    // Local: an unknown user there is unknown, never queued for SMTP back to ourselves.
    assert.match((await c.command('RCPT TO:<victim@[127.0.0.1]>'))[0], /^550 5\.1\.1 /);
    assert.match((await c.command('RCPT TO:<victim@[IPv6:::1]>'))[0], /^550 5\.1\.1 /);
    assert.match((await c.command('RCPT TO:<victim@[IPv6:0:0:0:0:0:0:0:1]>'))[0], /^550 5\.1\.1 /);
    assert.match((await c.command('RCPT TO:<alice@[IPv6:::1]>'))[0], /^250 /);
    assert.match((await c.command('RCPT TO:<victim@[192.0.2.1]>'))[0], /^550 5\.7\.1 .*Relaying denied/);
    c.end();
    const { expandRecipient, openAliases } = await import('../src/aliases/index.ts');
    const { localDomains } = await import('../src/config/index.ts');
    const ctx = { config: s.config, aliases: openAliases(s.config), localDomains: localDomains(s.config), lists: (await import('../src/aliases/index.ts')).inProcessLists };
    for (const a of ['alice@[127.0.0.1]', 'alice@[IPv6:::1]']) {
      const dests = await expandRecipient(ctx, a);
      assert.deepEqual(dests.map((d) => d.kind), ['local'], `${a} is delivered here`);
    }
    assert.deepEqual((await expandRecipient(ctx, 'x@[192.0.2.1]')).map((d) => d.kind), ['remote']);
    ctx.aliases.close();
  });

  test('each refusal is logged with the rule that made it', () => {
    assert.match(logText(s), /ruleset=check_rcpt, arg1=<victim@other\.test>, relay=localhost \[127\.0\.0\.1\], reject=550 5\.7\.1 <victim@other\.test>\.\.\. Relaying denied, rule=no relay permission/);
  });
});

describe('the access file', () => {
  test('Connect: RELAY lets a client outside relay_networks relay; the grant is logged with file:line', async () => {
    const s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8', access: '# trusted\nConnect:127.0.0.1 RELAY\n' });
    try {
      const c = await session(s.smtpPort);
      await c.command('MAIL FROM:<a@b.test>');
      assert.deepEqual(await c.command('RCPT TO:<x@other.test>'), ['250 2.1.5 <x@other.test>... Recipient ok']);
      c.end();
      assert.match(logText(s), new RegExp(`accept=RELAY, rule=${s.sb.dir}/etc/access:2 Connect:127\\.0\\.0\\.1 RELAY`));
    } finally {
      await s.close();
    }
  });

  test('From: RELAY lets that sender relay, and nobody else', async () => {
    const s = await startServer({ extraConf: 'relay_networks = 10.0.0.0/8', access: 'From:boss@mail.test RELAY\n' });
    try {
      const c = await session(s.smtpPort);
      await c.command('MAIL FROM:<boss@mail.test>');
      assert.match((await c.command('RCPT TO:<x@other.test>'))[0], /^250 /);
      await c.command('RSET');
      await c.command('MAIL FROM:<clerk@mail.test>');
      assert.match((await c.command('RCPT TO:<x@other.test>'))[0], /^550 5\.7\.1 /);
      c.end();
    } finally {
      await s.close();
    }
  });

  test('Connect: DISCARD: the client hears 250, nothing is queued, the log says so', async () => {
    const s = await startServer({ access: 'Connect:127.0.0.1 DISCARD\n' });
    try {
      const c = await session(s.smtpPort);
      await c.command('MAIL FROM:<a@b.test>');
      await c.command('RCPT TO:<bob@mail.test>');
      await c.command('DATA');
      assert.match((await c.command('Subject: x\r\n\r\nbody\r\n.'))[0], /^250 2\.0\.0 \w{14} Message accepted for delivery$/);
      assert.equal(listQueueIds(s.config).length, 0);
      assert.match(logText(s), /discarded: from=<a@b\.test>/);
      c.end();
    } finally {
      await s.close();
    }
  });

  test('reload(): new rules for new commands, without dropping the session', async () => {
    const s = await startServer();
    try {
      const c = await session(s.smtpPort);
      assert.match((await c.command('MAIL FROM:<late@bad.test>'))[0], /^250 /);
      await c.command('RSET');
      fs.writeFileSync(path.join(s.sb.dir, 'etc/access'), 'From:bad.test REJECT\n');
      s.listeners.reload(loadConfig({ file: s.sb.conf }));
      assert.deepEqual(await c.command('MAIL FROM:<late@bad.test>'), ['550 5.7.1 <late@bad.test>... Access denied']);
      c.end();
    } finally {
      await s.close();
    }
  });

  test('a broken access file on reload keeps the old rules, and says why', async () => {
    const s = await startServer({ access: 'From:bad.test REJECT\n' });
    try {
      fs.writeFileSync(path.join(s.sb.dir, 'etc/access'), 'From:bad.test SOMETIMES\n');
      s.listeners.reload(loadConfig({ file: s.sb.conf }));
      const c = await session(s.smtpPort);
      assert.match((await c.command('MAIL FROM:<x@bad.test>'))[0], /^550 /);
      c.end();
      assert.match(logText(s), /SMTP policy not reloaded, the old one stays: .*access:1: unknown action "SOMETIMES"/);
    } finally {
      await s.close();
    }
  });
});

describe('VRFY and EXPN when enabled', () => {
  test('smtp_vrfy and smtp_expn', async () => {
    const s = await startServer({ extraConf: 'smtp_vrfy = yes\nsmtp_expn = yes' });
    try {
      s.sb.writeAliases('postmaster: root\nstaff: alice, bob\n');
      s.listeners.reload(loadConfig({ file: s.sb.conf }));
      const c = await session(s.smtpPort);
      assert.deepEqual(await c.command('VRFY alice'), ['250 2.1.5 <alice@mail.test>']);
      assert.deepEqual(await c.command('VRFY nobody'), ['550 5.1.1 nobody... User unknown']);
      assert.deepEqual(await c.command('VRFY x@other.test'), ['252 2.5.2 Cannot VRFY user; try RCPT to attempt delivery (or try finger)']);
      assert.deepEqual(await c.command('EXPN staff'), ['250-2.1.5 <alice@mail.test>', '250 2.1.5 <bob@mail.test>']);
      c.end();
    } finally {
      await s.close();
    }
  });

  test('EXPN and RCPT never show an include file that the .forward\'s user may not read', { skip: !IS_ROOT && 'needs root' }, async () => {
    const s = await startServer({ extraConf: 'smtp_vrfy = yes\nsmtp_expn = yes' });
    try {
      const alice = s.sb.users.alice;
      const secret = path.join(s.sb.dir, 'etc', 'root-only');
      fs.writeFileSync(secret, 'secret-7f3a@other.test\n', { mode: 0o600 });
      const fwd = path.join(alice.home, '.forward');
      fs.writeFileSync(fwd, `:include:${secret}\n`);
      fs.chownSync(fwd, alice.uid, alice.gid);
      const c = await session(s.smtpPort);
      const expn = await c.command('EXPN alice');
      await c.command('MAIL FROM:<someone@outside.test>');
      const rcpt = await c.command('RCPT TO:<alice@mail.test>');
      c.end();
      assert.deepEqual(expn, ['550 5.1.1 alice... User unknown']);
      assert.deepEqual(rcpt, [`451 4.3.5 <alice@mail.test>... cannot use :include: file ${secret}: permission denied to alice`]);
      assert.ok(!logText(s).includes('secret-7f3a'));
      assert.match(logText(s), /permission denied to alice; ignored/);
    } finally {
      await s.close();
    }
  });
});

describe('what is queued', () => {
  let s: TestServer;
  before(async () => (s = await startServer()));
  after(() => s.close());

  async function send(c: SmtpClient, mail: string, rcpts: string[], body: string): Promise<string> {
    assert.match((await c.command(mail))[0], /^250 /);
    for (const r of rcpts) assert.match((await c.command(r))[0], /^250 /);
    assert.match((await c.command('DATA'))[0], /^354 /);
    const r = (await c.command(`${body}\r\n.`))[0];
    const id = /^250 2\.0\.0 (\w{14}) Message accepted for delivery$/.exec(r)?.[1];
    assert.ok(id, r);
    return id;
  }

  test('DSN parameters (RFC 3461) and BODY reach the queue file, decoded', async () => {
    const c = await session(s.smtpPort);
    const id = await send(
      c,
      'MAIL FROM:<alice@mail.test> RET=HDRS ENVID=abc+2Bdef BODY=8BITMIME',
      ['RCPT TO:<bob@mail.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;Bob+40mail.test', 'RCPT TO:<carol@mail.test>'],
      'Subject: dsn\r\n\r\nbody',
    );
    c.end();
    const control = listQueue(s.config).find((e) => e.id === id)?.control;
    assert.ok(control);
    assert.equal(control.envid, 'abc+def');
    assert.equal(control.ret, 'hdrs');
    assert.equal(control.bodyType, '8BITMIME');
    assert.equal(control.sender, 'alice@mail.test');
    assert.deepEqual(control.recipients, [
      { address: 'bob@mail.test', notify: 'SUCCESS,DELAY', orcpt: 'rfc822;Bob@mail.test' },
      { address: 'carol@mail.test', notify: undefined, orcpt: undefined },
    ]);
  });

  test('Received names HELO, reverse name, address; Date, From and Message-ID are added when missing', async () => {
    const c = await session(s.smtpPort, 'helo.client.test');
    const id = await send(c, 'MAIL FROM:<alice@mail.test>', ['RCPT TO:<bob@mail.test>'], 'Subject: trace\r\n\r\nbody');
    c.end();
    const data = readData(s.config, id).toString();
    const received = new RegExp(
      `^Received: from helo\\.client\\.test \\(localhost \\[127\\.0\\.0\\.1\\]\\)\\n\\tby mail\\.test \\(mailtk 0\\.1\\.0\\) with ESMTP id ${id}\\n\\tfor <bob@mail\\.test>;\\n\\t\\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}\\n`,
    );
    assert.match(data, received);
    assert.match(data, /\nDate: \w{3}, /);
    assert.match(data, /\nFrom: alice@mail\.test\n/);
    assert.match(data, new RegExp(`\\nMessage-ID: <${id}\\.\\d{14}\\.[0-9a-f]{6}@mail\\.test>\\n`));
    assert.match(data, /\nSubject: trace\n\nbody\n$/);
  });

  test('a message that has its own Message-ID and Date keeps them; two recipients: no "for"', async () => {
    const c = await session(s.smtpPort);
    const hdr = 'Message-ID: <mine@x.test>\r\nDate: Mon, 5 Aug 2002 09:34:28 +0800\r\nFrom: Me <alice@mail.test>\r\n\r\nbody';
    const id = await send(c, 'MAIL FROM:<alice@mail.test>', ['RCPT TO:<bob@mail.test>', 'RCPT TO:<carol@mail.test>'], hdr);
    c.end();
    const data = readData(s.config, id).toString();
    assert.match(data, /id \w{14};\n\t\w{3}, /);
    assert.equal(data.match(/^Message-ID:/gim)?.length, 1);
    assert.match(data, /\nMessage-ID: <mine@x\.test>\nDate: Mon, 5 Aug 2002 09:34:28 \+0800\nFrom: Me <alice@mail\.test>\n/);
  });

  test('more Received fields than max_hop_count: 554 5.4.6, nothing queued', async () => {
    const before = listQueueIds(s.config).length;
    const c = await session(s.smtpPort);
    await c.command('MAIL FROM:<alice@mail.test>');
    await c.command('RCPT TO:<bob@mail.test>');
    await c.command('DATA');
    const hops = Array.from({ length: 26 }, (_, i) => `Received: from h${i}.test by h${i + 1}.test; Mon, 5 Aug 2002 09:34:28 +0800`).join('\r\n');
    assert.deepEqual(await c.command(`${hops}\r\n\r\nloop\r\n.`), ['554 5.4.6 Too many hops 26 (25 max)']);
    c.end();
    assert.equal(listQueueIds(s.config).length, before);
  });

  test('onAccepted hears each committed message', () => {
    assert.deepEqual(new Set(s.accepted), new Set(listQueueIds(s.config)));
  });
});
