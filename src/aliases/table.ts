// Alias lookups: openAliases() gives an AliasTable over the compiled database
// (alias_db, a cdb file), or over the source file itself when there is no
// usable database. Only this module reads alias_db. Opening is cheap: one
// open and read (for a big database, the header, then two pread(2)s per
// lookup: cdb.ts) and a lookup of the meta record. No native module and no
// lock file: a rebuild renames a new file over the old one, and a table opened
// before it goes on with the old file. A database older than its source is
// used anyway, with a log line, as sendmail and Postfix do; so is a source
// without a database, parsed in memory. A database found corrupt at a lookup
// is a MailError ('config', 4.3.5): the message waits in the queue.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import { CdbError, CdbFile } from './cdb.ts';
import { FORMAT, META_KEY, type Meta, membersOf, unstorableName } from './format.ts';
import { parseAliases } from './parse.ts';

export interface AliasTable {
  /** Members of the alias, by lower-cased name; undefined when there is none. */
  lookup(name: string): string[] | undefined;
  close(): void;
  /** Owner of the aliases' source file: its programs and files run as this uid (root: default_privs). */
  readonly ownerUid?: number;
}

export function openAliases(config: Config): AliasTable {
  const source = statOrUndefined(config.aliasFile);
  const db = statOrUndefined(config.aliasDb);
  const uid = source?.uid ?? db?.uid;
  const ownerUid = uid === undefined ? undefined : Number(uid);
  if (db) {
    const table = openCompiled(config, ownerUid);
    if (table) {
      if (source && isStale(table.meta, source)) log(config, '', `alias database ${config.aliasDb} out of date`);
      return table;
    }
  }
  if (source) {
    log(config, '', `alias database ${config.aliasDb} ${db ? 'unusable' : 'missing'}; reading ${config.aliasFile} directly (run newaliases)`);
    return openSource(config, ownerUid);
  }
  return { lookup: () => undefined, close: () => undefined, ownerUid };
}

function statOrUndefined(file: string): fs.BigIntStats | undefined {
  try {
    return fs.statSync(file, { bigint: true });
  } catch {
    return undefined;
  }
}

function isStale(meta: Meta, source: fs.BigIntStats): boolean {
  return meta.mtimeNs !== source.mtimeNs.toString() || meta.size !== Number(source.size);
}

interface Compiled extends AliasTable {
  meta: Meta;
}

/** The database, or undefined (logged) when it cannot be opened or was never finished. */
function openCompiled(config: Config, ownerUid: number | undefined): Compiled | undefined {
  let db: CdbFile;
  let meta: Meta | undefined;
  try {
    db = CdbFile.open(config.aliasDb);
    try {
      meta = readMeta(db.get(Buffer.from(META_KEY))?.toString('utf8'));
    } catch (e) {
      db.close();
      throw e;
    }
  } catch (e) {
    log(config, '', `cannot open alias database ${config.aliasDb}: ${(e as Error).message}`);
    return undefined;
  }
  if (!meta) {
    log(config, '', `alias database ${config.aliasDb} is incomplete or not a ${FORMAT} database`);
    db.close();
    return undefined;
  }
  return {
    meta,
    ownerUid,
    lookup(name: string): string[] | undefined {
      if (unstorableName(name)) return undefined;
      let data: Buffer | undefined;
      try {
        data = db.get(Buffer.from(name, 'utf8'));
      } catch (e) {
        if (!(e instanceof CdbError)) throw e;
        throw new MailError('config', `unusable alias database: ${e.problem}; run newaliases`, { file: config.aliasDb, cause: e });
      }
      return data === undefined ? undefined : membersOf(data.toString('utf8'));
    },
    close(): void {
      db.close();
    },
  };
}

function readMeta(text: string | undefined): Meta | undefined {
  if (text === undefined) return undefined;
  try {
    const meta = JSON.parse(text) as Meta;
    return meta.format === FORMAT ? meta : undefined;
  } catch {
    return undefined;
  }
}

/** No database: the source parsed in memory; entries with errors are left out (newaliases names them). */
function openSource(config: Config, ownerUid: number | undefined): AliasTable {
  let text = '';
  try {
    text = fs.readFileSync(config.aliasFile, 'utf8');
  } catch (e) {
    log(config, '', `cannot read alias file ${config.aliasFile}: ${(e as Error).message}`);
  }
  const parsed = parseAliases(text, config.aliasFile);
  if (parsed.errors.length > 0) {
    log(config, '', `alias file ${config.aliasFile} has ${parsed.errors.length} errors; run newaliases to see them`);
  }
  const map = new Map(parsed.entries.map((e) => [e.name, e.members]));
  return {
    ownerUid,
    lookup: (name) => map.get(name),
    close: () => undefined,
  };
}
