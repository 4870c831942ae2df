// FETCH BODY[section] and BODYSTRUCTURE over the wire for the messages that
// tell servers apart (RFC 3501 6.4.5, 7.4.2): a message that is one
// message/rfc822 part, where part 1 is the whole enclosed message; and a
// multipart whose parts' sizes and lines must match what BODY[n] returns,
// as they must for every part of every corpus message (test/corpus). The
// expected answers are Dovecot 2.3's. RFC 2231 parameters: as stored in an
// IMAP4rev1 session, decoded to UTF-8 in an IMAP4rev2 one (RFC 9051 7.5.2).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { NESTED_BODY, NESTED_MIME_HEADER } from '../src/server/fixtures/mime-messages.ts';
import { ROOT, run } from './helpers.ts';
import { deliver, fetchedLiteral as literal, imapCommand as command, LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

/** CRLF-ended lines, and a last line without CRLF when not empty. */
function lines(t: string): number {
  return t.split('\r\n').length - 1 + (t !== '' && !t.endsWith('\r\n') ? 1 : 0);
}

const INNER = 'From: b@y.test\nSubject: inner\nMIME-Version: 1.0\nContent-Type: text/plain\n\ninner body\n';

/** Parts with RFC 2231 parameters: continued, encoded, and in a charset not known here. */
const RFC2231_BODY = [
  '--p',
  "Content-Type: application/octet-stream; name*0*=utf-8''%E2%82%AC%20rates%20; name*1*=for%202026.txt",
  "Content-Disposition: attachment; filename*=iso-8859-1''caf%E9.txt",
  '',
  'x',
  '--p',
  "Content-Type: text/plain; title*=x-unknown''%E9t%E9",
  '',
  'y',
  '--p',
  "Content-Type: text/plain; name*=utf-8''Rock%20%27n%27%20Roll.txt",
  "Content-Disposition: attachment; filename*0*=utf-8''%C3%A9t%C3%A9%20; filename*1=\"2026.txt\"",
  '',
  'z',
  '--p--',
  '',
].join('\n');

const CORPUS = path.join(ROOT, 'test/corpus');
const CORPUS_FILES = fs.readdirSync(CORPUS).filter((f) => f.endsWith('.eml')).sort();

type Node = string | null | Node[];

/** One IMAP value (list, string, literal, atom) at text[at], as Latin-1 text; and where it ends. */
function parseValue(text: string, at: number): [Node, number] {
  if (text[at] === '(') {
    const list: Node[] = [];
    at++;
    for (;;) {
      while (text[at] === ' ') at++;
      if (text[at] === ')') return [list, at + 1];
      const [v, next] = parseValue(text, at);
      list.push(v);
      at = next;
    }
  }
  if (text[at] === '"') {
    let v = '';
    for (at++; text[at] !== '"'; at++) v += text[at] === '\\' ? text[++at] : text[at];
    return [v, at + 1];
  }
  const lit = /^\{(\d+)\}\r\n/.exec(text.slice(at, at + 20));
  if (lit) {
    const start = at + lit[0].length;
    return [text.slice(start, start + Number(lit[1])), start + Number(lit[1])];
  }
  const atom = /^[^ ()]+/.exec(text.slice(at))![0];
  return [atom === 'NIL' ? null : atom, at + atom.length];
}

/** Every part of a BODYSTRUCTURE with its section number and body-fld-octets (RFC 3501 6.4.5's numbering). */
function partSizes(node: Node[], prefix: string): Array<[string, number]> {
  if (Array.isArray(node[0])) {
    const kids: Node[][] = [];
    for (const n of node) {
      if (!Array.isArray(n)) break; // the subtype, then extension data
      kids.push(n);
    }
    return kids.flatMap((k, i) => partSizes(k, prefix ? `${prefix}.${i + 1}` : `${i + 1}`));
  }
  const section = prefix || '1';
  const out: Array<[string, number]> = [[section, Number(node[6])]];
  if (String(node[0]).toUpperCase() === 'MESSAGE' && Array.isArray(node[8])) {
    const inner = node[8] as Node[];
    out.push(...partSizes(inner, Array.isArray(inner[0]) ? section : `${section}.1`));
  }
  return out;
}

describe('IMAP sections', () => {
  let s: MailboxServer;
  let c: LineClient;
  before(async () => {
    s = await startMailboxServer({ users: ['alice'] });
    deliver(s.sb, 'alice', 'forwarded whole', INNER, 'MIME-Version: 1.0\nContent-Type: message/rfc822\n');
    deliver(s.sb, 'alice', 'nested', NESTED_BODY, NESTED_MIME_HEADER);
    deliver(s.sb, 'alice', 'rfc 2231', RFC2231_BODY, 'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=p\n');
    for (const f of CORPUS_FILES) {
      const r = run(s.sb, 'sendmail', ['-odi', '-i', 'alice'], fs.readFileSync(path.join(CORPUS, f)));
      assert.equal(r.status, 0, `${f}: ${r.stderr}`);
    }
    c = await LineClient.connect(s.imap);
    await c.line();
    await command(c, 'a1', `LOGIN alice ${PASSWORD}`);
    await command(c, 'a2', 'EXAMINE INBOX');
  });
  after(async () => {
    c.close();
    await s.close();
  });

  test('part 1 of a message/rfc822 message is the enclosed message (RFC 3501 6.4.5)', async () => {
    const [resp] = await command(c, 'a3', 'FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[1.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[1.1] BODY.PEEK[HEADER] BODYSTRUCTURE)');
    const crlf = (t: string) => t.replace(/\n/g, '\r\n');
    assert.equal(literal(resp, 'BODY[1]'), crlf(INNER));
    assert.equal(literal(resp, 'BODY[1.MIME]'), literal(resp, 'BODY[HEADER]'), '1.MIME: the top-level header, as Dovecot answers');
    assert.match(literal(resp, 'BODY[1.MIME]'), /^Return-Path: [^]*\r\nFrom: sender@mail.test\r\n[^]*Content-Type: message\/rfc822\r\n\r\n$/);
    assert.equal(literal(resp, 'BODY[1.HEADER]'), crlf(INNER.slice(0, INNER.indexOf('\n\n') + 2)));
    assert.equal(literal(resp, 'BODY[1.TEXT]'), 'inner body\r\n');
    assert.equal(literal(resp, 'BODY[1.1]'), 'inner body\r\n');
    // The top-level body: the whole enclosed message, 6 lines, then its own text part of 1 line.
    const size = Buffer.byteLength(crlf(INNER));
    assert.match(resp, new RegExp(`BODYSTRUCTURE \\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${size} \\(.*\\) \\("TEXT" "PLAIN" \\("CHARSET" "us-ascii"\\) NIL NIL "7BIT" 12 1 NIL NIL NIL NIL\\) 6 NIL NIL NIL NIL\\)`));
  });

  test('the sizes and lines of BODYSTRUCTURE are those of the bytes BODY[n] returns', async () => {
    const [resp] = await command(c, 'a4', 'FETCH 2 (BODYSTRUCTURE BODY.PEEK[1] BODY.PEEK[2] BODY.PEEK[2.1] BODY.PEEK[2.2] BODY.PEEK[3] BODY.PEEK[4])');
    const part = (n: string) => literal(resp, `BODY[${n}]`);
    const sl = (n: string) => `${Buffer.byteLength(part(n), 'latin1')} ${lines(part(n))}`;
    assert.equal(part('1'), 'see below\r\n');
    assert.equal(part('2.1'), 'one\r\ntwo');
    assert.equal(part('3'), '');
    assert.equal(part('4'), '');
    assert.equal(lines(part('2')), 17);
    const text = (n: string, sub = 'PLAIN') => `\\("TEXT" "${sub}" \\("CHARSET" "us-ascii"\\) NIL NIL "7BIT" ${sl(n)} NIL NIL NIL NIL\\)`;
    const fwd = `\\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" ${Buffer.byteLength(part('2'), 'latin1')} \\(.*\\) \\(${text('2.1')}${text('2.2', 'HTML')} "ALTERNATIVE" \\("BOUNDARY" "inner"\\) NIL NIL NIL\\) ${lines(part('2'))} NIL NIL NIL NIL\\)`;
    assert.match(resp, new RegExp(`BODYSTRUCTURE \\(${text('1')}${fwd}${text('3')}${text('4')} "MIXED"`));
  });

  /** A second session, IMAP4rev2 enabled, INBOX examined. */
  async function rev2Client(): Promise<LineClient> {
    const c2 = await LineClient.connect(s.imap);
    await c2.line();
    await command(c2, 'e1', `LOGIN alice ${PASSWORD}`);
    await command(c2, 'e2', 'ENABLE IMAP4rev2');
    await command(c2, 'e3', 'EXAMINE INBOX');
    return c2;
  }

  /** For each corpus message: every part's BODYSTRUCTURE size against the length of BODY[part]; the sections seen. */
  async function checkCorpus(client: LineClient, t: string): Promise<string[][]> {
    const seen: string[][] = [];
    for (let i = 0; i < CORPUS_FILES.length; i++) {
      const seq = 4 + i;
      const [resp] = await command(client, `${t}b${i}`, `FETCH ${seq} BODYSTRUCTURE`);
      const at = resp.indexOf('BODYSTRUCTURE ') + 'BODYSTRUCTURE '.length;
      const parts = partSizes(parseValue(resp, at)[0] as Node[], '');
      assert.ok(parts.length > 0, CORPUS_FILES[i]);
      seen.push(parts.map(([sec]) => sec));
      const [bodies] = await command(client, `${t}p${i}`, `FETCH ${seq} (${parts.map(([sec]) => `BODY.PEEK[${sec}]`).join(' ')})`);
      for (const [sec, size] of parts) {
        const m = new RegExp(`BODY\\[${sec.replace(/\./g, '\\.')}\\] (\\{(\\d+)\\}|"")`).exec(bodies);
        assert.ok(m, `${CORPUS_FILES[i]} BODY[${sec}] in the answer`);
        assert.equal(m[2] === undefined ? 0 : Number(m[2]), size, `${CORPUS_FILES[i]} part ${sec}: BODYSTRUCTURE says ${size}`);
      }
    }
    return seen;
  }

  test('every part of every corpus message: its BODYSTRUCTURE size is the length BODY[part] returns, IMAP4rev1 and IMAP4rev2', async () => {
    const global = CORPUS_FILES.indexOf('21-message-global.eml');
    assert.ok(global >= 0);
    const rev1 = await checkCorpus(c, 'a');
    assert.deepEqual(rev1[global], ['1', '2'], 'IMAP4rev1: message/global is a part like any other');
    const c2 = await rev2Client();
    try {
      const rev2 = await checkCorpus(c2, 'r');
      assert.deepEqual(rev2[global], ['1', '2', '2.1'], 'IMAP4rev2: message/global encloses a message (RFC 9051 media-message)');
    } finally {
      c2.close();
    }
  });

  test('RFC 2231 parameters: as stored for IMAP4rev1, decoded to UTF-8 for IMAP4rev2 (RFC 9051 7.5.2)', async () => {
    const [rev1] = await command(c, 'r1', 'FETCH 3 BODYSTRUCTURE');
    assert.ok(rev1.includes(`("NAME*" "utf-8''%E2%82%AC%20rates%20for%202026.txt")`), rev1);
    assert.ok(rev1.includes(`("ATTACHMENT" ("FILENAME*" "iso-8859-1''caf%E9.txt"))`), rev1);
    const c2 = await rev2Client();
    try {
      const [rev2] = await command(c2, 'e4', 'FETCH 3 BODYSTRUCTURE');
      const utf8 = (t: string) => Buffer.from(t, 'utf8').toString('latin1'); // the client reads Latin-1
      assert.ok(rev2.includes(`("NAME*" {22}\r\n${utf8('€ rates for 2026.txt')})`), rev2);
      assert.ok(rev2.includes(`("ATTACHMENT" ("FILENAME*" {9}\r\n${utf8('café.txt')}))`), rev2);
      assert.ok(rev2.includes(`("TITLE*" "x-unknown''%E9t%E9" "CHARSET" "us-ascii")`), `a charset not known here: left encoded: ${rev2}`);
    } finally {
      c2.close();
    }
  });

  test('imapflow (which enables IMAP4rev2) reads the decoded RFC 2231 names', async () => {
    const f = new ImapFlow({ host: '127.0.0.1', port: s.imap, secure: false, auth: { user: 'alice', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
    await f.connect();
    try {
      assert.ok(f.enabled.has('IMAP4REV2') || f.enabled.has('IMAP4rev2'), [...f.enabled].join(' '));
      const lock = await f.getMailboxLock('INBOX');
      try {
        const msg = await f.fetchOne('3', { bodyStructure: true });
        const [bin, , rock] = (msg as { bodyStructure: { childNodes: Array<{ parameters?: Record<string, string>; dispositionParameters?: Record<string, string> }> } }).bodyStructure.childNodes;
        assert.equal(bin.parameters?.name, '€ rates for 2026.txt');
        assert.equal(bin.dispositionParameters?.filename, 'café.txt');
        assert.equal(rock.parameters?.name, "Rock 'n' Roll.txt", 'sent encoded: decoded, two apostrophes would read as charset\'lang\'');
        assert.equal(rock.dispositionParameters?.filename, 'été 2026.txt');
      } finally {
        lock.release();
      }
    } finally {
      await f.logout();
    }
  });
});
