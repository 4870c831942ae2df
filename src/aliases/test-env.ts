// Test fixture for the aliases tests: a temporary directory holding a
// mailtk.conf whose every path (alias file and database, passwd-format user
// database, queue, spool, log, local-host-names) lies inside it, so tests
// never touch /etc/mail or /var. Not imported by the program itself.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '../config/index.ts';

// Uids no real account has (an ordinary user running the tests is often uid 1001).
export const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'alice:x:41001:41001:Alice:HOME/alice:/bin/sh',
  'bob:x:41002:41002:Bob:HOME/bob:/bin/sh',
  'carol:x:41003:41003:Carol:HOME/carol:/bin/sh',
  'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin',
];

export interface TestEnv {
  dir: string;
  config: Config;
  /** Writes a file under dir (parents created) and returns its path. */
  write(rel: string, text: string, mode?: number): string;
  logText(): string;
  cleanup(): void;
}

export function makeTestEnv(extraConf = ''): TestEnv {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-aliases-'));
  // Searchable by all, as /home is: users' files below it are read as those users.
  fs.chmodSync(dir, 0o755);
  const home = path.join(dir, 'home');
  for (const u of ['alice', 'bob', 'carol']) fs.mkdirSync(path.join(home, u), { recursive: true });
  fs.writeFileSync(path.join(dir, 'passwd'), `${PASSWD.join('\n').replaceAll('HOME', home)}\n`);
  fs.writeFileSync(path.join(dir, 'local-host-names'), 'example.org\n');
  fs.writeFileSync(path.join(dir, 'aliases'), '');
  const conf = [
    `alias_file = ${dir}/aliases`,
    `alias_db = ${dir}/aliases.cdb`,
    `user_db = ${dir}/passwd`,
    `queue_dir = ${dir}/mqueue`,
    `mail_spool_dir = ${dir}/mail`,
    `log_file = ${dir}/maillog`,
    `local_host_names_file = ${dir}/local-host-names`,
    'hostname = mx.example.org',
    extraConf,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'mailtk.conf'), `${conf}\n`);
  const config = loadConfig({ file: path.join(dir, 'mailtk.conf') });
  return {
    dir,
    config,
    write(rel, text, mode) {
      const p = path.join(dir, rel);
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, text);
      if (mode !== undefined) fs.chmodSync(p, mode);
      return p;
    },
    logText() {
      try {
        return fs.readFileSync(config.logFile, 'utf8');
      } catch {
        return '';
      }
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
