// What the compiled alias database (a cdb file, cdb.ts) holds, shared by the
// builder (writes) and the table (reads). Leaf module: no file access.
//
// One record per alias: the key is the lower-cased name, the data its
// canonical members (parse.ts) separated by newlines, which no member can
// contain. So `cdb -q aliases.cdb staff` (tinycdb) prints the members one a
// line. Key "@" holds the meta record (JSON), named after sendmail's "@:@"
// end-of-database mark; a file without it was not written by newaliases.
// Postfix's cdb: map reads the file too, but its values are not Postfix's
// alias syntax: Postfix cannot use it as alias_maps.

export const META_KEY = '@';
export const FORMAT = 'mailtk-aliases/2';
/** Separates members in a record's data. */
export const MEMBER_SEP = 0x0a;

export interface Meta {
  format: string;
  /** The source file it was built from, and its mtime and size then. */
  source: string;
  mtimeNs: string;
  size: number;
  count: number;
  longest: number;
  total: number;
}

/** A record's data as members. */
export function membersOf(data: string): string[] {
  return data.split('\n');
}

/** Members as a record's data, for entries built outside the byte-level fast path. */
export function dataOf(members: string[]): string {
  return members.join('\n');
}

/** A name the format cannot hold (and so no alias can have). */
export function unstorableName(name: string): boolean {
  return name === '' || name === META_KEY || /[\x00-\x08\x0a-\x1f\x7f]/.test(name);
}
