// Tests for address.ts: header address lists as real mailers write them
// (RFC 5322 3.4 and the obsolete forms of 4.4, sendmail's old-style lists),
// envelope path checks (RFC 5321 4.5.3.1.3 lengths, control characters,
// quoting) and <> stripping. A seeded fuzz loop checks parsing never throws.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizePath, parseAddressList, qualify, splitAddress, validateEnvelopeAddress } from './address.ts';

describe('splitAddress / qualify', () => {
  it('splits at the last @ outside quotes and lower-cases the domain', () => {
    assert.deepEqual(splitAddress('Bob@Example.ORG'), { local: 'Bob', domain: 'example.org' });
    assert.deepEqual(splitAddress('"a@b"@x.org'), { local: '"a@b"', domain: 'x.org' });
    assert.deepEqual(splitAddress('root'), { local: 'root', domain: '' });
  });
  it('qualifies bare names and leaves the null sender alone', () => {
    assert.equal(qualify('root', 'host.example'), 'root@host.example');
    assert.equal(qualify('a@B.org', 'host.example'), 'a@b.org');
    assert.equal(qualify('', 'host.example'), '');
  });
});

describe('parseAddressList', () => {
  const cases: Array<[string, string, Array<{ name?: string; address: string }>]> = [
    ['plain', 'a@example.org', [{ address: 'a@example.org' }]],
    ['several', 'a@x.org, b@y.org,c@z.org', [{ address: 'a@x.org' }, { address: 'b@y.org' }, { address: 'c@z.org' }]],
    ['display name', 'Bob Smith <bob@x.org>', [{ name: 'Bob Smith', address: 'bob@x.org' }]],
    ['angle only', '<bob@x.org>', [{ address: 'bob@x.org' }]],
    ['quoted name with comma', '"Smith, Bob" <bob@x.org>, c@y', [{ name: 'Smith, Bob', address: 'bob@x.org' }, { address: 'c@y' }]],
    ['escaped quotes in name', '"Joe \\"JJ\\" Smith" <j@x.org>', [{ name: 'Joe "JJ" Smith', address: 'j@x.org' }]],
    ['quoted name with colon and angle', '"a:b <c@d>" <real@x.org>', [{ name: 'a:b <c@d>', address: 'real@x.org' }]],
    ['comment as name', 'bob@x.org (Bob Smith)', [{ name: 'Bob Smith', address: 'bob@x.org' }]],
    ['nested comment', 'bob@x.org (Bob (the builder) Smith)', [{ name: 'Bob (the builder) Smith', address: 'bob@x.org' }]],
    ['comment with comma', 'a@x (one, two), b@y', [{ name: 'one, two', address: 'a@x' }, { address: 'b@y' }]],
    ['phrase wins over comment', 'Bob (work) <bob@x.org> (ignored)', [{ name: 'Bob', address: 'bob@x.org' }]],
    ['empty group', 'undisclosed-recipients:;', []],
    ['empty group without semicolon', 'undisclosed-recipients:', []],
    ['group with members', 'team: a@x, B <b@y>;, c@z', [{ address: 'a@x' }, { name: 'B', address: 'b@y' }, { address: 'c@z' }]],
    ['obsolete route', '<@relay1,@relay2:user@x.org>', [{ address: 'user@x.org' }]],
    ['named obsolete route', 'Joe <@r.example:joe@x.org>', [{ name: 'Joe', address: 'joe@x.org' }]],
    ['obsolete spaces around dots and @', 'john . doe @ example . com', [{ address: 'john.doe@example.com' }]],
    ['comments inside addr-spec', 'john(c1)@(c2)example.com', [{ name: 'c1', address: 'john@example.com' }]],
    ['RFC 2047 name left as is', '=?UTF-8?B?SsO2aG4=?= <j@x.org>', [{ name: '=?UTF-8?B?SsO2aG4=?=', address: 'j@x.org' }]],
    ['two encoded words', '=?utf-8?q?a?= =?utf-8?q?b?= <j@x>', [{ name: '=?utf-8?q?a?= =?utf-8?q?b?=', address: 'j@x' }]],
    ['trailing and doubled commas', ',a@x,, ,b@y,', [{ address: 'a@x' }, { address: 'b@y' }]],
    ['bare local names', 'root, daemon', [{ address: 'root' }, { address: 'daemon' }]],
    ['old-style space separated names', 'alice bob', [{ address: 'alice' }, { address: 'bob' }]],
    ['old-style space separated addresses', 'a@x.org b@y.org', [{ address: 'a@x.org' }, { address: 'b@y.org' }]],
    ['unbracketed name then address', 'Full Name user@host.org', [{ name: 'Full Name', address: 'user@host.org' }]],
    ['semicolons as separators', 'a@x.org; b@y.org', [{ address: 'a@x.org' }, { address: 'b@y.org' }]],
    ['domain literal', 'user@[192.0.2.1]', [{ address: 'user@[192.0.2.1]' }]],
    ['quoted local part', '"john doe"@example.com', [{ address: '"john doe"@example.com' }]],
    ['folded value', 'a@x.org,\r\n\tB\r\n <b@y.org>', [{ address: 'a@x.org' }, { name: 'B', address: 'b@y.org' }]],
    ['null path is no address', '<>, a@x', [{ address: 'a@x' }]],
    ['unterminated angle', 'Bob <bob@x.org', [{ name: 'Bob', address: 'bob@x.org' }]],
    ['non-ASCII address and name', 'Jörg <jörg@bücher.de>', [{ name: 'Jörg', address: 'jörg@bücher.de' }]],
    ['empty', '', []],
    ['white space only', '  \t ', []],
    ['comment only', '(nobody)', []],
  ];
  for (const [what, input, want] of cases) {
    it(what, () => assert.deepEqual(parseAddressList(input), want));
  }

  it('does not give a name key when there is no name', () => {
    assert.equal('name' in parseAddressList('a@x')[0], false);
  });

  it('never throws, whatever the input', () => {
    const alphabet = 'ab@.,;:<>()"[]\\ \t\r\n=?é';
    let seed = 42;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let n = 0; n < 3000; n++) {
      let s = '';
      const len = Math.floor(rand() * 30);
      for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      const out = parseAddressList(s);
      for (const m of out) assert.ok(m.address.length > 0, JSON.stringify(s));
    }
  });

  it('unterminated quotes and comments end at the end of the value', () => {
    assert.doesNotThrow(() => parseAddressList('"Bob <bob@x>'));
    assert.deepEqual(parseAddressList('a@x (unclosed'), [{ name: 'unclosed', address: 'a@x' }]);
    assert.deepEqual(parseAddressList('"abc\\'), [{ address: '"abc\\\\"' }]);
    assert.deepEqual(parseAddressList('"a\\\\" <x@y>'), [{ name: 'a\\', address: 'x@y' }]);
    assert.deepEqual(parseAddressList('a@[192.0.2.1'), [{ address: 'a@[192.0.2.1]' }]);
  });
});

describe('validateEnvelopeAddress', () => {
  it('accepts ordinary addresses and the null sender', () => {
    for (const a of ['', 'a@x.org', 'root', '"john doe"@x.org', 'u@[192.0.2.1]', 'u@[IPv6:2001:db8::1]', 'jörg@bücher.de', 'a+tag@x.org']) {
      assert.equal(validateEnvelopeAddress(a), undefined, a);
    }
  });
  it('names CR, LF, NUL and other control characters', () => {
    assert.match(validateEnvelopeAddress('a@x\r.org') ?? '', /carriage return/);
    assert.match(validateEnvelopeAddress('a@x.org\nRCPT TO:<b@y>') ?? '', /line feed/);
    assert.match(validateEnvelopeAddress('a\0@x') ?? '', /NUL/);
    assert.match(validateEnvelopeAddress('a\x1b@x') ?? '', /0x1b/);
    assert.match(validateEnvelopeAddress('a\x7f@x') ?? '', /0x7f/);
  });
  it('allows 254 octets, which is 256 with the angle brackets, and no more', () => {
    const at254 = 'a'.repeat(64) + '@' + 'b'.repeat(189);
    assert.equal(Buffer.byteLength(at254), 254);
    assert.equal(validateEnvelopeAddress(at254), undefined);
    assert.match(validateEnvelopeAddress(at254 + 'c') ?? '', /longer than 254 octets/);
  });
  it('counts octets, not characters', () => {
    const s = 'ü'.repeat(127); // 254 octets
    assert.equal(validateEnvelopeAddress(s), undefined);
    assert.match(validateEnvelopeAddress(s + 'x') ?? '', /octets/);
  });
  it('rejects unbalanced quotes and brackets', () => {
    assert.match(validateEnvelopeAddress('"abc@x.org') ?? '', /unbalanced quotes/);
    assert.match(validateEnvelopeAddress('a@[1.2.3.4') ?? '', /square brackets/);
    assert.match(validateEnvelopeAddress('a@1.2.3.4]') ?? '', /square brackets/);
    assert.match(validateEnvelopeAddress('<a@x.org') ?? '', /angle brackets/);
    assert.match(validateEnvelopeAddress('a@x.org>') ?? '', /angle brackets/);
  });
  it('rejects white space outside quotes but not inside', () => {
    assert.match(validateEnvelopeAddress('a b@x.org') ?? '', /white space/);
    assert.equal(validateEnvelopeAddress('"a b"@x.org'), undefined);
    assert.equal(validateEnvelopeAddress('"a\\"b"@x.org'), undefined);
  });
  it('rejects an empty domain or local part', () => {
    assert.match(validateEnvelopeAddress('a@') ?? '', /no domain/);
    assert.match(validateEnvelopeAddress('@x.org') ?? '', /no local part/);
  });
});

describe('normalizePath', () => {
  it('strips one level of <> and surrounding space', () => {
    assert.equal(normalizePath('<a@x.org>'), 'a@x.org');
    assert.equal(normalizePath(' <a@x.org> '), 'a@x.org');
    assert.equal(normalizePath('a@x.org'), 'a@x.org');
    assert.equal(normalizePath('<<a@x.org>>'), '<a@x.org>');
  });
  it('gives the null sender for <>', () => {
    assert.equal(normalizePath('<>'), '');
    assert.equal(normalizePath(''), '');
  });
  it('drops a source route', () => {
    assert.equal(normalizePath('<@a.example,@b.example:u@c.example>'), 'u@c.example');
  });
  it('leaves an unbalanced bracket for validation to report', () => {
    assert.equal(normalizePath('<a@x.org'), '<a@x.org');
    assert.ok(validateEnvelopeAddress(normalizePath('<a@x.org')));
  });
});
