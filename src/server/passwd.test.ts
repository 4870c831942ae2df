// The password file: scrypt hashes in their self-describing form, checks,
// atomic updates that keep other lines, and errors that name the line.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { PasswdFile, hashPassword, parseHash, setPassword } from './passwd.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-passwd-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('hashes describe themselves and are salted', async () => {
  const a = await hashPassword('pw');
  const b = await hashPassword('pw');
  assert.match(a, /^\$scrypt\$N=16384,r=8,p=1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$/);
  assert.notEqual(a, b);
  assert.ok(parseHash(a));
  assert.equal(parseHash('$scrypt$N=3,r=8,p=1$AA==$AA=='), undefined, 'N must be a power of two');
});

test('setPassword adds, then changes, keeping the other lines; mode 0600', async () => {
  const file = path.join(dir, 'passwd');
  assert.equal(await setPassword(file, 'alice', 'one'), 'added');
  assert.equal(await setPassword(file, 'bob', 'two'), 'added');
  assert.equal(await setPassword(file, 'alice', 'three'), 'changed');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
  assert.deepEqual(lines.map((l) => l.split(':')[0]), ['alice', 'bob']);
  const pw = PasswdFile.load(file);
  assert.equal(await pw.verify('alice', 'three'), true);
  assert.equal(await pw.verify('alice', 'one'), false);
  assert.equal(await pw.verify('bob', 'two'), true);
  assert.equal(await pw.verify('nobody', 'two'), false);
});

test('refreshed() sees a changed file', async () => {
  const file = path.join(dir, 'passwd2');
  await setPassword(file, 'carol', 'old');
  const first = PasswdFile.load(file);
  assert.equal(first.refreshed(), first);
  await setPassword(file, 'carol', 'new');
  assert.equal(await first.refreshed().verify('carol', 'new'), true);
});

test('bad lines and bad user names', async () => {
  const file = path.join(dir, 'bad');
  fs.writeFileSync(file, '# c\nalice:plaintext\n');
  assert.throws(() => PasswdFile.load(file), /bad:2: expected "user:\$scrypt\$/);
  await assert.rejects(setPassword(file, 'a:b', 'x'), /bad user name/);
  assert.equal(PasswdFile.load(path.join(dir, 'none')).size, 0);
});
