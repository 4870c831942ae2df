// Tests for imap-envelope.ts: the address lists of ENVELOPE (RFC 3501
// 7.4.2), groups above all: a group is a start marker (NIL NIL "name" NIL),
// its members, and an end marker (NIL NIL NIL NIL), as Dovecot writes them.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addressList, formatEnvelope } from './imap-envelope.ts';

describe('ENVELOPE address lists', () => {
  it('keeps an empty group as its two markers', () => {
    assert.equal(addressList('undisclosed-recipients:;'), '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))');
  });

  it('brackets the members of a group, and goes on after it', () => {
    assert.equal(
      addressList('friends: a@x.test, Bob <b@y.test>;, c@z.test'),
      '((NIL NIL "friends" NIL)(NIL NIL "a" "x.test")("Bob" NIL "b" "y.test")(NIL NIL NIL NIL)(NIL NIL "c" "z.test"))',
    );
  });

  it('reads quoted group names, several groups and a group left open', () => {
    assert.equal(addressList('"My, Friends": a@x.test;'), '((NIL NIL "My, Friends" NIL)(NIL NIL "a" "x.test")(NIL NIL NIL NIL))');
    assert.equal(addressList('one: a@x.test; two: ;'), '((NIL NIL "one" NIL)(NIL NIL "a" "x.test")(NIL NIL NIL NIL)(NIL NIL "two" NIL)(NIL NIL NIL NIL))');
    assert.equal(addressList('open: b@y.test'), '((NIL NIL "open" NIL)(NIL NIL "b" "y.test")(NIL NIL NIL NIL))');
  });

  it('leaves lists without groups as they were', () => {
    assert.equal(addressList('a@x.test; b@y.test'), '((NIL NIL "a" "x.test")(NIL NIL "b" "y.test"))');
    assert.equal(addressList('"a:b <c@d>" <real@x.test>'), '(("a:b <c@d>" NIL "real" "x.test"))');
    assert.equal(addressList('<@relay:u@x.test>'), '((NIL NIL "u" "x.test"))');
    assert.equal(addressList(' '), 'NIL');
    assert.equal(addressList(undefined), 'NIL');
  });

  it('puts the groups of To and Cc in the envelope', () => {
    const env = formatEnvelope(Buffer.from('From: a@x.test\nTo: undisclosed-recipients:;\nCc: friends: b@y.test;\n\n')).toString();
    assert.equal(
      env,
      '(NIL NIL ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ' +
        '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ((NIL NIL "friends" NIL)(NIL NIL "b" "y.test")(NIL NIL NIL NIL)) NIL NIL NIL)',
    );
  });

  it('never throws, and every group it starts it ends', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const alphabet = ['a', 'b', '@', 'x.test', ':', ';', ',', '<', '>', '"', '(', ')', '\\', ' ', 'g r'];
    for (let k = 0; k < 2000; k++) {
      let v = '';
      for (let n = rnd(12); n > 0; n--) v += alphabet[rnd(alphabet.length)];
      const out = addressList(v);
      const starts = (out.match(/\(NIL NIL (?:"(?:[^"\\]|\\.)*"|\{\d+\}\r\n[^]*?) NIL\)/g) ?? []).length;
      const ends = (out.match(/\(NIL NIL NIL NIL\)/g) ?? []).length;
      assert.equal(starts, ends, `${JSON.stringify(v)} -> ${out}`);
    }
  });

  it('gives the addresses of every To, Cc and Bcc field in order, and the first Subject, as Dovecot 2.3 does for address fields', () => {
    const env = formatEnvelope(
      Buffer.from('From: a@x.test\nTo: One <t1@x.test>\nSubject: first\nTO: t2@y.test, t3@y.test\nCc: c1@x.test\ncc: g: m@x.test;\nSubject: second\nBcc: b1@x.test\nBcc: b2@x.test\n\n'),
    ).toString();
    assert.equal(
      env,
      '(NIL "first" ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ((NIL NIL "a" "x.test")) ' +
        '(("One" NIL "t1" "x.test")(NIL NIL "t2" "y.test")(NIL NIL "t3" "y.test")) ' +
        '((NIL NIL "c1" "x.test")(NIL NIL "g" NIL)(NIL NIL "m" "x.test")(NIL NIL NIL NIL)) ' +
        '((NIL NIL "b1" "x.test")(NIL NIL "b2" "x.test")) NIL NIL)',
    );
    // Two From fields: Sender and Reply-To default to both.
    assert.match(formatEnvelope(Buffer.from('From: a@x.test\nFrom: b@y.test\n\n')).toString(), /^\(NIL NIL (\(\(NIL NIL "a" "x.test"\)\(NIL NIL "b" "y.test"\)\) ){3}NIL NIL NIL NIL NIL\)$/);
  });

  it('keeps white space that is part of the value: only SP and HTAB are trimmed (header-tokens.ts)', () => {
    // It used String.trim(), which also took an ideographic space or a no-break space off the end of a subject.
    const env = formatEnvelope(Buffer.from('Subject: \u6ce8\u610f\u3000\nFrom: a@x.test\n\n')).toString();
    assert.ok(env.startsWith('(NIL {9}\r\n\u6ce8\u610f\u3000 '), env);
  });
});
