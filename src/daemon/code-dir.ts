// Where the processes that give up root load mailtk's code from. They run as
// mail_owner or as a user, so the code must be readable by them: a checkout
// under a private directory (/root/src/mailtk, 0700) is not. Then the bundle
// (dist/ is self-contained) and the launcher are copied once per master into
// a fresh root-owned directory that everyone may read and no one else may
// write, and removed when the master exits.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let chosen: string | undefined;

/** The directory holding bin/ and dist/ for children with other identities. */
export function codeDir(): string {
  if (chosen) return chosen;
  const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  chosen = readableByAll(path.join(here, 'dist')) ? here : copyOut(here);
  return chosen;
}

function readableByAll(dir: string): boolean {
  try {
    for (let d = dir; ; d = path.dirname(d)) {
      if ((fs.statSync(d).mode & 0o005) !== 0o005) return false;
      if (d === path.dirname(d)) break;
    }
    return fs.readdirSync(dir).every((f) => (fs.statSync(path.join(dir, f)).mode & 0o004) !== 0);
  } catch {
    return false;
  }
}

export function copyOut(from: string): string {
  const to = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-code-'));
  fs.chmodSync(to, 0o755);
  for (const sub of ['dist', 'bin']) {
    fs.mkdirSync(path.join(to, sub));
    // Modes set, not asked of mkdir: a caller's umask (mutt runs $sendmail under 077) would leave
    // the folder 0700, and every child that gave root up failed to load its code.
    fs.chmodSync(path.join(to, sub), 0o755);
    for (const f of fs.readdirSync(path.join(from, sub))) {
      const src = path.join(from, sub, f);
      if (!fs.statSync(src).isFile()) continue;
      fs.copyFileSync(src, path.join(to, sub, f));
      fs.chmodSync(path.join(to, sub, f), sub === 'bin' ? 0o755 : 0o644);
    }
  }
  process.once('exit', () => fs.rmSync(to, { recursive: true, force: true }));
  return to;
}
