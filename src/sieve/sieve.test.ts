// Unit tests for the Sieve language: the grammar (strings, text:, numbers
// with K/M/G, comments), require and the checks with line numbers, each test
// and match type, the actions and the implicit keep, imap4flags, relational,
// body, and the delivery side's folder names and flag fields. Cases follow
// RFC 5228's and its extensions' examples and the behaviour Pigeonhole's
// testsuite pins (tests/*.svtest), written anew here.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { splitMessage } from '../message/headers.ts';
import { compileScript } from './check.ts';
import { folderMessage } from '../mailbox/index.ts';
import { folderFile, storedFlags } from './deliver.ts';
import { globToRegExp, runScript, type Outcome } from './interpret.ts';
import { SieveError, tokenize } from './parse.ts';
import { ScriptStore, StoreError } from './store.ts';

const MESSAGE = [
  'From: "Stephan Bosch" <stephan@example.org>',
  'To: nico@frop.example.com, "Tim" <tss@example.net>',
  'Cc: Timo <tss@iki.fi>',
  'Subject: Make your money very fast!!!',
  'X-Spam-Score: 5',
  'X-Spam-Score: 12',
  'Subject2: =?utf-8?q?caf=C3=A9?=',
  'MIME-Version: 1.0',
  'Content-Type: multipart/mixed; boundary="AA"',
  '',
  'preamble',
  '--AA',
  'Content-Type: text/plain; charset=utf-8',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  'Hello there, money=20talk',
  '--AA',
  'Content-Type: application/octet-stream',
  'Content-Transfer-Encoding: base64',
  '',
  'c2VjcmV0IGJsb2I=',
  '--AA--',
  '',
].join('\n');

function run(script: string, envelope = { from: 'sender@example.org', to: 'nico@frop.example.com' }, text = MESSAGE): Outcome {
  const data = Buffer.from(text);
  const { headers, body } = splitMessage(data);
  return runScript(compileScript(script), { headers, body, size: data.length, envelope });
}

/** True when the script's test leaves the message in a folder named "yes". */
function holds(testExpr: string, requires = ''): boolean {
  const out = run(`require ["fileinto"${requires}];\nif ${testExpr} { fileinto "yes"; }`);
  return out.fileinto.some((f) => f.folder === 'yes');
}

function errorLine(script: string): number {
  try {
    compileScript(script);
  } catch (e) {
    assert.ok(e instanceof SieveError, String(e));
    return e.line;
  }
  assert.fail('no error');
}

describe('grammar', () => {
  test('numbers take K, M and G', () => {
    const nums = tokenize('1 2K 3M 4g').filter((t) => t.t === 'num').map((t) => (t as { v: number }).v);
    assert.deepEqual(nums, [1, 2048, 3 * 1024 ** 2, 4 * 1024 ** 3]);
  });

  test('quoted strings keep only the character after a backslash', () => {
    const s = tokenize('"a\\"b\\\\c\\d"')[0] as { v: string };
    assert.equal(s.v, 'a"b\\cd');
  });

  test('text: ends at a lone dot, and a leading dot is unstuffed', () => {
    const s = tokenize('text: # comment\nline one\n..dotted\n.\n')[0] as { v: string };
    assert.equal(s.v, 'line one\r\n.dotted\r\n');
  });

  test('comments of both kinds are skipped', () => {
    assert.doesNotThrow(() => compileScript('# hash\n/* block\n comment */ keep; # end'));
  });

  test('errors name their line', () => {
    assert.equal(errorLine('keep;\n\nfileinto "x";'), 3); // fileinto without require
    assert.equal(errorLine('if true {\n  keep;\n'), 3); // missing }
    assert.equal(errorLine('require "fileinto";\nkeep\nstop;'), 2); // keep given a test
    assert.equal(errorLine('keep;\n\n  }'), 3);
    assert.equal(errorLine('if header :frob "a" "b" { keep; }'), 1);
    assert.equal(errorLine('keep;\nrequire "fileinto";'), 2);
    assert.equal(errorLine('require "nosuch";'), 1);
    assert.equal(errorLine('"unterminated'), 1);
  });

  test('checks: arguments, tags, conflicts, elsif without if', () => {
    assert.throws(() => compileScript('redirect;'), /takes 1 argument/);
    assert.throws(() => compileScript('if header :is :contains "a" "b" { keep; }'), /conflicts/);
    assert.throws(() => compileScript('elsif true { keep; }'), /without if/);
    assert.throws(() => compileScript('if size 100 { keep; }'), /size needs/);
    assert.throws(() => compileScript('if header :count "gt" "a" "1" { keep; }'), /relational/);
    assert.throws(() => compileScript('require "relational";\nif header :value "xx" "a" "1" { keep; }'), /unknown relation/);
    assert.throws(() => compileScript('if header :comparator "i;ascii-numeric" "a" "1" { keep; }'), /comparator-i;ascii-numeric/);
    assert.throws(() => compileScript('keep :copy;'), /no tag/);
    assert.throws(() => compileScript('require "fileinto";\nfileinto :copy "x";'), /require "copy"/);
  });
});

describe('tests and match types', () => {
  test('header :is, :contains, :matches with the default comparator', () => {
    assert.ok(holds('header :contains "subject" "MONEY"'));
    assert.ok(holds('header :is "Subject" "make your money very fast!!!"'));
    assert.ok(!holds('header :is "Subject" "make your money"'));
    assert.ok(holds('header :matches "subject" "make*fast!?!"'));
    assert.ok(holds('header :matches "subject" "*"'));
    assert.ok(!holds('header :matches "subject" "make?"'));
    assert.ok(holds('header :matches "subject" "*\\!"'));
    assert.ok(!holds('header :contains :comparator "i;octet" "subject" "MONEY"'));
    assert.ok(holds('header :contains ["x-nothing", "subject"] ["nope", "very"]'));
  });

  test('encoded words are decoded before matching', () => {
    assert.ok(holds('header :is "subject2" "café"'));
  });

  test('address parts', () => {
    assert.ok(holds('address :is :domain "from" "EXAMPLE.org"'));
    assert.ok(holds('address :is :localpart "to" "tss"'));
    assert.ok(holds('address :is :all "cc" "tss@iki.fi"'));
    assert.ok(holds('address "to" "nico@frop.example.com"'));
    assert.ok(!holds('address :is "from" "Stephan Bosch"'));
    assert.ok(holds('address :matches :domain "to" "*.example.*"'));
  });

  test('envelope', () => {
    assert.ok(holds('envelope :is "from" "sender@example.org"', ', "envelope"'));
    assert.ok(holds('envelope :domain "to" "frop.example.com"', ', "envelope"'));
    assert.ok(!holds('envelope :is "from" "stephan@example.org"', ', "envelope"'));
  });

  test('exists, size, true, false, not, allof, anyof', () => {
    assert.ok(holds('exists ["from", "to"]'));
    assert.ok(!holds('exists ["from", "x-nothing"]'));
    assert.ok(holds('size :over 100'));
    assert.ok(!holds('size :over 1K'));
    assert.ok(holds('size :under 1K'));
    assert.ok(holds('allof (true, not false)'));
    assert.ok(!holds('allof (true, false)'));
    assert.ok(holds('anyof (false, true)'));
    assert.ok(!holds('anyof (false, not true)'));
  });

  test('relational :count and :value, and i;ascii-numeric', () => {
    const rel = ', "relational", "comparator-i;ascii-numeric"';
    assert.ok(holds('header :count "eq" :comparator "i;ascii-numeric" "x-spam-score" "2"', rel));
    assert.ok(holds('address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] "3"', rel));
    assert.ok(!holds('address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "3"', rel));
    assert.ok(holds('header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "10"', rel));
    assert.ok(!holds('header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "12"', rel));
    assert.ok(holds('header :value "lt" "subject" "n"', rel)); // "make..." < "n" with i;ascii-casemap
  });

  test('regex', () => {
    assert.ok(holds('header :regex "subject" "^make .* fast"', ', "regex"'));
    assert.ok(!holds('header :regex "subject" "^fast"', ', "regex"'));
    assert.throws(() => run('require "regex";\nif header :regex "subject" "(" { keep; }'), /line 2: bad regular expression/);
  });

  test('body: :text looks in text parts decoded, :raw at the undecoded body, :content by type', () => {
    assert.ok(holds('body :contains "money talk"', ', "body"'));
    assert.ok(!holds('body :contains "secret blob"', ', "body"'));
    assert.ok(holds('body :raw :contains "money=20talk"', ', "body"'));
    assert.ok(holds('body :content "application" :contains "secret blob"', ', "body"'));
    assert.ok(!holds('body :content "image" :contains "secret"', ', "body"'));
  });

  test('body: the boundary and charset are read as MIME parameters (mime-params.ts), a comment after them aside', () => {
    const text = MESSAGE.replace('boundary="AA"', 'boundary=AA (parts)').replace('charset=utf-8', 'charset=utf-8 (text)');
    const out = run('require ["body", "fileinto"];\nif body :contains "money talk" { fileinto "yes"; }', undefined, text);
    assert.deepEqual(out.fileinto.map((f) => f.folder), ['yes']);
  });

  test(':matches wildcards', () => {
    assert.ok(globToRegExp('a*b?c').test('aXXbYc'));
    assert.ok(!globToRegExp('a*b?c').test('abc'));
    assert.ok(globToRegExp('a\\*').test('a*'));
    assert.ok(!globToRegExp('a\\*').test('ab'));
  });
});

describe('actions', () => {
  test('an empty script keeps', () => {
    assert.deepEqual(run('').keep, { flags: [] });
  });

  test('fileinto cancels the implicit keep, :copy does not', () => {
    assert.equal(run('require "fileinto"; fileinto "a";').keep, undefined);
    assert.ok(run('require ["fileinto", "copy"]; fileinto :copy "a";').keep);
  });

  test('redirect, discard, stop', () => {
    const r = run('redirect "a@example.net"; redirect "a@example.net";');
    assert.deepEqual(r.redirect, ['a@example.net']);
    assert.equal(r.keep, undefined);
    assert.ok(run('require "copy"; redirect :copy "a@example.net";').keep);
    const d = run('discard;');
    assert.ok(d.discarded && !d.keep);
    assert.ok(run('discard; keep;').keep, 'an explicit keep after discard keeps');
    assert.equal(run('stop; discard;').discarded, false);
    assert.throws(() => run('redirect "not an address at all <";'), /redirect/);
  });

  test('if, elsif, else take one branch', () => {
    const s = 'require "fileinto";\nif false { fileinto "a"; } elsif true { fileinto "b"; } else { fileinto "c"; }\nif true { fileinto "d"; } else { fileinto "e"; }';
    assert.deepEqual(run(s).fileinto.map((f) => f.folder), ['b', 'd']);
  });

  test('reject by subject; reject with fileinto or keep is a runtime error', () => {
    const r = run('require "reject";\nif header :contains "subject" "money" { reject text:\nNo spam.\n.\n; }');
    assert.deepEqual(r.reject, { reason: 'No spam.\r\n', ereject: false });
    assert.equal(r.keep, undefined);
    assert.throws(() => run('require ["reject"];\nkeep;\nreject "no";'), /line 3/);
    assert.equal(run('require "ereject"; ereject "no";').reject?.ereject, true);
  });

  test('imap4flags: setflag, addflag, removeflag, hasflag, :flags', () => {
    const s = [
      'require ["imap4flags", "fileinto"];',
      'setflag "\\\\Seen";',
      'addflag ["$Work \\\\Flagged", "\\\\seen"];',
      'removeflag "\\\\Flagged";',
      'if hasflag :is "$work" { fileinto :flags "\\\\Answered" "work"; }',
      'fileinto "other";',
      'keep;',
    ].join('\n');
    const r = run(s);
    assert.deepEqual(r.fileinto, [{ folder: 'work', flags: ['\\Answered'] }, { folder: 'other', flags: ['\\Seen', '$Work'] }]);
    assert.deepEqual(r.keep, { flags: ['\\Seen', '$Work'] });
  });

  test('vacation gathers its arguments', () => {
    const r = run('require "vacation";\nvacation :days 3 :subject "Away" :addresses ["me@example.com"] :handle "h" "I am away.";');
    assert.deepEqual(r.vacation, { reason: 'I am away.', days: 3, subject: 'Away', from: undefined, addresses: ['me@example.com'], mime: false, handle: 'h' });
    assert.ok(r.keep, 'vacation keeps the message');
  });
});

describe('delivery helpers', () => {
  const config = { imapFolderDir: '$HOME/mail' } as Parameters<typeof folderFile>[0];
  const user = { name: 'bob', uid: 1000, gid: 1000, gecos: '', home: '/home/bob', shell: '/bin/sh' };

  test('folder names map under imap_folder_dir and may not climb out', () => {
    assert.equal(folderFile(config, user, 'lists/dev'), '/home/bob/mail/lists/dev');
    for (const bad of ['../x', 'a/../../x', '.hidden', 'a//b', 'x.lock', '/abs']) assert.throws(() => folderFile(config, user, bad), SieveError, bad);
  });

  test("flags become Status:, X-Status: and X-Keywords: as Dovecot writes them, replacing the message's own", () => {
    // Through the one writer, as a delivery writes them; without its From_ line.
    const withFlags = (data: string, flags: string[]) => folderMessage('a@b', Buffer.from(data), new Date(0), storedFlags(flags)).toString().replace(/^From .*\n/, '');
    assert.equal(withFlags('Subject: x\n\nbody\n', ['\\Seen', '\\Flagged', '\\Answered', '$Work', '$label1']), 'Subject: x\nStatus: RO\nX-Status: AF\nX-Keywords: $Work $label1\n\nbody\n\n');
    assert.equal(withFlags('a', []), 'a\n\n');
    // Fields a sender put in are not kept beside the script's; \Recent and non-atoms are left out; unseen stays new (no O).
    const forged = 'X-Status: D\nSubject: y\nX-Keywords: $Junk\n  NonJunk\nStatus: O\n\nX-Keywords: in the body\n';
    assert.equal(withFlags(forged, ['\\Flagged', '\\Recent', 'a(b', 'ok']), 'Subject: y\nX-Status: F\nX-Keywords: ok\n\nX-Keywords: in the body\n\n');
    assert.equal(withFlags('Subject: z', ['\\Draft']), 'Subject: z\nX-Status: T\n\n\n');
    assert.equal(withFlags('\nbody\n\nmore', ['k']), 'X-Keywords: k\n\nbody\n\nmore\n\n');
  });
});

describe('the script store (ManageSieve)', () => {
  test('Pigeonhole layout: ~/sieve/NAME.sieve, ~/.sieve the link to the active one', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'sieve-store-'));
    try {
      const user = { name: 'bob', uid: 1000, gid: 1000, gecos: '', home, shell: '/bin/sh' };
      fs.writeFileSync(path.join(home, '.sieve'), 'keep;\n'); // written by hand before ManageSieve
      const store = new ScriptStore({ sieveScript: '$HOME/.sieve' } as ConstructorParameters<typeof ScriptStore>[0], user);
      store.put('one', 'discard;\n');
      store.setActive('one');
      assert.equal(fs.readlinkSync(path.join(home, '.sieve')), 'sieve/one.sieve');
      assert.deepEqual(store.list(), [{ name: 'default', active: false }, { name: 'one', active: true }]);
      assert.equal(store.get('default'), 'keep;\n', 'the hand-written script is kept as "default"');
      assert.throws(() => store.delete('one'), (e: unknown) => e instanceof StoreError && e.code === 'ACTIVE');
      store.rename('one', 'two');
      assert.equal(store.activeName(), 'two', 'renaming the active script keeps it active');
      assert.throws(() => store.rename('default', 'two'), (e: unknown) => e instanceof StoreError && e.code === 'ALREADYEXISTS');
      assert.throws(() => store.get('nope'), (e: unknown) => e instanceof StoreError && e.code === 'NONEXISTENT');
      assert.throws(() => store.put('../x', 'keep;'), StoreError);
      store.setActive('');
      assert.equal(fs.existsSync(path.join(home, '.sieve')), false);
      store.delete('two');
      assert.deepEqual(store.list().map((x) => x.name), ['default']);
      assert.throws(() => store.haveSpace('big', 2 << 20), (e: unknown) => e instanceof StoreError && e.code === 'QUOTA/MAXSIZE');
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
