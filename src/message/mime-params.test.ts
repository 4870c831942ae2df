// Tests for mime-params.ts: plain parameters, RFC 2231 continuations and
// charset sections joined (in Dovecot's order), broken families passed
// through, decoded values (boundary*), and Content-Language tag lists.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeExtended, languageTags, paramValue, parseParams } from './mime-params.ts';

describe('parseParams', () => {
  it('reads plain and quoted values, names upper-cased', () => {
    assert.deepEqual(parseParams('text/plain; charset=utf-8; name="a \\"b\\"; c"'), [['CHARSET', 'utf-8'], ['NAME', 'a "b"; c']]);
  });
  it('joins encoded continuations into one name* parameter', () => {
    assert.deepEqual(parseParams("application/x; name*0*=utf-8''%E2%82%AC%20a; name*1*=b.txt"), [['NAME*', "utf-8''%E2%82%AC%20ab.txt"]]);
  });
  it('joins plain continuations into a plain parameter, after the plain ones, sorted by name', () => {
    assert.deepEqual(parseParams("text/plain; title*=us-ascii'en'x; URL*1=\"b\"; URL*0=\"a:\"; charset=x"), [['CHARSET', 'x'], ['URL', 'a:b'], ['TITLE*', "us-ascii'en'x"]]);
  });
  it('escapes % in an unencoded section of an encoded value', () => {
    assert.deepEqual(parseParams("x/y; t*0*=us-ascii'en'50%25; t*1=\" 5%\""), [['T*', "us-ascii'en'50%25 5%25"]]);
  });
  it('passes a family with a missing section through as written', () => {
    assert.deepEqual(parseParams('x/y; a*0=one; a*2=three'), [['A*0', 'one'], ['A*2', 'three']]);
  });
});

describe('paramValue', () => {
  it('decodes an RFC 2231 boundary', () => {
    const params = parseParams("multipart/signed; micalg*=ansi-x3.4-1968''pgp-md5;\n\tboundary*=\"ansi-x3.4-1968''EeQfGwPcQSOJBaQU\"");
    assert.equal(paramValue(params, 'boundary'), 'EeQfGwPcQSOJBaQU');
    assert.equal(paramValue(params, 'micalg'), 'pgp-md5');
  });
  it('decodes UTF-8 and prefers a plain parameter', () => {
    assert.equal(paramValue(parseParams("x/y; filename*=UTF-8''%E2%82%AC.txt"), 'filename'), '€.txt');
    assert.equal(paramValue(parseParams('x/y; boundary=plain; boundary*=x\'\'enc'), 'boundary'), 'plain');
    assert.equal(paramValue(parseParams('x/y'), 'boundary'), undefined);
  });
});

describe('decodeExtended', () => {
  it('decodes a joined value in its charset, as text', () => {
    const [[, euro]] = parseParams("x/y; name*0*=utf-8''%E2%82%AC%20rates%20; name*1*=for%202026.txt");
    assert.equal(decodeExtended(euro), '€ rates for 2026.txt');
    assert.equal(decodeExtended("iso-8859-2'cs'%BElu%BBou%E8k%FD"), 'žluťoučký');
    assert.equal(decodeExtended("us-ascii'en-us'This%20is%20%2A%2A%2Afun%2A%2A%2A"), 'This is ***fun***');
    assert.equal(decodeExtended("ansi-x3.4-1968''pgp-md5"), 'pgp-md5');
    assert.equal(decodeExtended("''50%25 5%25"), '50% 5%');
  });
  it('gives up on what it cannot read: no charset section, an unknown charset, bytes that are not that charset', () => {
    assert.equal(decodeExtended('plain'), undefined);
    assert.equal(decodeExtended("x-no-such-charset''abc"), undefined);
    assert.equal(decodeExtended("utf-8''%FF%FE"), undefined);
    assert.equal(decodeExtended("us-ascii''%E9"), undefined);
  });
});

describe('languageTags', () => {
  it('splits a list and drops comments', () => {
    assert.deepEqual(languageTags('en, de-CH (Swiss German)'), ['en', 'de-CH']);
    assert.deepEqual(languageTags('fr'), ['fr']);
  });
});
