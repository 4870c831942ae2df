// Tests for header-tokens.ts, the one header tokenizer: the edge cases its
// top comment states (folded first line, blanks before the colon, 8-bit
// bytes, no final newline, header-only messages, CR alone, CRLF and LF), in
// both modes, and the offsets and names the cursor hands out.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fieldColon, fieldMap, HeaderTokens, unfold, unfoldForDisplay } from './header-tokens.ts';

const b = (s: string) => Buffer.from(s, 'latin1');

interface Entry { name: string; value: string; raw: string; field: boolean }

/** Every entry of a block, and how the header ended. */
function tokens(block: Buffer, strict = false, from = 0): { entries: Entry[]; headerEnd: number; separator: number } {
  const t = new HeaderTokens(block, strict, from);
  const entries: Entry[] = [];
  while (t.next()) {
    entries.push({ name: t.name(), value: t.colon < 0 ? '' : t.value(), raw: t.raw().toString('latin1'), field: t.colon >= 0 });
    assert.deepEqual(t.raw(), block.subarray(t.start, t.end));
  }
  return { entries, headerEnd: t.headerEnd, separator: t.separator };
}

for (const strict of [true, false]) {
  describe(`HeaderTokens (${strict ? 'strict' : 'stored'} mode): what both modes agree on`, () => {
    it('reads LF fields, their folds and the blank line', () => {
      const block = b('From: a@x\nSubject: one\n\ttwo\n  three\nTo: b@y\n\nbody\n');
      const r = tokens(block, strict);
      assert.deepEqual(r.entries.map((e) => [e.name, e.value]), [['From', 'a@x'], ['Subject', 'one\ttwo  three'], ['To', 'b@y']]);
      assert.equal(r.entries[1].raw, 'Subject: one\n\ttwo\n  three\n');
      assert.equal(r.headerEnd, block.indexOf('body'));
      assert.equal(r.separator, 1);
    });

    it('reads CRLF the same way: the CR before LF is the line end, not the value', () => {
      const block = b('Subject: one\r\n two\r\nTo: b@y\r\n\r\nbody');
      const r = tokens(block, strict);
      assert.deepEqual(r.entries.map((e) => [e.name, e.value]), [['Subject', 'one two'], ['To', 'b@y']]);
      assert.equal(r.entries[0].raw, 'Subject: one\r\n two\r\n');
      assert.equal(r.separator, 2);
      assert.equal(block.toString('latin1', r.headerEnd), 'body');
    });

    it('keeps a CR alone as data, in a value and as a line of its own', () => {
      const r = tokens(b('Subject: a\rb\nX: y\r\r\n\r\nbody'), strict);
      assert.deepEqual(r.entries.map((e) => e.value), ['a\rb', 'y\r']);
      assert.equal(r.separator, 2);
    });

    it('allows blanks between name and colon, and takes them out of the name', () => {
      const t = new HeaderTokens(b('Subject \t: spaced\nX-Empty:\nX-Blank:  \t\n\n'), strict);
      assert.ok(t.next());
      assert.equal(t.name(), 'Subject');
      assert.ok(t.nameIs('subject'));
      assert.equal(t.value(), 'spaced');
      assert.ok(t.next() && t.value() === '' && t.next() && t.value() === '');
      assert.equal(t.next(), false);
    });

    it('decodes 8-bit values as UTF-8 and hands out their bytes untouched', () => {
      const block = Buffer.concat([b('Subject: '), Buffer.from('Grüße à', 'utf8'), b('\nX-Bin: \xff\xfe\n\n')]);
      const t = new HeaderTokens(block, strict);
      assert.ok(t.next());
      assert.equal(t.value(), 'Grüße à'); // the last byte of "à" is 0xa0, which is not white space here
      assert.ok(t.next());
      assert.equal(t.rawValue(), ' \xff\xfe\n');
    });

    it('ends the last field at the end of the data when it has no line end', () => {
      const block = b('Subject: x\nTo: y\n  z');
      const r = tokens(block, strict);
      assert.deepEqual(r.entries.map((e) => [e.name, e.value, e.raw]), [['Subject', 'x', 'Subject: x\n'], ['To', 'y  z', 'To: y\n  z']]);
      assert.equal(r.headerEnd, block.length);
      assert.equal(r.separator, 0);
    });

    it('reads a header-only message (no blank line) to its end', () => {
      const block = b('Subject: x\nTo: y\n');
      const r = tokens(block, strict);
      assert.equal(r.entries.length, 2);
      assert.equal(r.headerEnd, block.length);
      assert.equal(r.separator, 0);
    });

    it('reads nothing in an empty block, or one that starts with the blank line', () => {
      assert.deepEqual(tokens(Buffer.alloc(0), strict), { entries: [], headerEnd: 0, separator: 0 });
      assert.deepEqual(tokens(b('\r\nbody'), strict), { entries: [], headerEnd: 2, separator: 2 });
    });

    it('takes a line of blanks after a field for a fold (obs-FWS), not for the blank line', () => {
      const r = tokens(b('Subject: a\n  \n b\n\nbody'), strict);
      assert.deepEqual(r.entries.map((e) => e.value), ['a   b']);
      assert.equal(r.separator, 1);
    });

    it('starts at a given offset and reads no further than the header', () => {
      const block = b('ignored\nA: 1\n\nB: 2\n');
      const r = tokens(block, strict, 8);
      assert.deepEqual(r.entries.map((e) => e.name), ['A']);
      assert.equal(r.headerEnd, 14);
    });
  });
}

describe('HeaderTokens: where strict and stored modes differ', () => {
  it('strict: a folded first line is no field, so the header is empty and all is body', () => {
    const r = tokens(b(' Subject: x\nTo: y\n\nbody'), true);
    assert.deepEqual(r, { entries: [], headerEnd: 0, separator: 0 });
  });

  it('stored: a folded first line is a stray entry, no field; the fields after it are read', () => {
    const r = tokens(b(' Subject: x\n more\nTo: y\n\nbody'), false);
    assert.deepEqual(r.entries, [
      { name: '', value: '', raw: ' Subject: x\n more\n', field: false },
      { name: 'To', value: 'y', raw: 'To: y\n', field: true },
    ]);
    assert.equal(r.separator, 1);
  });

  it('strict: the first line that is no field starts the body, blank line or not (sendmail)', () => {
    const block = b('Subject: x\nthis is body\nTo: y\n');
    const r = tokens(block, true);
    assert.deepEqual(r.entries.map((e) => e.name), ['Subject']);
    assert.equal(r.headerEnd, 11);
    assert.equal(r.separator, 0);
  });

  it('stored: a line without a colon is a stray entry (with its folds) and the header goes on to the blank line', () => {
    const r = tokens(b('Subject: x\nthis is junk\n cont\nTo: y\n\n'), false);
    assert.deepEqual(r.entries.map((e) => [e.name, e.field, e.raw]), [['Subject', true, 'Subject: x\n'], ['', false, 'this is junk\n cont\n'], ['To', true, 'To: y\n']]);
  });

  it('strict: names are printable ASCII; stored: anything before the colon', () => {
    for (const line of ['Bad Name: x\n', 'N\xe4me: x\n', 'A\x01: x\n', '--boundary:x\n', ':novalue\n', 'From root Sun Nov 22 00:03:44 2026\n']) {
      assert.equal(fieldColon(b(line), 0, line.length, true), -1, line);
    }
    assert.equal(tokens(b('Bad Name : x\n'), false).entries[0].name, 'Bad Name');
    assert.equal(tokens(b('N\xe4me: x\n'), false).entries[0].name, 'N\xe4me');
    assert.equal(tokens(b('--x: y\n'), false).entries[0].name, '--x');
    assert.equal(tokens(b(':novalue\n'), false).entries[0].field, false);
  });
});

describe('HeaderTokens: names', () => {
  it('nameIs and firstLower compare case aside, without matching a longer or shorter name', () => {
    const t = new HeaderTokens(b('X-STATUS : A\n'));
    assert.ok(t.next());
    assert.ok(t.nameIs('x-status'));
    assert.ok(!t.nameIs('x-statu'));
    assert.ok(!t.nameIs('x-status2'));
    assert.equal(t.firstLower(), 0x78);
    const stray = new HeaderTokens(b('no colon\n'));
    assert.ok(stray.next());
    assert.ok(!stray.nameIs(''));
    assert.equal(stray.firstLower(), 0x6e); // only nameIs says whether it is a field
  });
});

describe('HeaderTokens: values', () => {
  it('trims folds and blanks at either end, keeps a CR that is data', () => {
    const t = new HeaderTokens(b('A:\r\n  x\r\n  \r\n\t\r\nB: y\r\r\nC:\n\t\nD:\rz \n'));
    const values: string[] = [];
    while (t.next()) values.push(t.value());
    assert.deepEqual(values, ['x', 'y\r', '', '\rz']);
  });

  it('gives what unfold and unfoldForDisplay give for the same text, on random fields', () => {
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const pieces = ['a', 'b c', ' ', '\t', '\r', '\xc3\xa0', '\n ', '\r\n\t', '\n\t \n ', ':'];
    for (let k = 0; k < 3000; k++) {
      let text = `X-${k}:`;
      for (let n = rnd(8); n > 0; n--) text += pieces[rnd(pieces.length)];
      text += ['\n', '\r\n', ''][rnd(3)];
      const t = new HeaderTokens(b(text));
      assert.ok(t.next());
      assert.equal(t.end, text.length, JSON.stringify(text));
      const after = t.block.toString('utf8', t.colon + 1, t.end);
      assert.equal(t.value(), unfold(after), JSON.stringify(text));
      assert.equal(t.displayValue(), unfoldForDisplay(after), JSON.stringify(text));
    }
  });
});

describe('unfold, unfoldForDisplay, fieldMap', () => {
  it('unfold removes only the line break before white space (RFC 5322 2.2.3) and trims SP and HTAB', () => {
    assert.equal(unfold(' a\r\n\tb\n  c\r\n'), 'a\tb  c');
    assert.equal(unfold('\u3000x\u00a0'), '\u3000x\u00a0');
  });
  it('unfoldForDisplay makes each fold one space', () => {
    assert.equal(unfoldForDisplay(' a\r\n\t  b\n c\n'), 'a b c');
  });
  it('fieldMap keeps the first value of each name, lower-cased, only those asked for when asked', () => {
    const block = b('Received: one\nSubject: s\nreceived: two\nno colon\n\nX: after\n');
    assert.deepEqual([...fieldMap(block)], [['received', 'one'], ['subject', 's']]);
    assert.deepEqual([...fieldMap(block, new Set(['subject']))], [['subject', 's']]);
  });
});
