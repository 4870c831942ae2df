// Tests for imap-mime.ts: BODYSTRUCTURE sizes and line counts (RFC 3501
// 7.4.2 body-fld-octets and body-fld-lines) against the bytes BODY[n] serves
// for the same part, with the CRLF before a boundary belonging to the
// boundary (RFC 2046 5.1.1), for hand-made messages, every corpus message
// and random MIME messages; and which part a section number names (RFC 3501
// 6.4.5), for message/rfc822 messages and parts above all. The messages are
// read through a stand-in FolderReader in small chunks, so lines split across
// chunks are covered too.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { type FolderReader, type MessageRecord, toServed, visibleHeader } from '../mailbox/index.ts';
import { rng } from '../mailbox/fixtures/reference.ts';
import { NESTED_BODY, NESTED_MIME_HEADER } from './fixtures/mime-messages.ts';
import { bodyStructure, findPart, type Part, parseStructure } from './imap-mime.ts';

/** A stored message (no From_ line) and a reader of it, `chunk` bytes at a time. */
function stored(text: string, chunk = 7): { buf: Buffer; rec: MessageRecord; reader: FolderReader } {
  const buf = Buffer.from(text, 'latin1');
  const blank = /\r?\n\r?\n/.exec(text);
  const headerLength = blank ? blank.index + blank[0].length : buf.length;
  const rec = { uid: 1, offset: 0, length: buf.length, fromLen: 0, headerLength } as MessageRecord;
  const reader: FolderReader = {
    header: async () => buf.subarray(0, headerLength),
    fromLine: async () => Buffer.alloc(0),
    // As the folder's reader does: with `into`, every chunk is read into that one buffer.
    chunks: async function* (_r, from, to, into) {
      for (let i = from; i < to; i += chunk) {
        const piece = buf.subarray(i, Math.min(i + chunk, to));
        yield into ? into.subarray(0, piece.copy(into)) : piece;
      }
    },
  };
  return { buf, rec, reader };
}

async function structure(text: string, chunk?: number, global = false): Promise<{ root: Part; buf: Buffer }> {
  const s = stored(text, chunk);
  return { root: await parseStructure(s.reader, s.rec, global), buf: s.buf };
}

/** What BODY[n] serves for a part's body. */
function servedBody(buf: Buffer, p: Part): Buffer {
  return toServed(buf.subarray(p.sBodyStart, p.sBodyEnd));
}

/** Lines as Dovecot and RFC 3501 count them: CRLF-ended lines, and a last line without CRLF when not empty. */
function countLines(b: Buffer): number {
  const s = b.toString('latin1');
  const ended = s.split('\r\n').length - 1;
  return ended + (s.length > 0 && !s.endsWith('\r\n') ? 1 : 0);
}

/** Every part of the tree: multipart children and the messages inside message/rfc822 parts. */
function allParts(p: Part): Part[] {
  return [p, ...p.children.flatMap(allParts), ...(p.message ? allParts(p.message) : [])];
}

/** Sizes and lines of every part agree with its served body. */
function assertConsistent(buf: Buffer, root: Part): void {
  for (const p of allParts(root)) {
    const body = servedBody(buf, p);
    assert.equal(p.size, body.length, `size of a ${p.type}/${p.subtype} part`);
    if (p.type === 'TEXT' || p.message || p === root) {
      assert.equal(p.lines, countLines(body), `lines of a ${p.type}/${p.subtype} part: ${JSON.stringify(body.toString('latin1'))}`);
    }
  }
}

/** A multipart message of Dovecot's own tests (test-imap-bodystructure.c), with its known answer. */
const FORWARD = [
  'From: user@domain.org',
  'Date: Sat, 24 Mar 2017 23:00:00 +0200',
  'Mime-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="foo bar"',
  '',
  '--foo bar',
  'Content-Type: text/plain; charset=us-ascii',
  '',
  'See attached...',
  '',
  '--foo bar',
  'Content-Type: message/rfc822',
  '',
  'From: user@domain.org',
  'Date: Sat, 24 Mar 2017 23:00:00 +0200',
  'Mime-Version: 1.0',
  'Content-Type: text/plain; charset=us-ascii',
  '',
  'body',
  '',
  '--foo bar--',
  '',
].join('\n');

/** A forwarded message that is itself multipart: its boundary lines are lines of the message/rfc822 part. */
const NESTED = `From: a@x.test\nSubject: fwd\n${NESTED_MIME_HEADER}\n${NESTED_BODY}`;

describe('BODYSTRUCTURE sizes and lines', () => {
  it("matches Dovecot's answer for a forwarded message", async () => {
    const { root, buf } = await structure(FORWARD);
    const bs = bodyStructure(root, false);
    assert.match(bs, /^\(\("TEXT" "PLAIN" \("CHARSET" "us-ascii"\) NIL NIL "7BIT" 17 1\)/);
    assert.match(bs, /\("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 133 \(.*\) \("TEXT" "PLAIN" \("CHARSET" "us-ascii"\) NIL NIL "7BIT" 6 1\) 6\) "MIXED"\)$/);
    assertConsistent(buf, root);
  });

  it('leaves out the line break before a boundary, counts the boundary lines of a forwarded multipart', async () => {
    const { root, buf } = await structure(NESTED);
    const [text, fwd, empty, bare] = root.children;
    assert.deepEqual([text.size, text.lines], [11, 1]); // "see below\r\n"
    // The enclosed message: 4 header lines, the blank line, 12 lines of body from
    // "preamble" to "epilogue" (the empty line before --outer is the boundary's CRLF).
    assert.equal(fwd.lines, 17);
    assert.equal(fwd.message!.lines, 12);
    const [plain, html] = fwd.message!.children;
    assert.deepEqual([servedBody(buf, plain).toString(), plain.lines], ['one\r\ntwo', 2]);
    assert.deepEqual([servedBody(buf, html).toString(), html.lines], ['<p>one two</p>', 1]);
    assert.deepEqual([empty.size, empty.lines], [0, 0], 'a part whose body is one empty line');
    assert.deepEqual([bare.size, bare.lines], [0, 0], 'a part with no body at all');
    assertConsistent(buf, root);
  });

  it('agrees with the served bytes whatever the chunking and line ends', async () => {
    for (const text of [FORWARD, NESTED]) {
      for (const chunk of [1, 3, 64, 1 << 16]) {
        for (const form of [text, text.replace(/\n/g, '\r\n')]) {
          const { root, buf } = await structure(form, chunk);
          assertConsistent(buf, root);
        }
      }
    }
  });

  it('counts a top-level message/rfc822 body with its boundary lines, and a last line without a line end', async () => {
    const top = ['Content-Type: message/rfc822', '', ...NESTED.split('\n').slice(11)].join('\n');
    const { root, buf } = await structure(top);
    assertConsistent(buf, root);
    const unended = await structure('Subject: x\n\none\ntwo');
    assert.equal(unended.root.lines, 2);
    assertConsistent(unended.buf, unended.root);
  });
});

describe('section numbers (RFC 3501 6.4.5)', () => {
  const FWD_TOP = [
    'From: a@x.test',
    'Subject: forwarded as the whole message',
    'MIME-Version: 1.0',
    'Content-Type: message/rfc822',
    '',
    'From: b@y.test',
    'Subject: inner',
    '',
    'inner body',
    '',
  ].join('\n');

  it('part 1 of a message/rfc822 message is its body, the whole enclosed message', async () => {
    const { root, buf } = await structure(FWD_TOP);
    const p1 = findPart(root, [1]);
    assert.equal(p1, root);
    assert.equal(servedBody(buf, p1!).toString(), 'From: b@y.test\r\nSubject: inner\r\n\r\ninner body\r\n');
    assert.match(p1!.header.toString(), /^From: a@x.test\n[^]*Content-Type: message\/rfc822\n\n$/, '1.MIME: the top-level header');
    assert.equal(p1!.message!.header.toString(), 'From: b@y.test\nSubject: inner\n\n', '1.HEADER');
    assert.equal(servedBody(buf, p1!.message!).toString(), 'inner body\r\n', '1.TEXT');
    assert.equal(findPart(root, [1, 1]), root.message, '1.1: the enclosed message is not multipart');
    assert.equal(findPart(root, [2]), undefined);
    assert.equal(findPart(root, [1, 2]), undefined);
  });

  it('walks multiparts and message/rfc822 parts as Dovecot does', async () => {
    const { root } = await structure(NESTED);
    const fwd = root.children[1];
    assert.equal(findPart(root, [1]), root.children[0]);
    assert.equal(findPart(root, [2]), fwd);
    assert.equal(findPart(root, [2, 2]), fwd.message!.children[1]);
    assert.equal(findPart(root, [5]), undefined);
    // Dovecot's imap_msgpart_find: a last "1" under a non-multipart part names that part; more numbers need a message.
    assert.equal(findPart(root, [1, 1]), root.children[0]);
    assert.equal(findPart(root, [1, 1, 1]), undefined);
    const plain = await structure('Subject: x\n\nhello\n');
    assert.equal(findPart(plain.root, [1]), plain.root);
    assert.equal(findPart(plain.root, [1, 1]), undefined);
  });
});

describe('MIME headers of parts (RFC 3501 6.4.5)', () => {
  it('a part whose empty line is the next boundary\'s CRLF has no empty line and no body', async () => {
    for (const eol of ['\n', '\r\n']) {
      const text = ['Content-Type: multipart/mixed; boundary="B"', '', '--B', 'Content-Type: text/plain; charset=a', '', '', '--B', 'Content-Type: text/plain; charset=b', '', '--B--', ''].join(eol);
      for (const chunk of [3, 7, 1000]) {
        const { root, buf } = await structure(text, chunk);
        const [withBody, headerOnly] = root.children;
        assert.equal(toServed(withBody.header).toString(), 'Content-Type: text/plain; charset=a\r\n\r\n', 'an empty line, then an empty body');
        assert.equal(servedBody(buf, withBody).length, 0);
        assert.equal(toServed(headerOnly.header).toString(), 'Content-Type: text/plain; charset=b\r\n', 'python:msg_12.txt part 3.2, as Dovecot serves it');
        assert.equal(servedBody(buf, headerOnly).length, 0);
        assert.equal(headerOnly.size, 0);
        assert.equal(headerOnly.sBodyStart, headerOnly.sBodyEnd);
      }
    }
  });
});

describe('BODYSTRUCTURE of a multipart with no delimiter line', () => {
  it('has one empty text/plain part described as any other: charset us-ascii, extension data', async () => {
    const { root } = await structure('Content-Type: multipart/mixed; boundary="B"\n\nno delimiter here\n');
    assert.equal(bodyStructure(root, true), '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0 NIL NIL NIL NIL) "MIXED" ("BOUNDARY" "B") NIL NIL NIL)');
    assert.equal(bodyStructure(root, false), '(("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 0 0) "MIXED")');
  });
});

describe('RFC 2231 parameters in BODYSTRUCTURE', () => {
  const TEXT = [
    'Content-Type: multipart/mixed; boundary=b',
    '',
    '--b',
    "Content-Type: application/octet-stream; name*0*=utf-8''%E2%82%AC%20rates%20; name*1*=for%202026.txt",
    "Content-Disposition: attachment; filename*0*=utf-8''%E2%82%AC%20rates; filename*1=\" 50%\"",
    '',
    'x',
    '--b',
    "Content-Type: text/plain; charset=us-ascii; title*=x-unknown''%E9t%E9; URL*0=\"ftp://\"; URL*1=\"x.test/f\"",
    '',
    'y',
    '--b',
    "Content-Type: text/plain; charset=us-ascii; name*=utf-8''Rock%20%27n%27%20Roll.txt; x*=''Bob%27s",
    '',
    '--b--',
    '',
  ].join('\n');

  it('IMAP4rev1: continuations joined, encoded values as they are (RFC 3501; as Dovecot 2.3)', async () => {
    const { root } = await structure(TEXT);
    const bs = bodyStructure(root, true);
    assert.ok(bs.includes(`("NAME*" "utf-8''%E2%82%AC%20rates%20for%202026.txt")`), bs);
    assert.ok(bs.includes(`("ATTACHMENT" ("FILENAME*" "utf-8''%E2%82%AC%20rates 50%25"))`), bs);
    assert.ok(bs.includes(`("CHARSET" "us-ascii" "URL" "ftp://x.test/f" "TITLE*" "x-unknown''%E9t%E9")`), bs);
  });

  it('IMAP4rev2: encoded values decoded to UTF-8 under the same name (RFC 9051 7.5.2), unknown charsets left encoded', async () => {
    const { root } = await structure(TEXT);
    const bs = bodyStructure(root, true, true);
    assert.ok(bs.includes('("NAME*" {22}\r\n\u20ac rates for 2026.txt)'), bs);
    assert.ok(bs.includes('("ATTACHMENT" ("FILENAME*" {13}\r\n\u20ac rates 50%))'), bs);
    assert.ok(bs.includes(`("CHARSET" "us-ascii" "URL" "ftp://x.test/f" "TITLE*" "x-unknown''%E9t%E9")`), bs);
    // Two apostrophes would read as charset'lang' again: left encoded. One is no such risk.
    assert.ok(bs.includes(`("CHARSET" "us-ascii" "NAME*" "utf-8''Rock%20%27n%27%20Roll.txt" "X*" "Bob's")`), bs);
  });
});

describe('message/global (RFC 6532)', () => {
  const text = fs.readFileSync(path.resolve(import.meta.dirname, '../../test/corpus/21-message-global.eml')).toString('latin1');

  it('is a part like any other for IMAP4rev1 (RFC 3501 media-message is RFC822 alone)', async () => {
    const { root, buf } = await structure(text);
    const bs = bodyStructure(root, false);
    assert.match(bs, /\("MESSAGE" "GLOBAL" NIL NIL NIL "7BIT" \d+\) "MIXED"\)$/);
    assert.equal(root.children[1].message, undefined);
    assert.equal(findPart(root, [2, 1, 1]), undefined, 'nothing inside it');
    assertConsistent(buf, root);
  });

  it('encloses a message for IMAP4rev2 (RFC 9051 media-message: "RFC822" / "GLOBAL"): envelope, body, lines, parts inside', async () => {
    for (const chunk of [3, 1 << 16]) {
      const { root, buf } = await structure(text, chunk, true);
      const bs = bodyStructure(root, false);
      assert.match(bs, /\("MESSAGE" "GLOBAL" NIL NIL NIL "7BIT" \d+ \("Sat, 10 Jan 2026 08:00:00 \+0100" .*\) \("TEXT" "PLAIN" \("CHARSET" "utf-8"\) NIL NIL "8BIT" \d+ 1\) \d+\) "MIXED"\)$/s);
      const inner = findPart(root, [2, 1]);
      assert.equal(servedBody(buf, inner!).toString('utf8'), 'Viele Grüße, a word to find: okapi.');
      assertConsistent(buf, root);
    }
  });
});

describe('the top-level header as served', () => {
  it('leaves out a hidden mbox field however many blanks stand before its colon, as visibleHeader does', async () => {
    const text = 'Subject: x\nStatus                        : RO\nX-Status: A\n\nbody\n';
    const { root, buf } = await structure(text);
    assert.equal(root.header.toString(), 'Subject: x\n\n');
    assert.equal(toServed(root.header).toString(), toServed(visibleHeader(buf.subarray(0, text.indexOf('\n\n') + 2))).toString());
    assert.equal(root.sBodyStart, text.indexOf('\n\n') + 2);
  });
});

/** The corpus of the differential test, and Python's email test messages when installed. */
function corpusMessages(): Array<{ name: string; text: string }> {
  const dirs = [path.resolve(import.meta.dirname, '../../test/corpus')];
  for (const v of fs.existsSync('/usr/lib') ? fs.readdirSync('/usr/lib').filter((d) => /^python3\.\d+$/.test(d)) : []) dirs.push(`/usr/lib/${v}/test/test_email/data`);
  const out: Array<{ name: string; text: string }> = [];
  for (const d of dirs.filter((x) => fs.existsSync(x))) {
    for (const f of fs.readdirSync(d).filter((n) => /\.eml$|^msg_\w+\.txt$/.test(n)).sort()) {
      out.push({ name: `${d}/${f}`, text: fs.readFileSync(path.join(d, f)).toString('latin1') });
    }
  }
  return out;
}

/** Lines a random MIME body is made of: text that mbox quoting and CRLF touch, and blank lines. */
const TEXT_LINES = ['plain text', '', '>From quoted', 'From x', '>>From y', '>', '> not from', '-- not a boundary', ' ', '=3D qp', 'Status: RO'];

/** A random MIME entity (header and body), nested up to `depth`; line ends LF or CRLF at random. */
function randomEntity(r: () => number, depth: number, top: boolean): string[] {
  const pick = <T>(a: T[]): T => a[Math.floor(r() * a.length)];
  const header: string[] = top && r() < 0.5 ? ['Status: RO', 'X-UID: 3', 'Subject: random'] : ['X-Part: yes'];
  const kind = depth > 0 ? pick(['text', 'text', 'multipart', 'multipart', 'message', 'bare']) : pick(['text', 'bare']);
  const lines: string[] = [];
  if (kind === 'multipart') {
    const b = `b${depth}${Math.floor(r() * 1000)}`;
    header.push(`Content-Type: multipart/${pick(['mixed', 'alternative', 'digest'])}; boundary="${b}"`);
    if (r() < 0.5) lines.push('preamble');
    for (let n = Math.floor(r() * 4); n > 0; n--) lines.push(`--${b}${r() < 0.2 ? '  ' : ''}`, ...randomEntity(r, depth - 1, false));
    if (r() < 0.8) lines.push(`--${b}--`);
    if (r() < 0.5) lines.push('epilogue', ...(r() < 0.5 ? [''] : []));
  } else if (kind === 'message') {
    header.push('Content-Type: message/rfc822');
    lines.push(...randomEntity(r, depth - 1, false));
  } else {
    if (kind === 'text') header.push('Content-Type: text/plain');
    for (let n = Math.floor(r() * 5); n > 0; n--) lines.push(pick(TEXT_LINES));
  }
  return r() < 0.1 ? header : [...header, '', ...lines];
}

describe('BODYSTRUCTURE sizes are the lengths BODY[n] returns, for every part', () => {
  it('of every corpus message, whatever the chunking', async () => {
    const msgs = corpusMessages();
    assert.ok(msgs.length >= 20, 'the corpus is there');
    for (const { name, text } of msgs) {
      for (const form of [text, text.replace(/\r?\n/g, '\r\n'), `Status: RO\nContent-Length: 9\n${text}`]) {
        for (const chunk of [5, 1 << 16]) {
          const { root, buf } = await structure(form, chunk);
          try {
            assertConsistent(buf, root);
          } catch (e) {
            throw new Error(`${name} (chunk ${chunk}): ${(e as Error).message}`);
          }
        }
      }
    }
  });

  it('of random MIME messages: nested, empty, quoted From lines, mixed line ends, no final line end', async () => {
    const r = rng(2026);
    for (let i = 0; i < 1500; i++) {
      const lines = randomEntity(r, 3, true);
      let text = lines.map((l) => l + (r() < 0.3 ? '\r\n' : '\n')).join('');
      if (r() < 0.2) text = text.replace(/\r?\n$/, '');
      const { root, buf } = await structure(text, 1 + Math.floor(r() * 40));
      try {
        assertConsistent(buf, root);
      } catch (e) {
        throw new Error(`${JSON.stringify(text)}: ${(e as Error).message}`);
      }
    }
  });
});
