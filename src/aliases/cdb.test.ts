import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { MailError } from '../message/status.ts';
import { CdbError, CdbFile, type CdbOpenOptions, CdbRecords, CdbTables, HEADER_BYTES, READ_WHOLE_BYTES, cdbHash, countTables } from './cdb.ts';
import { compileAliases, openAliases } from './index.ts';
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

function tmpFile(name: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-cdb-')), name);
}

/** A cdb file of these pairs, in order, written by our writer; returns what place() said of each. */
function writeCdb(file: string, pairs: Array<[string | Buffer, string | Buffer]>): number[] {
  const records = new CdbRecords(0);
  const hashes = new Uint32Array(pairs.length);
  const positions = new Uint32Array(pairs.length);
  pairs.forEach(([k, d], i) => {
    const key = Buffer.from(k);
    hashes[i] = cdbHash(key, 0, key.length);
    positions[i] = records.add(key, Buffer.from(d));
  });
  const tables = new CdbTables(countTables(hashes));
  const placed = pairs.map((_, i) => tables.place(hashes[i], positions[i], records.buf));
  fs.writeFileSync(file, Buffer.concat(tables.finish(records)));
  return placed;
}

function get(db: CdbFile, key: string | Buffer): string | undefined {
  return db.get(Buffer.from(key))?.toString('utf8');
}

/** Both ways of reading: the whole file at open, and a pread per lookup. */
const MODES: CdbOpenOptions[] = [{ whole: true }, { whole: false }];

/** Runs fn with the file's CdbFile open. */
function withCdb<T>(file: string, fn: (db: CdbFile) => T, opts: CdbOpenOptions = {}): T {
  const db = CdbFile.open(file, opts);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

const tinycdb = spawnSync('cdb', ['-h']).error === undefined;
const NO_TINYCDB = tinycdb ? false : 'tinycdb is not installed (the cdb command; Debian package tinycdb, see test/install-deps.sh)';
const postmap = spawnSync('postmap', ['-h']).error === undefined && spawnSync('postconf', ['-m'], { encoding: 'utf8' }).stdout?.split('\n').includes('cdb');
const NO_POSTMAP = postmap ? false : "Postfix's postmap with the cdb map type is not installed (Debian packages postfix, postfix-cdb)";

test('the hash is cdb\'s: h = ((h << 5) + h) ^ c from 5381', () => {
  assert.equal(cdbHash(Buffer.from(''), 0, 0), 5381);
  assert.equal(cdbHash(Buffer.from('a'), 0, 1), ((5381 * 33) ^ 0x61) >>> 0);
  // Past 32 bits it wraps: a long key, checked against a BigInt model.
  const key = Buffer.from('a-rather-long-alias-name-to-overflow@example.org');
  let h = 5381n;
  for (const c of key) h = ((h * 33n) ^ BigInt(c)) & 0xffffffffn;
  assert.equal(cdbHash(key, 0, key.length), Number(h));
});

test('round trip: many keys (tables with collisions), empty and binary values, a missing key', () => {
  const file = tmpFile('t.cdb');
  const pairs: Array<[string | Buffer, string | Buffer]> = Array.from({ length: 5000 }, (_, i) => [`key${i}`, `value ${i}`]);
  pairs.push(['empty', ''], ['', 'empty key'], [Buffer.from([0, 255, 10]), Buffer.from([1, 2, 3])], ['café', 'naïve']);
  writeCdb(file, pairs);
  for (const mode of MODES) {
    withCdb(file, (db) => {
      for (let i = 0; i < 5000; i++) assert.equal(get(db, `key${i}`), `value ${i}`);
      assert.equal(get(db, 'empty'), '');
      assert.equal(get(db, ''), 'empty key');
      assert.deepEqual(db.get(Buffer.from([0, 255, 10])), Buffer.from([1, 2, 3]));
      assert.equal(get(db, 'café'), 'naïve');
      assert.equal(get(db, 'key5000'), undefined);
      assert.equal(get(db, 'Key1'), undefined);
    }, mode);
  }
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('a value longer than the first read comes back whole; an empty database is valid', () => {
  const file = tmpFile('t.cdb');
  const long = 'x'.repeat(100_000);
  writeCdb(file, [['long', long]]);
  for (const mode of MODES) withCdb(file, (db) => assert.equal(get(db, 'long'), long), mode);
  writeCdb(file, []);
  assert.equal(fs.statSync(file).size, HEADER_BYTES);
  for (const mode of MODES) withCdb(file, (db) => assert.equal(get(db, 'anything'), undefined), mode);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('a key placed twice: the later record takes the slot, and place() names the earlier', () => {
  const file = tmpFile('t.cdb');
  const placed = writeCdb(file, [['k', 'first'], ['other', 'x'], ['k', 'second']]);
  assert.deepEqual(placed, [0, 0, HEADER_BYTES]); // the first record sits right after the header
  for (const mode of MODES) withCdb(file, (db) => assert.equal(get(db, 'k'), 'second'), mode);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('an open CdbFile keeps reading its file after a new one is renamed over it', () => {
  const file = tmpFile('t.cdb');
  for (const mode of MODES) {
    writeCdb(file, [['k', 'old']]);
    const db = CdbFile.open(file, mode);
    try {
      writeCdb(`${file}.new`, [['k', 'new']]);
      fs.renameSync(`${file}.new`, file);
      assert.equal(get(db, 'k'), 'old');
      withCdb(file, (fresh) => assert.equal(get(fresh, 'k'), 'new'));
    } finally {
      db.close();
    }
  }
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('small files are read whole, big ones looked up in place', () => {
  const file = tmpFile('t.cdb');
  const value = 'v'.repeat(1000);
  writeCdb(file, Array.from({ length: Math.ceil(READ_WHOLE_BYTES / 1000) }, (_, i) => [`k${i}`, value]));
  const db = CdbFile.open(file);
  try {
    fs.truncateSync(file, HEADER_BYTES); // a pread now comes up short
    assert.throws(() => db.get(Buffer.from('k1')), (e: unknown) => e instanceof CdbError && /short read/.test(e.message));
  } finally {
    db.close();
  }
  writeCdb(file, [['k1', 'v']]);
  const small = CdbFile.open(file);
  try {
    fs.truncateSync(file, 0);
    assert.equal(get(small, 'k1'), 'v');
  } finally {
    small.close();
  }
  fs.rmSync(path.dirname(file), { recursive: true });
});

// ------------------------------------------------------------ malformed files

test('malformed files are a CdbError naming the file: empty, short, truncated, trailing bytes', () => {
  const file = tmpFile('aliases.cdb');
  writeCdb(file, Array.from({ length: 300 }, (_, i) => [`a${i}`, 'root']));
  const whole = fs.readFileSync(file);
  const cases: Array<[string, Buffer, RegExp]> = [
    ['empty', Buffer.alloc(0), /truncated or not a cdb file \(0 bytes/],
    ['shorter than the header', whole.subarray(0, 100), /truncated or not a cdb file \(100 bytes/],
    ['header only', whole.subarray(0, HEADER_BYTES), /truncated or not a cdb file: its hash tables end at byte \d+, the file has 2048/],
    ['cut in the records', whole.subarray(0, 3000), /truncated/],
    ['one byte short', whole.subarray(0, whole.length - 1), /truncated/],
    ['a byte too many', Buffer.concat([whole, Buffer.from('x')]), /not a cdb file: its hash tables end at byte \d+, the file has/],
    ['text', Buffer.from('root: alice\n'.repeat(400)), /not a cdb file/],
  ];
  for (const [what, bytes, message] of cases) {
    fs.writeFileSync(file, bytes);
    for (const mode of MODES) {
      assert.throws(
        () => CdbFile.open(file, mode).close(),
        (e: unknown) => e instanceof CdbError && e.message.startsWith(`${file}: `) && message.test(e.message),
        `${what} ${JSON.stringify(mode)}`,
      );
    }
  }
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('garbage and flipped bytes: every lookup answers or throws CdbError, never anything else', () => {
  const file = tmpFile('t.cdb');
  const keys = Array.from({ length: 200 }, (_, i) => `name${i}`);
  writeCdb(file, keys.map((k) => [k, `${k}@example.org`]));
  const whole = fs.readFileSync(file);
  let seed = 7;
  const rnd = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  let refused = 0;
  for (let round = 0; round < 300; round++) {
    const bytes = Buffer.from(whole);
    if (round < 20) for (let i = 0; i < bytes.length; i++) bytes[i] = rnd(256); // all garbage
    else for (let k = 0; k < 1 + rnd(8); k++) bytes[HEADER_BYTES + rnd(bytes.length - HEADER_BYTES)] = rnd(256);
    if (round % 10 === 0) bytes.writeUInt32LE(rnd(2 ** 32), rnd(256) * 8); // a header pointer too
    fs.writeFileSync(file, bytes);
    for (const mode of MODES) {
      try {
        withCdb(file, (db) => {
          for (const k of [...keys.slice(0, 50), 'missing']) db.get(Buffer.from(k));
        }, mode);
      } catch (e) {
        assert.ok(e instanceof CdbError, `round ${round} ${JSON.stringify(mode)}: ${(e as Error).stack}`);
        if (mode.whole) refused++;
      }
    }
  }
  assert.ok(refused >= 20, `all-garbage files are refused (${refused})`);
  fs.rmSync(path.dirname(file), { recursive: true });
});

test('a truncated or garbage alias database: the source is read, and the log names the file', withEnv(async (env) => {
  env.write('aliases', Array.from({ length: 2000 }, (_, i) => `a${i}: root`).join('\n'));
  await compileAliases(env.config);
  const whole = fs.readFileSync(env.config.aliasDb);
  for (const bytes of [whole.subarray(0, 3 * 4096), Buffer.alloc(5000, 0xff)]) {
    fs.writeFileSync(env.config.aliasDb, bytes);
    const t = openAliases(env.config);
    assert.deepEqual(t.lookup('a7'), ['root']); // from the source
    t.close();
  }
  const log = env.logText();
  assert.match(log, new RegExp(`cannot open alias database ${env.config.aliasDb}: ${env.config.aliasDb}: truncated`));
  assert.match(log, new RegExp(`cannot open alias database ${env.config.aliasDb}: ${env.config.aliasDb}: (truncated or )?not a cdb file`));
}));

test('a record pointer out of bounds, met at a lookup: a MailError (4.3.5) naming the database', withEnv(async (env) => {
  env.write('aliases', 'root: alice\nstaff: bob\n');
  await compileAliases(env.config);
  const t = openAliases(env.config);
  try {
    // Point every slot of every table past the records: the next lookup meets it.
    const bytes = fs.readFileSync(env.config.aliasDb);
    const tablesStart = bytes.readUInt32LE(0);
    for (let at = tablesStart; at < bytes.length; at += 8) if (bytes.readUInt32LE(at + 4) !== 0) bytes.writeUInt32LE(bytes.length + 100, at + 4);
    fs.writeFileSync(`${env.config.aliasDb}.bad`, bytes);
    fs.renameSync(`${env.config.aliasDb}.bad`, env.config.aliasDb);
    assert.deepEqual(t.lookup('root'), ['alice']); // opened before: the old file
  } finally {
    t.close();
  }
  // Its meta record cannot be read either: not used, logged.
  const fresh = openAliases(env.config);
  fresh.close();
  assert.match(env.logText(), /cannot open alias database .*corrupt cdb file: record position \d+ is out of bounds/);
}));

test('a lookup that meets corruption after the meta record was read throws MailError, not a crash', withEnv(async (env) => {
  env.write('aliases', 'root: alice\nstaff: bob\n');
  await compileAliases(env.config);
  const bytes = fs.readFileSync(env.config.aliasDb);
  const key = Buffer.from('staff');
  const h = cdbHash(key, 0, key.length);
  const table = bytes.readUInt32LE((h & 0xff) * 8);
  const slots = bytes.readUInt32LE((h & 0xff) * 8 + 4);
  for (let s = 0; s < slots; s++) if (bytes.readUInt32LE(table + s * 8) === h) bytes.writeUInt32LE(bytes.length * 2, table + s * 8 + 4);
  fs.writeFileSync(env.config.aliasDb, bytes);
  const t = openAliases(env.config);
  try {
    assert.deepEqual(t.lookup('root'), ['alice']);
    assert.throws(() => t.lookup('staff'), (e: unknown) => {
      assert.ok(e instanceof MailError);
      assert.equal(e.status, '4.3.5');
      assert.ok(e.message.startsWith(`${env.config.aliasDb}: unusable alias database: corrupt cdb file: record position`), e.message);
      assert.match(e.message, /run newaliases$/);
      return true;
    });
  } finally {
    t.close();
  }
}));

// ------------------------------------------------------------ interop

test('tinycdb reads what newaliases wrote: cdb -q KEY, cdb -s, cdb -d', { skip: NO_TINYCDB }, withEnv(async (env) => {
  env.write('aliases', 'Staff: alice, bob,\n\tcarol\nprog: "|/usr/bin/filter a,b"\nroot: \\root, /var/log/root.mail\n');
  await compileAliases(env.config);
  const q = (key: string) => spawnSync('cdb', ['-q', env.config.aliasDb, key], { encoding: 'utf8' });
  assert.equal(q('staff').stdout, 'alice\nbob\ncarol');
  assert.equal(q('prog').stdout, '|/usr/bin/filter a,b');
  assert.equal(q('root').stdout, '\\root\n/var/log/root.mail');
  assert.equal(JSON.parse(q('@').stdout).count, 3);
  assert.equal(q('Staff').status, 100); // keys are lower-cased; 100 is tinycdb's "not found"
  const stats = spawnSync('cdb', ['-s', env.config.aliasDb], { encoding: 'utf8' });
  assert.equal(stats.status, 0, stats.stderr);
  assert.match(stats.stdout, /number of records: 4\n/);
  const dump = spawnSync('cdb', ['-d', env.config.aliasDb], { encoding: 'utf8' });
  assert.equal(dump.status, 0, dump.stderr);
  assert.ok(dump.stdout.startsWith('+5,15:staff->alice\nbob\ncarol\n+4,20:prog->|/usr/bin/filter a,b\n'), dump.stdout);
}));

test('we read what tinycdb wrote (cdb -c)', { skip: NO_TINYCDB }, () => {
  const file = tmpFile('t.cdb');
  const input = Array.from({ length: 1000 }, (_, i) => `+${`k${i}`.length},${`v${i}`.length}:k${i}->v${i}\n`).join('') + '+5,0:empty->\n\n';
  const made = spawnSync('cdb', ['-c', file, '-'], { input });
  assert.equal(made.status, 0, String(made.stderr));
  withCdb(file, (db) => {
    for (let i = 0; i < 1000; i++) assert.equal(get(db, `k${i}`), `v${i}`);
    assert.equal(get(db, 'empty'), '');
    assert.equal(get(db, 'k1000'), undefined);
  });
  fs.rmSync(path.dirname(file), { recursive: true });
});

test("Postfix's cdb: map reads our file (postmap -q), and we read postalias's", { skip: NO_POSTMAP }, withEnv(async (env) => {
  env.write('aliases', 'staff: alice, bob\n');
  await compileAliases(env.config);
  const base = env.config.aliasDb.replace(/\.cdb$/, ''); // Postfix adds .cdb itself
  const q = spawnSync('postmap', ['-q', 'staff', `cdb:${base}`], { encoding: 'utf8' });
  assert.equal(q.status, 0, q.stderr);
  assert.equal(q.stdout, 'alice\nbob\n');
  const theirs = env.write('postfix-aliases', 'Staff: alice, bob\n');
  const made = spawnSync('postalias', [`cdb:${theirs}`], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  withCdb(`${theirs}.cdb`, (db) => {
    assert.equal(get(db, 'staff'), 'alice, bob');
    assert.equal(get(db, '@'), '@');
  });
}));
