// A user's Sieve scripts as ManageSieve keeps them, in Pigeonhole's layout:
// each script is ~/sieve/NAME.sieve, and the active one is the symbolic link
// at sieve_script (~/.sieve) pointing to it; delivery (deliver.ts) reads
// through that link. Used only with the user's identity (the user's session
// agent as root), so it is plain fs: nothing here crosses to another user.
// Every write is a temporary file renamed into place, so delivery sees the
// old script or the new one, never half of one. A ~/.sieve that is a plain
// file (written by hand) becomes the script "default" before the first
// SETACTIVE replaces it with a link.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import { replaceFile } from '../mailbox/index.ts';
import { scriptPath } from './deliver.ts';

/** Limits HAVESPACE and PUTSCRIPT hold to (RFC 5804 2.3). */
export const MAX_SCRIPT_BYTES = 1 << 20;
export const MAX_SCRIPTS = 100;

export class StoreError extends Error {
  constructor(
    /** The RFC 5804 response code: NONEXISTENT, ACTIVE, ALREADYEXISTS, QUOTA/MAXSIZE, QUOTA/MAXSCRIPTS, or '' */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class ScriptStore {
  readonly dir: string;
  readonly active: string;

  constructor(config: Config, user: User) {
    this.dir = path.join(user.home, 'sieve');
    this.active = scriptPath(config, user) || path.join(user.home, '.sieve');
  }

  /** RFC 5804 1.6: any Unicode but controls; here also no "/" and no leading ".". */
  static validName(name: string): boolean {
    return name.length > 0 && name.length <= 128 && !/[\x00-\x1f\x7f/]/.test(name) && !name.startsWith('.');
  }

  private file(name: string): string {
    if (!ScriptStore.validName(name)) throw new StoreError('', `bad script name "${name.slice(0, 40)}"`);
    return path.join(this.dir, `${name}.sieve`);
  }

  list(): Array<{ name: string; active: boolean }> {
    const active = this.activeName();
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir).filter((f) => f.endsWith('.sieve') && !f.startsWith('.')).map((f) => f.slice(0, -6));
    } catch {
      // no scripts yet
    }
    return names.sort().map((name) => ({ name, active: name === active }));
  }

  /** The active script's name, when ~/.sieve is a link into ~/sieve. */
  activeName(): string | undefined {
    try {
      const target = fs.readlinkSync(this.active);
      const full = path.resolve(path.dirname(this.active), target);
      if (path.dirname(full) !== this.dir || !full.endsWith('.sieve')) return undefined;
      return path.basename(full, '.sieve');
    } catch {
      return undefined;
    }
  }

  get(name: string): string {
    try {
      return fs.readFileSync(this.file(name), 'utf8');
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError('NONEXISTENT', `there is no script "${name}"`);
    }
  }

  haveSpace(name: string, size: number): void {
    if (size > MAX_SCRIPT_BYTES) throw new StoreError('QUOTA/MAXSIZE', `scripts may be at most ${MAX_SCRIPT_BYTES} bytes`);
    const known = this.list();
    if (!known.some((s) => s.name === name) && known.length >= MAX_SCRIPTS) throw new StoreError('QUOTA/MAXSCRIPTS', `at most ${MAX_SCRIPTS} scripts`);
  }

  put(name: string, content: string): void {
    this.haveSpace(name, Buffer.byteLength(content));
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    replaceFile(this.file(name), content, 0o600);
  }

  setActive(name: string): void {
    if (name === '') {
      if (fs.lstatSync(this.active, { throwIfNoEntry: false })?.isSymbolicLink()) fs.unlinkSync(this.active);
      return;
    }
    const file = this.file(name);
    if (!fs.existsSync(file)) throw new StoreError('NONEXISTENT', `there is no script "${name}"`);
    const st = fs.lstatSync(this.active, { throwIfNoEntry: false });
    if (st && !st.isSymbolicLink()) {
      // A hand-written ~/.sieve: kept as the script "default" (or dropped if that name is taken by the same text).
      fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
      const keep = path.join(this.dir, 'default.sieve');
      if (!fs.existsSync(keep)) fs.renameSync(this.active, keep);
    }
    const tmp = `${this.active}.${process.pid}.tmp`;
    fs.rmSync(tmp, { force: true });
    fs.symlinkSync(path.relative(path.dirname(this.active), file), tmp);
    fs.renameSync(tmp, this.active);
  }

  delete(name: string): void {
    if (this.activeName() === name) throw new StoreError('ACTIVE', 'the active script cannot be deleted');
    try {
      fs.unlinkSync(this.file(name));
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError('NONEXISTENT', `there is no script "${name}"`);
    }
  }

  rename(from: string, to: string): void {
    const a = this.file(from);
    const b = this.file(to);
    if (!fs.existsSync(a)) throw new StoreError('NONEXISTENT', `there is no script "${from}"`);
    if (fs.existsSync(b)) throw new StoreError('ALREADYEXISTS', `a script "${to}" exists`);
    const wasActive = this.activeName() === from;
    fs.renameSync(a, b);
    if (wasActive) this.setActive(to);
  }
}
