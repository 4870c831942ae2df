// The one place that loads lmdb. It is required lazily (a native module costs
// tens of milliseconds to load) and synchronously, so openAliases() can stay
// synchronous and sendmail's submission path never pays for it.
//
// Every environment is opened with overlappingSync off: with it, lmdb-js opens
// the file at its previous snapshot. compile.ts renames each new database over
// the old one and then unlinks the old `-lock` file, so readers of different
// generations do not share a reader table (LMDB would reset it under a reader
// in the same process). In the moment between the two, a new reader may still
// open the old lock file: harmless, because a database file is written by
// exactly one transaction, so every generation has the same last transaction
// id and the shared table points both at the right meta page.
//
// lmdb-js 3.x frees its environment twice when mdb_env_open() fails after the
// file was opened (src/env.cpp, openEnv then closeEnv): a garbage or truncated
// file would crash the process, every queue run. So files are checked here
// first (LMDB's meta pages: magic, version, size), and created empty by us.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { Database, RootDatabase } from 'lmdb';

type Lmdb = typeof import('lmdb');

let loaded: Lmdb | undefined;

function lmdb(): Lmdb {
  loaded ??= createRequire(import.meta.url)('lmdb') as Lmdb;
  return loaded;
}

/** A new database file for one write transaction; the caller fsyncs it. */
export function createDatabase(path: string, mapSize: number): RootDatabase<Buffer, string> {
  fs.closeSync(fs.openSync(path, 'wx', 0o644)); // permission and space errors surface here, not in lmdb
  return lmdb().open<Buffer, string>({
    path,
    noSubdir: true,
    encoding: 'binary',
    compression: false,
    cache: false,
    overlappingSync: false,
    noSync: true,
    mapSize,
  });
}

/** An existing database, read-only. Throws when it is not a sound LMDB file. */
export function openDatabase(path: string): Database<string, string> {
  const problem = checkDatabaseFile(path);
  if (problem) throw new Error(problem);
  return lmdb().open<string, string>({
    path,
    noSubdir: true,
    readOnly: true,
    encoding: 'string',
    compression: false,
    cache: false,
    overlappingSync: false,
  });
}

const MDB_MAGIC = 0xbeefc0de;
const MDB_DATA_VERSION = 2;
/** Offsets in a meta page (64-bit LMDB): page header 24 bytes, then MDB_meta. */
const META = { magic: 24, version: 28, pageSize: 48, lastPage: 144, end: 160 };

/** Why the file is not an LMDB database lmdb-js can open, or undefined when it is. */
export function checkDatabaseFile(path: string): string | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, 'r');
  } catch (e) {
    return (e as Error).message;
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = readAt(fd, 0, META.end);
    const pageSize = head.readUInt32LE(META.pageSize);
    if (head.readUInt32LE(META.magic) !== MDB_MAGIC) return `${path}: not an LMDB file`;
    if (head.readUInt32LE(META.version) !== MDB_DATA_VERSION) return `${path}: LMDB data version ${head.readUInt32LE(META.version)}, expected ${MDB_DATA_VERSION}`;
    if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) return `${path}: bad LMDB page size ${pageSize}`;
    const second = readAt(fd, pageSize, META.end);
    if (second.readUInt32LE(META.magic) !== MDB_MAGIC) return `${path}: second LMDB meta page missing`;
    const lastPage = Math.max(Number(head.readBigUInt64LE(META.lastPage)), Number(second.readBigUInt64LE(META.lastPage)));
    if (size < (lastPage + 1) * pageSize) return `${path}: truncated (${size} bytes, pages up to ${lastPage})`;
    return undefined;
  } finally {
    fs.closeSync(fd);
  }
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  fs.readSync(fd, buf, 0, length, position);
  return buf;
}
