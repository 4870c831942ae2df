import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { makeTestEnv, type TestEnv } from '../aliases/test-env.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DATA = path.join(ROOT, 'src/aliases/testdata');

/** Runs runNewaliases in a child process, as the sendmail front end would. */
function newaliases(env: TestEnv, opts = { verbose: false, tty: false }) {
  const script = path.join(env.dir, 'run.mts');
  fs.writeFileSync(
    script,
    `import { loadConfig } from ${JSON.stringify(path.join(ROOT, 'src/config/index.ts'))};
import { runNewaliases } from ${JSON.stringify(path.join(ROOT, 'src/cli/newaliases.ts'))};
process.exitCode = await runNewaliases(loadConfig({ file: ${JSON.stringify(path.join(env.dir, 'mailtk.conf'))} }), ${JSON.stringify(opts)});
`,
  );
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: ROOT, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function withEnv(fn: (env: TestEnv) => void) {
  return () => {
    const env = makeTestEnv();
    try {
      fn(env);
    } finally {
      env.cleanup();
    }
  };
}

test('prints sendmail\'s summary with the real path of the alias file (golden)', withEnv((env) => {
  fs.copyFileSync(path.join(DATA, 'newaliases.in'), path.join(env.dir, 'real-aliases'));
  fs.rmSync(env.config.aliasFile);
  fs.symlinkSync(path.join(env.dir, 'real-aliases'), env.config.aliasFile);
  const r = newaliases(env);
  const expected = fs.readFileSync(path.join(DATA, 'newaliases.out'), 'utf8').replace('@FILE@', path.join(env.dir, 'real-aliases'));
  assert.equal(r.stderr, '');
  assert.equal(r.stdout, expected);
  assert.equal(r.code, 0);
  assert.ok(fs.existsSync(env.config.aliasDb));
  const logText = env.logText();
  assert.match(logText, new RegExp(`alias database ${env.config.aliasDb} rebuilt by \\S+`));
  assert.match(logText, /real-aliases: 7 aliases, longest 51 bytes, 157 bytes total/);
}));

test('errors go to stderr as file:line: message, exit 78, and the old database stays', withEnv((env) => {
  env.write('aliases', 'root: alice\n');
  assert.equal(newaliases(env).code, 0);
  const before = fs.readFileSync(env.config.aliasDb);
  env.write('aliases', 'root: alice\nnonsense\nx: a b\n');
  const r = newaliases(env);
  assert.equal(r.code, 78);
  assert.equal(r.stdout, '');
  assert.deepEqual(r.stderr.trim().split('\n'), [
    `${env.config.aliasFile}:2: missing colon: expected "name: address, ..." but found "nonsense"`,
    `${env.config.aliasFile}:3: bad address "a b": separate addresses with commas, and quote programs and files`,
    `newaliases: 2 errors in ${env.config.aliasFile}; ${env.config.aliasDb} not rebuilt`,
  ]);
  assert.deepEqual(fs.readFileSync(env.config.aliasDb), before);
  assert.match(env.logText(), /not rebuilt: 2 errors/);
}));

test('warnings go to stderr and the rebuild goes on; -v says more', withEnv((env) => {
  env.write('aliases', 'root: alice\nroot: bob\n');
  const r = newaliases(env, { verbose: true, tty: false });
  assert.equal(r.code, 0);
  assert.equal(r.stderr, `${env.config.aliasFile}:2: warning: duplicate alias name root (also on line 1; the last one wins)\n`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 3);
  assert.match(lines[0], /^newaliases: rebuilding .*aliases\.cdb from /);
  assert.match(lines[1], /aliases: 1 aliases, longest 3 bytes, 7 bytes total$/);
  assert.match(lines[2], /^newaliases: wrote .* in \d+ ms$/);
}));

test('a missing alias file exits 78 with a message naming it', withEnv((env) => {
  fs.rmSync(env.config.aliasFile);
  const r = newaliases(env);
  assert.equal(r.code, 78);
  assert.match(r.stderr, new RegExp(`^newaliases: ${env.config.aliasFile}: cannot read alias file: ENOENT`));
}));
