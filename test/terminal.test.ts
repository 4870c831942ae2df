// Spinners only at a terminal of sensible width: at a terminal that reports
// zero columns (script(1), some CI consoles) `sendmail -q -v` finishes,
// delivers, and prints a few KB, not megabytes of escape codes.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BIN, makeSandbox, run, splitMbox } from './helpers.ts';

const sb = makeSandbox({ users: ['alice'] });
after(() => sb.cleanup());
const hasScript = spawnSync('sh', ['-c', 'command -v script'], { encoding: 'utf8' }).status === 0;

test('sendmail -q -v at a terminal of zero columns finishes and delivers', { skip: !hasScript && 'script(1) not installed (bsdutils)' }, () => {
  for (let i = 0; i < 30; i++) assert.equal(run(sb, 'sendmail', ['-odq', '-i', 'alice'], `Subject: tty-${i}\n\nx\n`).status, 0);
  const typescript = path.join(sb.dir, 'typescript');
  const cmd = `stty cols 0; ${path.join(BIN, 'sendmail')} -C ${sb.conf} -q -v`;
  const r = spawnSync('script', ['-qec', cmd, typescript], { env: sb.env, timeout: 60_000, encoding: 'utf8' });
  assert.equal(r.status, 0, `finished: ${r.stderr}`);
  assert.ok(fs.statSync(typescript).size < 8192, `a few KB of output, not ${fs.statSync(typescript).size} bytes`);
  assert.match(fs.readFileSync(typescript, 'utf8'), /Queue run: 30 entries, 30 delivered/);
  assert.equal(splitMbox(sb.readMbox('alice')).length, 30);
});
