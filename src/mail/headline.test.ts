// Tests for how mail reads header fields for its summary (headline.ts) and
// its display (display.ts), both through src/message's header tokenizer:
// folds shown as one space, 8-bit values read as UTF-8 whole, Status: and
// X-Status: passed on as they stand.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerLines } from './display.ts';
import { pickFields, summaryOf } from './headline.ts';
import type { Paint } from './term.ts';

const plain = { header: (s: string) => s, note: (s: string) => s } as unknown as Paint;

describe('mail header fields', () => {
  const block = Buffer.from('Received: x\nSUBJECT: one\n\t two\r\nfrom : A <a@x>\nStatus: RO\nX-Status: F\nSubject: second\nDate: d\n\n', 'utf8');

  it('summaryOf takes the first of each field, folds as one space, Status values raw', () => {
    const s = summaryOf(block);
    assert.deepEqual(s.fields, { from: 'A <a@x>', subject: 'one two', date: 'd' });
    assert.match(s.status, /^ RO\r?\n$/);
    assert.match(s.xstatus, /^ F\n$/);
  });

  it('pickFields finds the fields asked for, case aside', () => {
    assert.deepEqual(Object.fromEntries(pickFields(block, ['subject', 'cc', 'from'])), { subject: 'one two', from: 'A <a@x>' });
  });

  it('reads a value ending in a character whose UTF-8 ends in byte 0xa0 whole', () => {
    // "à" is C3 A0; String.trim() on the Latin-1 text took the A0 for a no-break space and showed "voil\ufffd".
    const fr = Buffer.from('Subject: voilà\nFrom: déjà <d@x>\n\n', 'utf8');
    assert.equal(summaryOf(fr).fields.subject, 'voilà');
    assert.equal(pickFields(fr, ['from']).get('from'), 'déjà <d@x>');
    assert.deepEqual(headerLines(fr, undefined, plain), ['Subject: voilà', 'From: déjà <d@x>']);
  });

  it('headerLines shows fields with their names as written, filtered, skipping lines that are no field', () => {
    const lines = headerLines(Buffer.from(' folded first: x\nSubject: a\n  b\nno colon\nX-Mailer: m\n\n'), { ignore: new Set(['x-mailer']), retain: new Set() }, plain);
    assert.deepEqual(lines, ['Subject: a b']);
  });
});
