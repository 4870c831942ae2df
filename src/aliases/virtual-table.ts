// The virtual domains' alias table (virtual_alias_file, sendmail's
// virtusertable) compiled as the aliases are: newaliases (and `mailtk alias
// add|del`, after each edit) writes VIRTUAL_ALIAS_FILE.cdb, as makemap writes
// virtusertable.db, with compile.ts's writer (lock, temporary file, fsync,
// rename). One record per entry: the key "user@domain" or "@domain" lower
// case, the data the target as written; the meta record "@" names the
// source's mtime and size when compiled.
// A lookup uses the compiled file while it is the compile of the text as it
// is now (the meta record matches the text's stat), else the text itself
// (a hand edit not yet compiled counts at once, as before there was a
// database), through a Map made once per version: either way a lookup costs
// two stats and a hash probe, at 100,000 entries as at ten. A daemon thus
// sees the text and its compiled form agree at every moment.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { type Line, type VirtualTarget, checkVirtualAliases, keyMap, parseTable, parseTarget, readTable } from '../virtual/tables.ts';
import { CdbError, CdbFile } from './cdb.ts';
import { readSourceIfAny, writeCdbTable } from './compile.ts';
import { META_KEY } from './format.ts';

const FORMAT = 'mailtk-virtusertable/1';

interface VirtualMeta {
  format: string;
  source: string;
  mtimeNs: string;
  size: number;
  count: number;
}

/** Where the compiled table lives: beside its source, ".cdb" added. */
export function virtualAliasDb(config: Config): string {
  return `${config.raw.virtual_alias_file}.cdb`;
}

export interface VirtualCompileResult {
  file: string;
  db: string;
  count: number;
  /** file:line messages; when there are any, nothing was written. */
  errors: string[];
}

/** Check the table and, when it has no errors, compile it (a table that does not exist: its database is removed). */
export async function compileVirtualAliases(config: Config): Promise<VirtualCompileResult> {
  const file = config.raw.virtual_alias_file;
  const db = virtualAliasDb(config);
  if (!fs.existsSync(file) && !fs.existsSync(db)) return { file, db, count: 0, errors: [] };
  return writeCdbTable(db, () => {
    const source = readSourceIfAny(file);
    const lines = parseTable(source?.bytes.toString('utf8') ?? '');
    const checked = checkVirtualAliases(config, lines);
    if (checked.errors.length) throw new VirtualTableErrors({ file, db, count: lines.length, errors: checked.errors });
    const meta: VirtualMeta = { format: FORMAT, source: file, mtimeNs: source?.stat.mtimeNs.toString() ?? '0', size: Number(source?.stat.size ?? 0), count: lines.length };
    return { records: lines.map((l): [string, string] => [l.fields[0].toLowerCase(), l.rest]), meta, result: { file, db, count: lines.length, errors: [] } };
  }).catch((e) => {
    if (e instanceof VirtualTableErrors) return e.result;
    throw e;
  });
}

/** Thrown inside the writer to leave the old database as it is. */
class VirtualTableErrors extends Error {
  constructor(readonly result: VirtualCompileResult) {
    super(result.errors.join('\n'));
  }
}

interface Opened {
  stamp: string;
  cdb: CdbFile;
  meta?: VirtualMeta;
}

const opened = new Map<string, Opened>();

function stampOf(st: fs.BigIntStats): string {
  return `${st.ino}:${st.mtimeNs}:${st.size}`;
}

/** The compiled table, opened again when its file was replaced; undefined when there is none usable. */
function compiled(config: Config): Opened | undefined {
  const db = virtualAliasDb(config);
  const st = fs.statSync(db, { bigint: true, throwIfNoEntry: false });
  const had = opened.get(db);
  if (had && (!st || had.stamp !== stampOf(st))) {
    had.cdb.close();
    opened.delete(db);
  }
  if (!st) return undefined;
  if (had && had.stamp === stampOf(st)) return had;
  try {
    const cdb = CdbFile.open(db);
    const text = cdb.get(Buffer.from(META_KEY))?.toString('utf8');
    let meta: VirtualMeta | undefined;
    try {
      meta = text ? (JSON.parse(text) as VirtualMeta) : undefined;
    } catch {
      meta = undefined;
    }
    const o = { stamp: stampOf(st), cdb, meta: meta?.format === FORMAT ? meta : undefined };
    opened.set(db, o);
    return o;
  } catch (e) {
    if (e instanceof CdbError) return undefined; // the text serves; newaliases will say what is wrong
    throw new MailError('config', `cannot read: ${(e as Error).message}`, { file: db });
  }
}

/** The entry for exactly `key` ("user@domain" or "@domain"), if any. */
export function virtualAlias(config: Config, key: string): VirtualTarget | undefined {
  const file = config.raw.virtual_alias_file;
  const k = key.toLowerCase();
  const text = fs.statSync(file, { bigint: true, throwIfNoEntry: false });
  if (!text) return undefined;
  const db = compiled(config);
  if (db?.meta && db.meta.mtimeNs === text.mtimeNs.toString() && db.meta.size === Number(text.size)) {
    let data: Buffer | undefined;
    try {
      data = db.cdb.get(Buffer.from(k, 'utf8'));
    } catch (e) {
      throw new MailError('config', `unusable virtual alias database: ${(e as Error).message}; run newaliases`, { file: virtualAliasDb(config) });
    }
    return data === undefined ? undefined : parseTarget(data.toString('utf8'), virtualAliasDb(config), 0);
  }
  const entry: Line | undefined = keyMap(readTable(file)).get(k);
  return entry ? parseTarget(entry.rest, file, entry.line) : undefined;
}
