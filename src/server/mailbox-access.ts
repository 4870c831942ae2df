// Who may read which mailbox, for POP3 and IMAP: a login is a name and
// password of passwd_file (mailpasswd(8), the scrypt hashes SMTP AUTH uses)
// whose name is also a local user (user_db), and that user's mailboxes are
// read: INBOX is the spool mbox, other folders are mbox files under
// imap_folder_dir, indexes under mailbox_index_dir. APOP's shared secrets
// come from apop_secrets_file, which must be 0600. Every check goes through
// the process's login throttle (auth-throttle.ts): failures are delayed, and
// an address that keeps failing is blocked, with SMTP AUTH's and each other's.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { lookupUser, type User } from '../config/users.ts';
import { log } from '../log/index.ts';
import { type FolderSpec, mboxPath } from '../mailbox/index.ts';
import { type AuthBlocked, type AuthService, AuthThrottle } from './auth-throttle.ts';
import { ENVELOPE_CACHE, formatEnvelope } from './imap-envelope.ts';
import { PasswdFile } from './passwd.ts';

/** Who is logging in, for the throttle and its log line. */
export interface LoginFrom {
  service: Extract<AuthService, 'pop3' | 'imap'>;
  /** The client's IP address. */
  client: string;
  method: string;
}

/** A user, undefined for wrong credentials, or a block answered at once (a temporary failure). */
export type LoginResult = User | undefined | AuthBlocked;
/** How long a password that checked out is remembered (Dovecot's auth_cache_ttl is an hour). */
const CACHE_TTL_MS = 10 * 60_000;
const CACHE_MAX = 10_000;

/** Summaries every mailbox keeps in its cache, whichever protocol opened it first. */
const SUMMARIES = { [ENVELOPE_CACHE]: formatEnvelope };

export class MailboxAccess {
  private passwd: PasswdFile;
  /**
   * Logins that succeeded, as HMAC(user, password) under a key of this
   * process -> expiry: mail clients log in every few minutes, and scrypt
   * costs 16 MB and tens of milliseconds a check by design. Emptied whenever
   * passwd_file changes, so a changed or removed password stops working at once.
   */
  private verified = new Map<string, number>();
  private readonly cacheKey = crypto.randomBytes(32);

  /** logins false: a user's own process, which serves sessions but checks no password. */
  constructor(readonly config: Config, logins = true, private readonly throttle = new AuthThrottle()) {
    this.passwd = logins ? PasswdFile.load(config.passwdFile) : PasswdFile.empty();
  }

  /** The local user behind a name and password, or undefined (after the failure delay), or a block. */
  login(name: string, password: string, from: LoginFrom): Promise<LoginResult> {
    return this.throttle.attempt(this.config, { ...from, user: name }, () => this.check(name, password));
  }

  private async check(name: string, password: string): Promise<User | undefined> {
    try {
      const fresh = this.passwd.refreshed();
      if (fresh !== this.passwd) this.verified.clear();
      this.passwd = fresh;
    } catch (e) {
      log(this.config, '', `mailbox login: ${(e as Error).message}; the previous passwords stay in use`);
    }
    const key = crypto.createHmac('sha256', this.cacheKey).update(`${name}\0${password}`).digest('base64');
    const ok = (this.verified.get(key) ?? 0) > Date.now() || (await this.passwd.verify(name, password));
    if (ok) this.remember(key);
    return ok ? lookupUser(this.config, name) : undefined;
  }

  private remember(key: string): void {
    if (this.verified.size >= CACHE_MAX) this.verified.clear();
    this.verified.set(key, Date.now() + CACHE_TTL_MS);
  }

  /** APOP (RFC 1939 7): MD5 of the greeting's timestamp and the user's secret, in hex. */
  apop(name: string, timestamp: string, digest: string, from: LoginFrom): Promise<LoginResult> {
    return this.throttle.attempt(this.config, { ...from, user: name }, async () => {
      const secret = this.apopSecret(name);
      if (secret === undefined) return undefined;
      const want = crypto.createHash('md5').update(timestamp + secret).digest();
      const got = Buffer.from(/^[0-9a-f]{32}$/i.test(digest) ? digest : '0'.repeat(32), 'hex');
      return crypto.timingSafeEqual(want, got) ? lookupUser(this.config, name) : undefined;
    });
  }

  private apopSecret(name: string): string | undefined {
    const file = this.config.apopSecretsFile;
    let text: string;
    try {
      const st = fs.statSync(file);
      if (!apopFilePrivate(st)) {
        log(this.config, '', `APOP refused: ${file} is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
        return undefined;
      }
      text = fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
    for (const line of text.split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0 && !line.startsWith('#') && line.slice(0, colon) === name) return line.slice(colon + 1).replace(/\r$/, '');
    }
    return undefined;
  }

  /** $HOME in a configured directory is the user's home. */
  private userDir(template: string, user: User): string {
    return path.resolve(template.replace(/\$HOME\b/g, user.home).replace(/\$USER\b/g, user.name));
  }

  folderDir(user: User): string {
    return this.userDir(this.config.imapFolderDir, user);
  }

  /** INBOX: the spool mbox. */
  inbox(user: User): FolderSpec {
    return this.spec(user, mboxPath(this.config, user.name), 'INBOX');
  }

  /** Another folder: "a/b" is imap_folder_dir/a/b; the caller has checked the name. */
  folder(user: User, name: string): FolderSpec {
    return this.spec(user, path.join(this.folderDir(user), name), name);
  }

  private spec(user: User, mbox: string, name: string): FolderSpec {
    const indexRoot = this.userDir(this.config.mailboxIndexDir, user);
    return {
      mbox,
      indexDir: path.join(indexRoot, name),
      // Nothing below the home directory is followed through a symlink (POP3 and IMAP alike).
      beneath: { index: anchorOf(user, indexRoot) },
      owner: { uid: user.uid, gid: user.gid },
      backupDir: user.home,
      summaries: SUMMARIES,
    };
  }
}

/** The home directory when `dir` lies inside it (every component below is the user's to plant), else `dir`'s parent. */
export function anchorOf(user: User, dir: string): string {
  const rel = path.relative(path.resolve(user.home), dir);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? path.resolve(user.home) : path.dirname(dir);
}

/**
 * apop_secrets_file's one rule: nobody else may read it. 0600, or, owned by
 * root, readable by its group too (a root master makes it root:mail_owner
 * 0640 for the worker that checks logins, src/daemon/privs.ts).
 */
export function apopFilePrivate(st: fs.Stats): boolean {
  return (st.mode & (st.uid === 0 ? 0o037 : 0o077)) === 0;
}
