// Tests for headers.ts: CRLF normalisation (lone CR kept, as sendmail's
// collect() keeps it), header/body splitting with sendmail's rules for where
// the header ends, byte-exact write-back of untouched fields, and makeHeader
// never letting a value open a new field.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  cleanValue,
  fold,
  getAll,
  getHeader,
  joinMessage,
  makeHeader,
  normalizeLineEnds,
  removeHeaders,
  serializeHeaders,
  splitMessage,
} from './headers.ts';

const b = (s: string) => Buffer.from(s, 'utf8');

describe('normalizeLineEnds', () => {
  it('returns the same buffer when there is no CRLF', () => {
    const data = b('a\nb\n');
    assert.equal(normalizeLineEnds(data), data);
  });
  it('turns CRLF into LF, at the start, middle and end', () => {
    assert.equal(normalizeLineEnds(b('\r\na\r\nb\r\n')).toString(), '\na\nb\n');
  });
  it('keeps a lone CR, as sendmail does', () => {
    assert.equal(normalizeLineEnds(b('a\rb\r\nc\r')).toString(), 'a\rb\nc\r');
    assert.equal(normalizeLineEnds(b('a\r\r\n')).toString(), 'a\r\n');
  });
  it('keeps every other byte as it was', () => {
    const data = Buffer.from([0, 0xff, 0x0d, 0x0a, 0x80, 0x0d, 0x41, 0x0a]);
    assert.deepEqual([...normalizeLineEnds(data)], [0, 0xff, 0x0a, 0x80, 0x0d, 0x41, 0x0a]);
  });
  it('agrees with a plain replacement on a large mixed input', () => {
    const unit = 'line one\r\nline\rtwo\n\r\n\r\rx';
    const data = b(unit.repeat(20000));
    const want = unit.replace(/\r\n/g, '\n').repeat(20000);
    assert.equal(normalizeLineEnds(data).toString('latin1'), Buffer.from(want).toString('latin1'));
  });
});

describe('splitMessage', () => {
  const lf = 'From: a@x\nSubject: hello\n  world\nTo: b@y\n\nbody line\n\nmore\n';

  it('reads fields and body of an LF message', () => {
    const s = splitMessage(b(lf));
    assert.deepEqual(s.headers.map((h) => h.name), ['From', 'Subject', 'To']);
    assert.equal(getHeader(s.headers, 'subject'), 'hello  world');
    assert.equal(s.body.toString(), 'body line\n\nmore\n');
    assert.equal(s.headerBytes, lf.indexOf('\n\n') + 2);
    assert.equal(s.separator.toString(), '\n');
  });

  it('reads a CRLF message the same way', () => {
    const crlf = lf.replace(/\n/g, '\r\n');
    const s = splitMessage(b(crlf));
    assert.equal(getHeader(s.headers, 'SUBJECT'), 'hello  world');
    assert.equal(s.body.toString(), 'body line\r\n\r\nmore\r\n');
    assert.equal(s.separator.toString(), '\r\n');
  });

  for (const [what, text] of [
    ['LF', lf],
    ['CRLF', lf.replace(/\n/g, '\r\n')],
    ['8-bit', 'Subject: Grüße\n\tvom Büro\nX-Bin: \xff\n\nä\n'],
  ]) {
    it(`writes an untouched ${what} message back byte for byte`, () => {
      const data = Buffer.from(text, what === '8-bit' ? 'latin1' : 'utf8');
      const s = splitMessage(data);
      assert.deepEqual(joinMessage(s.headers, s.body, s.separator), data);
      assert.deepEqual(Buffer.concat([serializeHeaders(s.headers), s.separator]), data.subarray(0, s.headerBytes));
    });
  }

  it('keeps the bytes of fields it did not touch when others are removed', () => {
    const data = b('A: 1\r\nB: two\r\n\tfolded\r\nC:3\r\n\r\nx');
    const s = splitMessage(data);
    const out = serializeHeaders(removeHeaders(s.headers, 'b'));
    assert.equal(out.toString(), 'A: 1\r\nC:3\r\n');
  });

  it('treats a message with no blank line as all headers', () => {
    const s = splitMessage(b('Subject: x\nTo: y'));
    assert.equal(s.headers.length, 2);
    assert.equal(getHeader(s.headers, 'To'), 'y');
    assert.equal(s.body.length, 0);
    assert.equal(serializeHeaders(s.headers).toString(), 'Subject: x\nTo: y\n');
  });

  it('treats a message whose first line is not a header as all body', () => {
    const data = b('Hello there\nSubject: not a header\n\nstill body\n');
    const s = splitMessage(data);
    assert.equal(s.headers.length, 0);
    assert.equal(s.headerBytes, 0);
    assert.deepEqual(s.body, data);
  });

  it('starts the body at the first line that is not a header, blank line or not', () => {
    const s = splitMessage(b('Subject: x\nthis is body\nTo: y\n'));
    assert.deepEqual(s.headers.map((h) => h.name), ['Subject']);
    assert.equal(s.body.toString(), 'this is body\nTo: y\n');
    assert.equal(s.separator.length, 0);
    assert.equal(joinMessage(s.headers, s.body).toString(), 'Subject: x\n\nthis is body\nTo: y\n');
  });

  it('does not take a Unix "From " line, a MIME boundary or a bare word for a header', () => {
    assert.equal(splitMessage(b('From root Sun Nov 22 00:03:44 2026\nSubject: x\n')).headers.length, 0);
    assert.equal(splitMessage(b('--boundary:x\n')).headers.length, 0);
    assert.equal(splitMessage(b(' indented: x\n')).headers.length, 0);
    assert.equal(splitMessage(b(':novalue\n')).headers.length, 0);
  });

  it('accepts blanks before the colon and empty values, as sendmail does', () => {
    const s = splitMessage(b('Subject : spaced\nX-Empty:\nX-Blank:   \n\n'));
    assert.deepEqual(s.headers.map((h) => [h.name, h.value]), [['Subject', 'spaced'], ['X-Empty', ''], ['X-Blank', '']]);
  });

  it('handles empty input', () => {
    const s = splitMessage(Buffer.alloc(0));
    assert.deepEqual(s.headers, []);
    assert.equal(s.headerBytes, 0);
    assert.equal(s.body.length, 0);
  });

  it('decodes values as UTF-8', () => {
    assert.equal(getHeader(splitMessage(b('Subject: Grüße\n\n')).headers, 'Subject'), 'Grüße');
  });
});

describe('getHeader / getAll / removeHeaders', () => {
  const { headers } = splitMessage(b('Received: one\nreceived: two\nRECEIVED: three\nTo: a\n\n'));
  it('find fields regardless of case, in order', () => {
    assert.equal(getHeader(headers, 'received'), 'one');
    assert.deepEqual(getAll(headers, 'Received'), ['one', 'two', 'three']);
    assert.equal(getHeader(headers, 'Cc'), undefined);
    assert.deepEqual(getAll(headers, 'Cc'), []);
  });
  it('remove several names without changing the input', () => {
    const left = removeHeaders(headers, 'RECEIVED', 'cc');
    assert.deepEqual(left.map((h) => h.name), ['To']);
    assert.equal(headers.length, 4);
  });
});

describe('makeHeader', () => {
  it('builds an LF-terminated field', () => {
    const h = makeHeader('Subject', 'hello');
    assert.equal(h.raw.toString(), 'Subject: hello\n');
    assert.equal(h.value, 'hello');
  });

  for (const evil of ['x\nBcc: victim@evil.example', 'x\r\nBcc: victim@evil.example', 'x\rBcc: victim@evil.example', 'x\n\nbody', 'x\n']) {
    it(`cannot start a new field or the body: ${JSON.stringify(evil)}`, () => {
      const h = makeHeader('X-Test', evil);
      const s = splitMessage(joinMessage([h], b('body\n')));
      assert.equal(s.headers.length, 1);
      assert.equal(getHeader(s.headers, 'Bcc'), undefined);
      assert.equal(s.body.toString(), 'body\n');
    });
  }

  it('keeps a fold the caller meant', () => {
    const h = makeHeader('Received', '(from a@localhost)\n\tby host id X;\n\tdate');
    assert.equal(h.raw.toString(), 'Received: (from a@localhost)\n\tby host id X;\n\tdate\n');
    assert.equal(h.value, '(from a@localhost)\tby host id X;\tdate');
  });

  it('turns other control characters into spaces', () => {
    assert.equal(makeHeader('X', 'a\0b\x1bc\x7fd\te').value, 'a b c d\te');
    assert.equal(cleanValue('a\n\nb'), 'a b');
    assert.equal(cleanValue('a\n   \nb'), 'a b');
  });

  it('folds long values at white space, within 78 characters, unfolding to the same value', () => {
    const words = Array.from({ length: 40 }, (_, i) => `word${i}`).join(' ');
    const h = makeHeader('Subject', words);
    const lines = h.raw.toString().replace(/\n$/, '').split('\n');
    assert.ok(lines.length > 1);
    for (const line of lines) assert.ok(line.length <= 78, line);
    assert.equal(getHeader(splitMessage(h.raw).headers, 'Subject'), words);
  });

  it('does not fold right after the colon, and leaves a long word whole', () => {
    const long = 'x'.repeat(100);
    assert.equal(fold(`Subject: ${long}`), `Subject: ${long}`);
    assert.equal(fold(`Subject: ${long} y`), `Subject: ${long}\n y`);
  });

  it('refuses an invalid field name: that is a bug in the caller', () => {
    assert.throws(() => makeHeader('Bad Name', 'x'));
    assert.throws(() => makeHeader('Bad:Name', 'x'));
    assert.throws(() => makeHeader('', 'x'));
  });
});
