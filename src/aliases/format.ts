// The compiled alias database's record format, shared by the builder (writes)
// and the table (reads). Leaf module: no lmdb, no file access.
//
// How we do it: instead of one LMDB record per alias (100,000 puts cost more
// than Postfix's whole postalias run), aliases are grouped in hashed buckets
// of a few kilobytes: key "#N" holds every alias whose name hashes to N,
// as plain text records "name\x1fmember\x1fmember\n". A lookup is one get and
// one indexOf in a few kilobytes. Key "@" holds the meta record (JSON), named
// after sendmail's "@:@" end-of-database mark, and is written in the same
// transaction, so a database without it was never finished.

export const META_KEY = '@';
export const FORMAT = 'mailtk-aliases/1';
/** Source bytes per bucket, at most: the bucket count is the next power of two. */
export const BUCKET_BYTES = 4096;
/** Separates a name from its members and members from each other. */
export const FIELD = 0x1f;
/** Ends a record. */
export const RECORD = 0x0a;
/** Marks a record replaced by a later duplicate, before compaction. */
export const DEAD = 0x1f;

export interface Meta {
  format: string;
  buckets: number;
  /** The source file it was built from, and its mtime and size then. */
  source: string;
  mtimeNs: string;
  size: number;
  count: number;
  longest: number;
  total: number;
}

export function bucketKey(bucket: number): string {
  return `#${bucket}`;
}

/** FNV-1a over the name's UTF-8 bytes; names are ASCII nearly always. */
export function hashName(name: string): number {
  let h = 0x811c9dc5 | 0;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7f) return hashBytes(Buffer.from(name, 'utf8'), 0, Buffer.byteLength(name, 'utf8'));
    h = Math.imul(h ^ c, 0x01000193);
  }
  return h >>> 0;
}

export function hashBytes(buf: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i], 0x01000193);
  return h >>> 0;
}

/** The members of `name` in a bucket's text, or undefined. */
export function findInBucket(bucket: string, name: string): string[] | undefined {
  const probe = `${name}\x1f`;
  let at = bucket.startsWith(probe) ? 0 : bucket.indexOf(`\n${probe}`);
  if (at < 0) return undefined;
  if (at > 0) at++;
  let end = bucket.indexOf('\n', at);
  if (end < 0) end = bucket.length;
  return bucket.slice(at + probe.length, end).split('\x1f');
}

/** A record as text, for entries built outside the byte-level fast path. */
export function recordText(name: string, members: string[]): string {
  return `${name}\x1f${members.join('\x1f')}\n`;
}

/** A name the format cannot hold (and so no alias can have). */
export function unstorableName(name: string): boolean {
  return name === '' || name === META_KEY || /[\x00-\x08\x0a-\x1f\x7f]/.test(name);
}
