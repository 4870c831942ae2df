// Test fixtures: a whole mailtk installation inside a temporary directory
// (config, passwd-format user_db, aliases, spool, queue, log), and runners
// for the real binaries with -C pointing at it. Nothing here touches the
// real /etc/mail or /var/spool. Call cleanup() in an after() hook.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BIN = path.join(ROOT, 'bin');
export const IS_ROOT = process.geteuid?.() === 0;

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface Sandbox {
  dir: string;
  conf: string;
  spool: string;
  queue: string;
  log: string;
  aliases: string;
  hostname: string;
  users: Record<string, TestUser>;
  env: NodeJS.ProcessEnv;
  mbox(user: string): string;
  readMbox(user: string): string;
  writeAliases(text: string): void;
  cleanup(): void;
}

let nextUid = 23000 + (process.pid % 1000) * 10;

export function makeSandbox(opts: { users?: string[]; extraConf?: string; hostname?: string } = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-test-'));
  fs.chmodSync(dir, 0o755);
  const hostname = opts.hostname ?? 'mail.test';
  const users: Record<string, TestUser> = {};
  const passwd: string[] = [`root:x:0:0:root:/root:/bin/bash`];
  for (const name of opts.users ?? ['alice', 'bob', 'carol']) {
    const uid = nextUid++;
    const home = path.join(dir, 'home', name);
    fs.mkdirSync(home, { recursive: true });
    if (IS_ROOT) fs.chownSync(home, uid, uid);
    users[name] = { name, uid, gid: uid, home };
    passwd.push(`${name}:x:${uid}:${uid}:${name[0].toUpperCase()}${name.slice(1)} Tester,,,:${home}:/bin/sh`);
  }
  for (const sub of ['etc', 'spool/mail', 'log']) fs.mkdirSync(path.join(dir, sub), { recursive: true });
  if (IS_ROOT) {
    // Debian's /var/mail: 2775 root:mail, so deliveries made as each user can lock (sendmail(8), SECURITY).
    const mail = spawnSync('getent', ['group', 'mail'], { encoding: 'utf8' }).stdout.split(':')[2];
    if (mail) fs.chownSync(path.join(dir, 'spool/mail'), 0, Number(mail));
    fs.chmodSync(path.join(dir, 'spool/mail'), mail ? 0o2775 : 0o1777);
  }
  fs.writeFileSync(path.join(dir, 'etc/passwd'), passwd.join('\n') + '\n');
  const aliases = path.join(dir, 'etc/aliases');
  fs.writeFileSync(aliases, 'postmaster: root\nMAILER-DAEMON: postmaster\n');
  const conf = path.join(dir, 'etc/mailtk.conf');
  fs.writeFileSync(
    conf,
    [
      `# test config`,
      `hostname = ${hostname}`,
      `queue_dir = ${dir}/spool/mqueue`,
      `mail_spool_dir = ${dir}/spool/mail`,
      `alias_file = ${aliases}`,
      `alias_db = ${dir}/etc/aliases.lmdb`,
      `local_host_names_file = ${dir}/etc/local-host-names`,
      `access_file = ${dir}/etc/access`,
      `log_file = ${dir}/log/maillog`,
      `pid_file = ${dir}/mailtk.pid`,
      `user_db = ${dir}/etc/passwd`,
      `queue_lock_stale = 3s`,
      `# No DNS query may leave the machine: a loopback port with no server behind it.`,
      `dns_servers = 127.0.0.1:9`,
      `# Listeners on loopback ports the kernel picks; tests that talk to one set their own.`,
      `smtp_listen = 127.0.0.1:0`,
      `submission_listen =`,
      `pop3_listen = 127.0.0.1:0`,
      `imap_listen = 127.0.0.1:0`,
      `passwd_file = ${dir}/etc/mail-passwd`,
      `tls_cert_file = ${dir}/etc/tls/mailtk.crt`,
      `tls_key_file = ${dir}/etc/tls/mailtk.key`,
      `# A daemon started here listens for POP3 and IMAP on loopback ports the system picks (root defaults: 0.0.0.0:110, :143).`,
      `pop3_listen = 127.0.0.1:0`,
      `imap_listen = 127.0.0.1:0`,
      opts.extraConf ?? '',
    ].join('\n') + '\n',
  );
  const sb: Sandbox = {
    dir,
    conf,
    spool: path.join(dir, 'spool/mail'),
    queue: path.join(dir, 'spool/mqueue'),
    log: path.join(dir, 'log/maillog'),
    aliases,
    hostname,
    users,
    env: { ...process.env, MAILTK_CONFIG: conf, NO_COLOR: '1' },
    mbox: (u) => path.join(dir, 'spool/mail', u),
    readMbox: (u) => {
      try {
        return fs.readFileSync(path.join(dir, 'spool/mail', u), 'utf8');
      } catch {
        return '';
      }
    },
    writeAliases: (text) => {
      fs.writeFileSync(aliases, text);
      const r = run(sb, 'newaliases', []);
      if (r.status !== 0) throw new Error(`newaliases failed: ${r.stderr}`);
    },
    cleanup: () => {
      spawnSync('umount', ['-l', path.join(dir, 'spool/mail')], { stdio: 'ignore' });
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return sb;
}

export interface Result {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run a binary synchronously with the sandbox's config. */
export function run(sb: Sandbox, cmd: string, args: string[], input?: string | Buffer, extraEnv: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(path.join(BIN, cmd), ['-C', sb.conf, ...args], {
    input: input ?? '',
    env: { ...sb.env, ...extraEnv },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Run a binary asynchronously; resolves on exit. */
export function runAsync(sb: Sandbox, cmd: string, args: string[], input?: string | Buffer, opts: { uid?: number; gid?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(BIN, cmd), ['-C', sb.conf, ...args], { env: sb.env, ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/** Split an mbox into its messages (From_ separators after a blank line). */
export function splitMbox(text: string): string[] {
  if (!text) return [];
  const parts = text.split(/\n\n(?=From )/);
  return parts.map((p, i) => (i < parts.length - 1 ? p + '\n' : p));
}

export async function waitFor(check: () => boolean, ms = 15_000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
