// BINARY (RFC 3516) on the wire: FETCH BINARY, BINARY.PEEK with a partial
// range, BINARY.SIZE, literal8 (~{n}) when the decoded bytes hold a NUL,
// [UNKNOWN-CTE] for an encoding nobody defined, APPEND with a literal8; and
// imapflow, which fetches decoded parts and appends NUL-bearing messages
// with literal8 once BINARY is advertised.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { deliver, imapExchange as command, LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

const BLOB = Buffer.from([0x00, 0x01, 0xff, 0x0d, 0x0a, 0x41, 0x00, 0x42]);
const MIME = [
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="b1"',
  '',
  '--b1',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'caf=C3=A9 au l=',
  'ait',
  '--b1',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: base64',
  '',
  BLOB.toString('base64'),
  '--b1',
  'Content-Type: text/plain',
  'Content-Transfer-Encoding: x-rot13',
  '',
  'uryyb',
  '--b1--',
  '',
].join('\n');

describe('BINARY', () => {
  let s: MailboxServer;
  before(async () => {
    s = await startMailboxServer({ users: ['alice', 'bob'] });
    const [head, ...body] = MIME.split('\n\n');
    deliver(s.sb, 'alice', 'parts', body.join('\n\n'), head + '\n');
    deliver(s.sb, 'bob', 'parts', body.join('\n\n'), head + '\n');
  });
  after(() => s.close());

  test('BINARY[part] decoded, literal8 for NUL bytes, BINARY.SIZE, a partial BINARY.PEEK, [UNKNOWN-CTE], APPEND with literal8', async () => {
    const c = await LineClient.connect(s.imap);
    try {
      await c.line();
      assert.match((await command(c, 'a', `LOGIN alice ${PASSWORD}`)).done, /^a OK \[CAPABILITY [^\]]* BINARY/);
      await command(c, 'b', 'SELECT INBOX');
      const qp = await command(c, 'c', 'FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])');
      assert.equal(qp.done, 'c OK FETCH completed');
      const text = Buffer.from('café au lait', 'utf8').toString('latin1');
      assert.equal(qp.lines[0], `* 1 FETCH (BINARY[1] {${text.length}}\r\n${text} BINARY.SIZE[1] ${text.length})`);
      const bin = await command(c, 'd', 'FETCH 1 (BINARY.PEEK[2])');
      assert.equal(bin.lines[0], `* 1 FETCH (BINARY[2] ~{${BLOB.length}}\r\n${BLOB.toString('latin1')})`);
      const part = await command(c, 'e', 'FETCH 1 (BINARY.PEEK[2]<1.3>)');
      assert.equal(part.lines[0], `* 1 FETCH (BINARY[2]<1> ~{3}\r\n${BLOB.subarray(1, 4).toString('latin1')})`, 'the part holds NUL bytes: literal8 for any window of it');
      const size = await command(c, 'f', 'FETCH 1 (BINARY.SIZE[2] BINARY.SIZE[])');
      assert.match(size.lines[0], new RegExp(`^\\* 1 FETCH \\(BINARY\\.SIZE\\[2\\] ${BLOB.length} BINARY\\.SIZE\\[\\] \\d+\\)$`));
      assert.match((await command(c, 'g', 'FETCH 1 (BINARY.PEEK[3])')).done, /^g NO \[UNKNOWN-CTE\]/);
      assert.match((await command(c, 'h', 'FETCH 1 (BINARY[1.MIME])')).done, /^h BAD /, 'BINARY takes part numbers only');
      assert.match((await command(c, 'i', 'FETCH 1 (FLAGS)')).lines[0], /FLAGS \(\\Recent\)/, 'PEEK left \\Seen alone');
      assert.match((await command(c, 'j', 'FETCH 1 (BINARY[1])')).lines[0], /\\Seen/, 'BINARY sets \\Seen');

      // APPEND with a literal8: stored as it came, NUL bytes and all.
      const msg = Buffer.concat([Buffer.from('Subject: nul\r\n\r\nx'), Buffer.from([0]), Buffer.from('y\r\n')]);
      c.socket.write(Buffer.concat([Buffer.from(`k APPEND INBOX ~{${msg.length}+}\r\n`), msg, Buffer.from('\r\n')]));
      assert.match((await c.line()) ?? '', /^\* 2 EXISTS|^k OK/);
    } finally {
      c.close();
    }
  });

  test('imapflow: a decoded part with binary: true, and APPEND of a message with a NUL byte (literal8)', async () => {
    const f = new ImapFlow({ host: '127.0.0.1', port: s.imap, secure: false, auth: { user: 'bob', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await f.connect();
    try {
      assert.ok(f.capabilities.has('BINARY'));
      await f.mailboxOpen('INBOX');
      const m = await f.fetchOne('1', { bodyParts: ['2', '1'] }, { binary: true });
      assert.ok(m);
      assert.deepEqual(m.bodyParts?.get('2'), BLOB);
      assert.equal(m.bodyParts?.get('1')?.toString('utf8'), 'café au lait');
      const msg = Buffer.concat([Buffer.from('Subject: nul\r\n\r\nx'), Buffer.from([0]), Buffer.from('y\r\n')]);
      const r = await f.append('INBOX', msg);
      assert.ok(r && r.uid === 2);
      const back = await f.fetchOne('2', { source: true }, { uid: true });
      assert.ok(back && back.source?.includes(Buffer.from([0x78, 0, 0x79])));
    } finally {
      await f.logout();
    }
  });
});
