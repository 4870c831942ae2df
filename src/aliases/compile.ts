// newaliases' work: rebuild the alias database (alias_db, a cdb file) from
// the aliases(5) source (alias_file). Owns every write to alias_db, and to
// the virtual alias table's cdb (writeCdbTable, for virtual-table.ts).
// Guarantees that the database is replaced whole or not at all: it is written
// under a temporary name in the same directory, fsync'd, then renamed into
// place (readers that opened the old file keep reading it), while
// proper-lockfile keeps a second newaliases out. A source with errors leaves
// the old database untouched and throws one MailError listing every error as
// file:line: message (sendmail lists them too). proper-lockfile is loaded
// here on demand: queue runs import this module's folder but never rebuild.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { buildAliases, type Built } from './builder.ts';
import { CdbRecords, CdbTables, cdbHash, countTables } from './cdb.ts';
import { FORMAT, META_KEY, type Meta } from './format.ts';

export interface CompileOptions {
  /** Called now and then with the number of aliases read so far. */
  onProgress?: (done: number) => void;
}

export interface CompileResult {
  /** The source file compiled. */
  file: string;
  count: number;
  /** sendmail's statistics: the longest right-hand side and the bytes of all names and right-hand sides. */
  longest: number;
  total: number;
  warnings: string[];
}

/** The parse errors of a failed compile, for callers that print them one per line. */
export class AliasFileError extends MailError {
  constructor(
    readonly file: string,
    readonly errors: Array<{ line: number; message: string }>,
  ) {
    super('config', errors.map((e) => `${file}:${e.line}: ${e.message}`).join('\n'));
  }
}

const LOCK_WAIT = { retries: 25, minTimeout: 100, maxTimeout: 1000 }; // about 20 s

export async function compileAliases(config: Config, opts: CompileOptions = {}): Promise<CompileResult> {
  const lock = await lockDatabase(config.aliasDb);
  try {
    const source = readSource(config.aliasFile);
    const built = buildAliases(source.bytes, config.aliasFile, { onProgress: opts.onProgress });
    if (built.errors.length > 0) throw new AliasFileError(config.aliasFile, built.errors);
    writeDatabase(config.aliasDb, fileBytes(built, metaOf(config.aliasFile, source.stat, built)), lock);
    return { file: config.aliasFile, count: built.count, longest: built.longest, total: built.total, warnings: built.warnings };
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/**
 * A cdb of `records` (key, data; a later key replaces an earlier one) and a
 * meta record under META_KEY, written as alias_db is: whole or not at all,
 * `source` read under the database's lock (so two rebuilds never interleave).
 */
export async function writeCdbTable<T>(db: string, build: () => { records: Array<[string, string]>; meta: object; result: T }): Promise<T> {
  const lock = await lockDatabase(db);
  try {
    const { records, meta, result } = build();
    const keys = records.map(([k]) => Buffer.from(k, 'utf8'));
    keys.push(Buffer.from(META_KEY));
    const data = records.map(([, d]) => Buffer.from(d, 'utf8'));
    data.push(Buffer.from(JSON.stringify(meta)));
    const hashes = new Uint32Array(keys.length);
    let bytes = 0;
    keys.forEach((k, i) => {
      hashes[i] = cdbHash(k, 0, k.length);
      bytes += 8 + k.length + data[i].length;
    });
    const recs = new CdbRecords(bytes + 2048);
    const tables = new CdbTables(countTables(hashes));
    keys.forEach((k, i) => tables.place(hashes[i], recs.add(k, data[i]), recs.buf));
    writeDatabase(db, tables.finish(recs), lock);
    return result;
  } finally {
    await lock.release().catch(() => undefined);
  }
}

/** The source and its stat, or undefined when it does not exist. */
export function readSourceIfAny(file: string): Source | undefined {
  if (!fs.existsSync(file)) return undefined;
  return readSource(file);
}

interface Lock {
  release(): Promise<void>;
  /** Set when proper-lockfile found the lock taken over (this process stalled past `stale`). */
  lost: Error | undefined;
}

async function lockDatabase(db: string): Promise<Lock> {
  const lock: Lock = { release: async () => undefined, lost: undefined };
  try {
    const { default: lockfile } = await import('proper-lockfile');
    lock.release = await lockfile.lock(db, { realpath: false, retries: LOCK_WAIT, onCompromised: (e) => (lock.lost = e) });
    return lock;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ELOCKED') {
      throw new MailError('config', `alias database ${db} is being rebuilt by another newaliases (lock ${db}.lock); try again, or remove ${db}.lock if none is running`);
    }
    if (isPermission(err)) throw err; // the CLI words these: run as root, or -C a config you own
    throw new MailError('config', `cannot lock alias database ${db}: ${err.message}`, { cause: e });
  }
}

export interface Source {
  bytes: Buffer;
  stat: fs.BigIntStats;
}

/** The source and its stat, taken from the same descriptor before reading. */
function readSource(file: string): Source {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new MailError('config', `cannot read alias file: ${(e as Error).message}`, { file, cause: e });
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    return { bytes: fs.readFileSync(fd), stat };
  } finally {
    fs.closeSync(fd);
  }
}

function metaOf(file: string, stat: fs.BigIntStats, built: Built): Meta {
  return {
    format: FORMAT,
    source: file,
    mtimeNs: stat.mtimeNs.toString(),
    size: Number(stat.size),
    count: built.count,
    longest: built.longest,
    total: built.total,
  };
}

/** The whole cdb file: the aliases, then the meta record, then the hash tables. */
function fileBytes(built: Built, meta: Meta): Buffer[] {
  const key = Buffer.from(META_KEY);
  const position = built.records.add(key, Buffer.from(JSON.stringify(meta)));
  built.tables.place(cdbHash(key, 0, key.length), position, built.records.buf);
  return built.tables.finish(built.records);
}

/** Temporary file, written and fsync'd, renamed into place, then the directory fsync'd. */
function writeDatabase(db: string, bytes: Buffer[], lock: Lock): void {
  const tmp = path.join(path.dirname(db), `.${path.basename(db)}.${process.pid}.tmp`);
  removeLeftovers(db);
  try {
    const fd = fs.openSync(tmp, 'wx', 0o644);
    try {
      writeAll(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    if (lock.lost) throw new MailError('config', `lost the lock on ${db} while rebuilding: ${lock.lost.message}`);
    fs.renameSync(tmp, db);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof MailError || isPermission(e as NodeJS.ErrnoException)) throw e;
    throw new MailError('config', `cannot write alias database ${db}: ${(e as Error).message}`, { cause: e });
  }
  fsyncPath(path.dirname(db), 'r');
}

/** writev(2) until every byte is out (a short write is legal, if rare, on a full or slow disk). */
function writeAll(fd: number, bytes: Buffer[]): void {
  let rest = bytes.filter((b) => b.length > 0);
  while (rest.length > 0) {
    let done = fs.writevSync(fd, rest);
    const left: Buffer[] = [];
    for (const b of rest) {
      if (done >= b.length) done -= b.length;
      else {
        left.push(b.subarray(done));
        done = 0;
      }
    }
    rest = left;
  }
}

function isPermission(e: NodeJS.ErrnoException): boolean {
  return e.code === 'EACCES' || e.code === 'EPERM';
}

function fsyncPath(p: string, flags: string): void {
  const fd = fs.openSync(p, flags);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Temporary files of rebuilds that died: with the lock held, no live one can own them. */
function removeLeftovers(db: string): void {
  const dir = path.dirname(db);
  const prefix = `.${path.basename(db)}.`;
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith(prefix) && /^\d+\.tmp$/.test(name.slice(prefix.length))) fs.rmSync(path.join(dir, name), { force: true });
  }
}
