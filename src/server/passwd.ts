// The SMTP AUTH password file (passwd_file): "user:hash" a line, hashes from
// node:crypto's scrypt in a self-describing form,
//   $scrypt$N=16384,r=8,p=1$<salt, base64>$<hash, base64>
// so that stronger parameters can come later without breaking old lines.
// Verification is asynchronous (scrypt runs on libuv's pool, never on the
// event loop) and takes as long for an unknown user as for a known one.
// mailpasswd(8) and mailtk write the file through setPassword: replaced
// whole (replaceFile), mode 0600 when new, else the old owner, group and mode.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { replaceFile } from '../mailbox/index.ts';
import { MailError } from '../message/status.ts';

const scrypt = promisify(crypto.scrypt) as (pw: crypto.BinaryLike, salt: crypto.BinaryLike, len: number, opts: crypto.ScryptOptions) => Promise<Buffer>;

/** OWASP's minimum for scrypt (N=2^17 is stronger and needs 128 MB a check; 2^14 keeps AUTH cheap). */
const DEFAULT = { N: 16384, r: 8, p: 1 };
const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Up to N=2^20 with r=8: what a hand-edited line may ask for, bounded. */
const MAX_MEM = 1024 * 1024 * 1024 + 1024 * 1024;

interface Hash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

export function parseHash(s: string): Hash | undefined {
  const m = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(s);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) return undefined;
  return { N, r, p, salt: Buffer.from(m[4], 'base64'), hash: Buffer.from(m[5], 'base64') };
}

export async function hashPassword(password: string): Promise<string> {
  const salt = crypto.randomBytes(SALT_BYTES);
  const hash = await scrypt(password.normalize('NFC'), salt, HASH_BYTES, { ...DEFAULT, maxmem: MAX_MEM });
  return `$scrypt$N=${DEFAULT.N},r=${DEFAULT.r},p=${DEFAULT.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

function stampOf(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return 'none';
  }
}

async function matches(password: string, h: Hash): Promise<boolean> {
  const got = await scrypt(password.normalize('NFC'), h.salt, h.hash.length, { N: h.N, r: h.r, p: h.p, maxmem: MAX_MEM });
  return crypto.timingSafeEqual(got, h.hash);
}

/** A stand-in for unknown users, so that their check costs what a real one does. */
const DUMMY: Hash = { ...DEFAULT, salt: Buffer.alloc(SALT_BYTES), hash: Buffer.alloc(HASH_BYTES) };

export class PasswdFile {
  private constructor(
    private readonly users: Map<string, Hash>,
    private readonly file?: string,
    private readonly stamp = '',
  ) {}

  /** Empty (nobody can authenticate) when the file does not exist. */
  static load(file: string): PasswdFile {
    let text = '';
    const stamp = stampOf(file);
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new MailError('config', `cannot read password file: ${(e as Error).message}`, { file, cause: e });
      }
    }
    const users = new Map<string, Hash>();
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '' || line.startsWith('#')) return;
      const colon = line.indexOf(':');
      const hash = colon > 0 ? parseHash(line.slice(colon + 1).trim()) : undefined;
      if (!hash) throw new MailError('config', 'expected "user:$scrypt$N=..,r=..,p=..$salt$hash" (write it with mailpasswd)', { file, line: i + 1 });
      users.set(line.slice(0, colon), hash);
    });
    return new PasswdFile(users, file, stamp);
  }

  /** This table, or the file read again when mailpasswd has changed it since (one stat an AUTH). */
  refreshed(): PasswdFile {
    if (this.file === undefined || stampOf(this.file) === this.stamp) return this;
    return PasswdFile.load(this.file);
  }

  static empty(): PasswdFile {
    return new PasswdFile(new Map());
  }

  get size(): number {
    return this.users.size;
  }

  async verify(user: string, password: string): Promise<boolean> {
    const h = this.users.get(user);
    const ok = await matches(password, h ?? DUMMY);
    return ok && h !== undefined;
  }
}

/** Set (or add) one user's hash in the file, atomically; other lines are kept as they are. */
export async function setPassword(file: string, user: string, password: string): Promise<'added' | 'changed'> {
  if (!/^[^\s:#][^\s:]*$/.test(user)) throw new MailError('usage', `bad user name "${user}": no white space or ":"`);
  const hash = await hashPassword(password);
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(file, 'utf8').split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const at = lines.findIndex((l) => l.startsWith(`${user}:`));
  if (at >= 0) lines[at] = `${user}:${hash}`;
  else lines.push(`${user}:${hash}`);
  replaceLines(file, lines);
  return at >= 0 ? 'changed' : 'added';
}

/** Remove one user's line from the file, atomically; false when there was none. */
export function removePassword(file: string, user: string): boolean {
  let lines: string[];
  try {
    lines = fs.readFileSync(file, 'utf8').split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const kept = lines.filter((l) => !l.startsWith(`${user}:`));
  if (kept.length === lines.length) return false;
  replaceLines(file, kept);
  return true;
}

/**
 * The file replaced whole (mailbox/io.ts replaceFile: O_EXCL temporary,
 * fsync, rename, directory fsync); the new file keeps the old one's owner,
 * group and mode: a root daemon made it root:mail_owner 0640 for its
 * listeners (daemon/privs.ts shareSecrets), and a file replaced as root 0600
 * would lock them out of every later change. Known limit: between the rename
 * and the chown (microseconds) a listener reading it is refused and answers
 * that login as a temporary failure.
 */
function replaceLines(file: string, lines: string[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const old = fs.statSync(file, { throwIfNoEntry: false });
  const mode = old ? old.mode & 0o640 : 0o600;
  replaceFile(file, lines.join('\n') + '\n', mode, true);
  if (!old) return;
  if (process.geteuid?.() === 0) fs.chownSync(file, old.uid, old.gid);
  fs.chmodSync(file, mode); // what the umask took away
}
