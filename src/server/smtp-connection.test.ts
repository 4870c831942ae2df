// SmtpSession over in-memory streams, for what loopback sockets cannot
// show: a client from another network (no AUTH without TLS on submission:
// 538 5.7.11; HELO shows the bare address when there is no reverse name),
// and end of input in the middle of a message.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { PassThrough } from 'node:stream';
import { after, test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { listQueueIds } from '../queue/index.ts';
import { makeSandbox } from '../../test/helpers.ts';
import { Policy } from './policy.ts';
import { type ListenerKind, SmtpSession } from './smtp-connection.ts';

const sb = makeSandbox();
fs.appendFileSync(sb.conf, `passwd_file = ${sb.dir}/etc/smtp-passwd\ntls_cert_file = ${sb.dir}/none.crt\ntls_key_file = ${sb.dir}/none.key\n`);
const config = loadConfig({ file: sb.conf });
const policy = new Policy(config, { network: true });
after(() => {
  policy.close();
  sb.cleanup();
});

/** A session from 192.0.2.7 (TEST-NET-1): not loopback, not in relay_networks, no PTR. */
function remoteSession(kind: ListenerKind) {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (d) => (text += d));
  const session = new SmtpSession(
    { kind, policy: () => policy, client: { address: '192.0.2.7', name: undefined, localAddress: '192.0.2.1' }, login: '', loopback: false },
    input,
    output,
  );
  const say = async (lines: string): Promise<string[]> => {
    const from = text.length;
    input.write(lines);
    for (let i = 0; i < 200 && !/\d{3} [^\r]*\r\n$/.test(text.slice(from)); i++) await new Promise((r) => setTimeout(r, 5));
    return text.slice(from).split('\r\n').filter(Boolean);
  };
  return { session, input, say };
}

test('a remote client on the submission listener: no AUTH in the clear, 538 5.7.11; MAIL needs AUTH', async () => {
  const { session, say } = remoteSession('submission');
  await session.start();
  const ehlo = await say('EHLO far.test\r\n');
  assert.equal(ehlo[0], '250-mail.test Hello [192.0.2.7]');
  assert.ok(!ehlo.some((l) => l.includes('AUTH')), 'AUTH is not offered');
  assert.ok(!ehlo.some((l) => l.includes('STARTTLS')), 'no certificate, no STARTTLS');
  assert.deepEqual(await say('AUTH PLAIN AGFsaWNlAHMzY3JldA==\r\n'), ['538 5.7.11 Encryption required for requested authentication mechanism']);
  assert.deepEqual(await say('MAIL FROM:<alice@mail.test>\r\n'), ['530 5.7.0 Authentication required']);
  assert.deepEqual(await say('STARTTLS\r\n'), ['454 4.7.0 TLS not available due to temporary reason']);
  await say('QUIT\r\n');
  await session.finished;
});

test('a remote client on the smtp listener: local mail yes, relaying no, unqualified sender no', async () => {
  const { session, say } = remoteSession('smtp');
  await session.start();
  await say('HELO far.test\r\n');
  assert.deepEqual(await say('MAIL FROM:<root>\r\n'), ['553 5.1.7 <root>... Domain name required for sender address root']);
  assert.deepEqual(await say('MAIL FROM:<x@far.test>\r\n'), ['250 2.1.0 <x@far.test>... Sender ok']);
  assert.deepEqual(await say('RCPT TO:<x@other.test>\r\n'), ['550 5.7.1 <x@other.test>... Relaying denied']);
  assert.deepEqual(await say('RCPT TO:<bob@[192.0.2.1]>\r\n'), ['250 2.1.5 <bob@[192.0.2.1]>... Recipient ok']);
  await say('QUIT\r\n');
  await session.finished;
});

test('end of input in the middle of DATA: nothing is queued, the session ends', async () => {
  const { session, input, say } = remoteSession('smtp');
  await session.start();
  await say('HELO far.test\r\nMAIL FROM:<x@far.test>\r\nRCPT TO:<bob@mail.test>\r\nDATA\r\n');
  input.end('Subject: cut\r\n\r\nhalf');
  await session.finished;
  assert.equal(listQueueIds(config).length, 0);
});

test('input that ends right after QUIT is answered in full first (printf ... | sendmail -bs)', async () => {
  const { session, input } = remoteSession('smtp');
  const out: string[] = [];
  await session.start();
  (session as unknown as { output: PassThrough }).output.on('data', (d: Buffer) => out.push(d.toString()));
  input.end('HELO far.test\r\nMAIL FROM:<x@far.test>\r\nRCPT TO:<bob@mail.test>\r\nDATA\r\nSubject: eof\r\n\r\nhi\r\n.\r\nQUIT\r\n');
  await session.finished;
  const text = out.join('');
  assert.match(text, /250 2\.0\.0 \w{14} Message accepted for delivery\r\n221 2\.0\.0 mail\.test closing connection\r\n$/);
  assert.equal(listQueueIds(config).length, 1);
});

test('a queue that cannot be written: 451 4.3.0, and the client keeps its message', async () => {
  const broken = loadConfig({ file: sb.conf, overrides: { queue_dir: sb.conf } }); // a file, not a directory
  const p = new Policy(broken, { network: false });
  const input = new PassThrough();
  const output = new PassThrough();
  let text = '';
  output.on('data', (d) => (text += d));
  const session = new SmtpSession({ kind: 'stdio', policy: () => p, client: { address: undefined, name: undefined, localAddress: undefined }, login: 'root', loopback: true }, input, output);
  await session.start();
  input.end('HELO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<bob@mail.test>\r\nDATA\r\nSubject: x\r\n\r\ny\r\n.\r\nQUIT\r\n');
  await session.finished;
  p.close();
  assert.match(text, /\r\n451 4\.3\.0 Temporary system failure, please try again later\r\n221 /);
  assert.match(fs.readFileSync(sb.log, 'utf8'), /SYSERR: cannot queue the message: /);
});
