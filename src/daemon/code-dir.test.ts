// The code copy that children giving root up load from (code-dir.ts) is
// readable by all whatever the caller's umask: mutt runs $sendmail under
// umask 077, and a root sendmail's runner then could not load its code.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { copyOut } from './code-dir.ts';

test('a copy made under umask 077 is readable and traversable by everyone, and written by no one else', () => {
  const from = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-code-src-'));
  for (const [sub, file] of [['dist', 'runner.js'], ['bin', 'sendmail']]) {
    fs.mkdirSync(path.join(from, sub));
    fs.writeFileSync(path.join(from, sub, file), '// code\n');
  }
  const old = process.umask(0o077);
  let to: string;
  try {
    to = copyOut(from);
  } finally {
    process.umask(old);
    fs.rmSync(from, { recursive: true, force: true });
  }
  try {
    assert.equal(fs.statSync(to).mode & 0o777, 0o755);
    for (const sub of ['dist', 'bin']) assert.equal(fs.statSync(path.join(to, sub)).mode & 0o777, 0o755, sub);
    assert.equal(fs.statSync(path.join(to, 'dist', 'runner.js')).mode & 0o777, 0o644);
    assert.equal(fs.statSync(path.join(to, 'bin', 'sendmail')).mode & 0o777, 0o755);
  } finally {
    fs.rmSync(to, { recursive: true, force: true });
  }
});
