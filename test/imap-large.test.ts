// A 50 MB message in a mailbox: fetching its BODYSTRUCTURE and then one
// attachment (over IMAP) streams the bytes through a few fixed buffers. The
// mailbox listeners run in a child process and its peak resident memory
// (VmHWM) is read from /proc before and after: it must grow by far less than
// the message, so neither the mailbox nor the message was read into memory.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { makeSandbox, ROOT, type Sandbox } from './helpers.ts';
import { LineClient, PASSWORD } from './mailbox/harness.ts';
import { setPassword } from '../src/server/index.ts';

const BIG = 37 << 20; // raw bytes: about 50 MB once base64-encoded
let sb: Sandbox;
let child: ReturnType<typeof spawn>;
let imapPort = 0;

function hwmKb(pid: number): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** An mbox with a few small messages and the big one, written a chunk at a time. */
function writeMailbox(file: string): string {
  const fd = fs.openSync(file, 'w', 0o600);
  const w = (s: string) => fs.writeSync(fd, s);
  for (let i = 0; i < 3; i++) w(`From a@b Mon Jan  1 00:00:0${i} 2024\nFrom: a@b\nSubject: small ${i}\n\nsmall body\n\n`);
  w('From a@b Mon Jan  1 00:01:00 2024\nFrom: a@b\nSubject: big\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="BIG"\n\n');
  w('--BIG\nContent-Type: text/plain\n\nsee the attachments\n--BIG\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n');
  const chunk = crypto.randomBytes(57 * 1024); // whole base64 lines of 76 characters
  for (let done = 0; done < BIG; done += chunk.length) w(`${chunk.toString('base64').replace(/.{76}/g, '$&\n')}`);
  const small = 'the small attachment, after the big one';
  w(`--BIG\nContent-Type: text/plain; name="note.txt"\nContent-Disposition: attachment; filename="note.txt"\n\n${small}\n--BIG--\n\n`);
  fs.closeSync(fd);
  return small;
}

let small = '';
before(async () => {
  sb = makeSandbox({ users: ['big'] });
  fs.appendFileSync(sb.conf, `pop3_listen = 127.0.0.1:0\nimap_listen = 127.0.0.1:0\npasswd_file = ${sb.dir}/etc/smtp-passwd\ntls_cert_file = ${sb.dir}/etc/none.crt\ntls_key_file = ${sb.dir}/etc/none.key\n`);
  fs.writeFileSync(`${sb.dir}/etc/none.crt`, 'x');
  fs.writeFileSync(`${sb.dir}/etc/none.key`, 'x');
  await setPassword(path.join(sb.dir, 'etc/smtp-passwd'), 'big', PASSWORD);
  small = writeMailbox(sb.mbox('big'));
  child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/mailbox/listen-child.ts'), sb.conf], { stdio: ['ignore', 'pipe', 'inherit'] });
  imapPort = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      const m = /ports \d+ (\d+)/.exec(d.toString());
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', () => reject(new Error('listener process exited')));
  });
});

after(() => {
  child.kill('SIGTERM');
  sb.cleanup();
});

/** Send a command, read to its tagged reply; literals are counted, not kept. */
async function command(c: LineClient, tag: string, cmd: string): Promise<{ lines: string[]; literal: number }> {
  c.send(`${tag} ${cmd}`);
  const lines: string[] = [];
  let literal = 0;
  for (;;) {
    const l = await c.line(60_000);
    assert.ok(l !== undefined, 'connection closed');
    lines.push(l.slice(0, 2000));
    const m = /\{(\d+)\}$/.exec(l);
    if (m) literal += await c.skip(Number(m[1]));
    if (l.startsWith(`${tag} `)) return { lines, literal };
  }
}

test('one attachment of a 50 MB message is fetched without reading the message into memory', { timeout: 120_000 }, async () => {
  const c = await LineClient.connect(imapPort);
  await c.line();
  await command(c, 'a1', `LOGIN big ${PASSWORD}`);
  const sel = await command(c, 'a2', 'SELECT INBOX');
  assert.ok(sel.lines.includes('* 4 EXISTS'), sel.lines.join('\n'));
  const base = hwmKb(child.pid!);
  const bs = await command(c, 'a3', 'FETCH 4 (RFC822.SIZE BODYSTRUCTURE)');
  const size = Number(/RFC822.SIZE (\d+)/.exec(bs.lines[0])![1]);
  assert.ok(size > 50_000_000, `the message is ${size} octets`);
  assert.match(bs.lines[0], /"APPLICATION" "OCTET-STREAM" NIL NIL NIL "BASE64" (\d+)/);
  c.send('a4 FETCH 4 (BODY.PEEK[3])');
  const head = (await c.line(60_000))!;
  const n = Number(/\{(\d+)\}$/.exec(head)![1]);
  assert.equal((await c.bytes(n)).toString(), small);
  while (!(await c.line(60_000))!.startsWith('a4 ')) {
    // the closing ")" and the tagged OK
  }
  const big = await command(c, 'a5', 'FETCH 4 (BODY.PEEK[2])');
  assert.ok(big.literal > 49_000_000, `the big attachment came whole (${big.literal} octets)`);
  const grew = hwmKb(child.pid!) - base;
  console.log(`# peak RSS grew by ${grew} kB while fetching a ${size}-octet message's parts`);
  assert.ok(grew < 24 * 1024, `peak RSS grew by ${grew} kB`);
  c.close();
});
