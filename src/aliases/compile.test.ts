import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { MailError } from '../message/status.ts';
import { CdbFile, CdbRecords, CdbTables, cdbHash, countTables } from './cdb.ts';
import { AliasFileError, compileAliases, openAliases } from './index.ts';
import { makeTestEnv, type TestEnv } from './test-env.ts';

function withEnv(fn: (env: TestEnv) => Promise<void> | void) {
  return async () => {
    const env = makeTestEnv();
    try {
      await fn(env);
    } finally {
      env.cleanup();
    }
  };
}

const SAMPLE = `# sample
postmaster: root
MAILER-DAEMON: postmaster
Staff: alice, bob,
\tcarol
prog: "|/usr/bin/filter a,b"
`;

test('compile then look up: names fold case, members come back as written', withEnv(async (env) => {
  env.write('aliases', SAMPLE);
  const r = await compileAliases(env.config);
  assert.deepEqual(r, {
    file: env.config.aliasFile,
    count: 4,
    longest: '"|/usr/bin/filter a,b"'.length,
    total: 'postmaster'.length + 4 + 'mailer-daemon'.length + 10 + 'staff'.length + 17 + 'prog'.length + '"|/usr/bin/filter a,b"'.length,
    warnings: [],
  });
  const t = openAliases(env.config);
  try {
    assert.deepEqual(t.lookup('staff'), ['alice', 'bob', 'carol']);
    assert.deepEqual(t.lookup('mailer-daemon'), ['postmaster']);
    assert.deepEqual(t.lookup('prog'), ['|/usr/bin/filter a,b']);
    assert.equal(t.lookup('nobody'), undefined);
    assert.equal(t.lookup('@'), undefined);
    assert.equal(t.lookup(''), undefined);
  } finally {
    t.close();
  }
  assert.doesNotMatch(env.logText(), /out of date|missing/);
}));

test('the database replaces the old one whole: no temporary files or locks left', withEnv(async (env) => {
  env.write('aliases', SAMPLE);
  await compileAliases(env.config);
  await compileAliases(env.config);
  const names = fs.readdirSync(env.dir).filter((n) => n.includes('aliases'));
  assert.deepEqual(names.sort(), ['aliases', 'aliases.cdb']);
}));

test('the meta record remembers the source, its mtime and size', withEnv(async (env) => {
  env.write('aliases', SAMPLE);
  await compileAliases(env.config);
  const db = CdbFile.open(env.config.aliasDb);
  try {
    const meta = JSON.parse(db.get(Buffer.from('@'))?.toString() ?? '');
    assert.equal(meta.format, 'mailtk-aliases/2');
    const st = fs.statSync(env.config.aliasFile, { bigint: true });
    assert.equal(meta.source, env.config.aliasFile);
    assert.equal(meta.mtimeNs, st.mtimeNs.toString());
    assert.equal(meta.size, Number(st.size));
    assert.equal(meta.count, 4);
  } finally {
    db.close();
  }
}));

test('errors name file:line, all of them, and leave the old database alone', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  await compileAliases(env.config);
  const before = fs.readFileSync(env.config.aliasDb);
  env.write('aliases', 'root: bob\nbroken line\nok: alice\nx: john smith\n');
  await assert.rejects(compileAliases(env.config), (e: unknown) => {
    assert.ok(e instanceof AliasFileError && e instanceof MailError);
    assert.equal(e.exit, 78);
    assert.deepEqual(e.message.split('\n').map((l) => l.split(': ')[0]), [`${env.config.aliasFile}:2`, `${env.config.aliasFile}:4`]);
    return true;
  });
  assert.deepEqual(fs.readFileSync(env.config.aliasDb), before);
  const t = openAliases(env.config);
  assert.deepEqual(t.lookup('root'), ['alice']);
  t.close();
  assert.deepEqual(fs.readdirSync(env.dir).filter((n) => n.includes('aliases')).sort(), ['aliases', 'aliases.cdb']);
}));

test('a missing alias file is a config error', withEnv(async (env) => {
  fs.rmSync(env.config.aliasFile);
  await assert.rejects(compileAliases(env.config), (e: unknown) => e instanceof MailError && e.exit === 78 && /cannot read alias file/.test(e.message));
}));

test('a stale database is used anyway, with a log line', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  await compileAliases(env.config);
  env.write('aliases', 'root: bob, carol\n');
  const t = openAliases(env.config);
  assert.deepEqual(t.lookup('root'), ['alice']);
  t.close();
  assert.match(env.logText(), new RegExp(`alias database ${env.config.aliasDb} out of date`));
}));

test('no database: the source is read directly, with a log line', withEnv((env) => {
  env.write('aliases', 'root: alice\nbad line\n');
  const t = openAliases(env.config);
  assert.deepEqual(t.lookup('root'), ['alice']);
  t.close();
  assert.match(env.logText(), /alias database .* missing; reading .* directly \(run newaliases\)/);
  assert.match(env.logText(), /has 1 errors; run newaliases/);
}));

test('neither file: an empty table', withEnv((env) => {
  fs.rmSync(env.config.aliasFile);
  const t = openAliases(env.config);
  assert.equal(t.lookup('root'), undefined);
  t.close();
}));

test('a database without its meta record is not used', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  fs.writeFileSync(env.config.aliasDb, 'not a cdb file at all, just some text that is long enough');
  const t = openAliases(env.config);
  assert.deepEqual(t.lookup('root'), ['alice']); // from the source
  t.close();
  assert.match(env.logText(), /alias database .* (unusable|cannot open)/);
}));

test('a table opened before a rebuild keeps working; one opened after sees the new aliases', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  await compileAliases(env.config);
  const old = openAliases(env.config);
  env.write('aliases', 'root: bob\nextra: carol\n');
  await compileAliases(env.config);
  const fresh = openAliases(env.config);
  try {
    assert.deepEqual(old.lookup('root'), ['alice']);
    assert.deepEqual(fresh.lookup('root'), ['bob']);
    assert.deepEqual(fresh.lookup('extra'), ['carol']);
  } finally {
    old.close();
    fresh.close();
  }
}));

test('concurrent rebuilds take turns on the lock and both succeed', withEnv(async (env) => {
  env.write('aliases', Array.from({ length: 3000 }, (_, i) => `a${i}: root, alice`).join('\n'));
  const [a, b] = await Promise.all([compileAliases(env.config), compileAliases(env.config)]);
  assert.equal(a.count, 3000);
  assert.equal(b.count, 3000);
  assert.equal(fs.existsSync(`${env.config.aliasDb}.lock`), false);
}));

test('a large file round-trips, and progress is reported', withEnv(async (env) => {
  const n = 30000;
  env.write('aliases', Array.from({ length: n }, (_, i) => `Name${i}: u${i}${i % 3 ? '' : `, "|/bin/p ${i}"`}`).join('\n'));
  const seen: number[] = [];
  const r = await compileAliases(env.config, { onProgress: (d) => seen.push(d) });
  assert.equal(r.count, n);
  assert.equal(seen.length, 3); // at the start, then about every 10,000 aliases
  assert.ok(seen[0] === 0 && seen[1] >= 10000 && seen[2] >= 20000, String(seen));
  const t = openAliases(env.config);
  try {
    for (let i = 0; i < n; i += 7) {
      assert.deepEqual(t.lookup(`name${i}`), i % 3 ? [`u${i}`] : [`u${i}`, `|/bin/p ${i}`]);
    }
  } finally {
    t.close();
  }
}));

test('a lock left by a crashed newaliases is taken over once stale', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  const lockDir = `${env.config.aliasDb}.lock`;
  fs.mkdirSync(lockDir);
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(lockDir, old, old);
  const r = await compileAliases(env.config);
  assert.equal(r.count, 1);
  assert.equal(fs.existsSync(lockDir), false);
  assert.ok(fs.existsSync(path.join(env.dir, 'aliases.cdb')));
}));

test('a cdb file that newaliases did not write (no @ record) is not used', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  const records = new CdbRecords(4096);
  const key = Buffer.from('root');
  const at = records.add(key, Buffer.from('mallory'));
  const hash = cdbHash(key, 0, key.length);
  const tables = new CdbTables(countTables(Uint32Array.of(hash)));
  tables.place(hash, at, records.buf);
  fs.writeFileSync(env.config.aliasDb, Buffer.concat(tables.finish(records)));
  const t = openAliases(env.config);
  assert.deepEqual(t.lookup('root'), ['alice']);
  t.close();
  assert.match(env.logText(), /is incomplete or not a mailtk-aliases\/2 database/);
}));

test('temporary files of a rebuild that died are cleaned up by the next one', withEnv(async (env) => {
  env.write('aliases', 'root: alice\n');
  env.write('.aliases.cdb.99999.tmp', 'half a database');
  env.write('.aliases.cdb.notes', 'not ours');
  await compileAliases(env.config);
  assert.deepEqual(fs.readdirSync(env.dir).filter((n) => n.includes('aliases')).sort(), ['.aliases.cdb.notes', 'aliases', 'aliases.cdb']);
}));
