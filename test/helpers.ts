// Test fixtures: a whole mailtk installation inside a temporary directory
// (config, passwd-format user_db, aliases, spool, queue, log), and runners
// for the real binaries with -C pointing at it. Nothing here touches the
// real /etc/mail or /var/spool. Call cleanup() in an after() hook.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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
      `# No DNS query may leave the machine: a loopback port with no server behind it.`,
      `dns_servers = 127.0.0.1:9`,
      `# Listeners on loopback ports the kernel picks; tests that talk to one set their own.`,
      `smtp_listen = 127.0.0.1:0`,
      `submission_listen =`,
      `pop3_listen = 127.0.0.1:0`,
      `imap_listen = 127.0.0.1:0`,
      `passwd_file = ${dir}/etc/mail-passwd`,
      `# Every other file a root mailtk would look for under /etc/mail or /var/spool: here, never the real ones.`,
      `transport_map = ${dir}/etc/mailertable`,
      `apop_secrets_file = ${dir}/etc/apop-secrets`,
      `virtual_domains_file = ${dir}/etc/virtual-domains`,
      `virtual_users_file = ${dir}/etc/virtual-users`,
      `virtual_alias_file = ${dir}/etc/virtusertable`,
      `quota_file = ${dir}/etc/quotas`,
      `domain_admins_file = ${dir}/etc/domain-admins`,
      `welcome_message_file = ${dir}/etc/welcome-message`,
      `list_dir = ${dir}/spool/lists`,
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

let openCopy: string | undefined;

/**
 * The bin/ a process running as `uid` can run: the checkout's, unless the
 * checkout is closed to other users (a clone under /root, 0700), when it is a
 * copy of bin/ and dist/ readable by all, made once per test process, as the
 * daemon makes one for its own children (src/daemon/code-dir.ts).
 */
export function binFor(uid?: number): string {
  if (uid === undefined || uid === process.geteuid?.()) return BIN;
  let closed = false;
  for (let d = ROOT; d !== path.dirname(d); d = path.dirname(d)) if ((fs.statSync(d).mode & 0o001) === 0) closed = true;
  if (!closed) return BIN;
  if (!openCopy) {
    const to = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-testbin-'));
    fs.chmodSync(to, 0o755);
    for (const sub of ['bin', 'dist']) fs.cpSync(path.join(ROOT, sub), path.join(to, sub), { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(to, 'package.json'));
    spawnSync('chmod', ['-R', 'a+rX', to]);
    process.once('exit', () => fs.rmSync(to, { recursive: true, force: true }));
    openCopy = to;
  }
  return path.join(openCopy, 'bin');
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

/** Give `user` this POP3/IMAP password through the real mailpasswd (the test fails when it cannot). */
export function setMailPassword(sb: Sandbox, user: string, password: string): void {
  const r = run(sb, 'mailpasswd', [user], `${password}\n`);
  assert.equal(r.status, 0, `mailpasswd ${user}: ${r.stderr}`);
}

/** Run a binary asynchronously; resolves on exit. */
export function runAsync(sb: Sandbox, cmd: string, args: string[], input?: string | Buffer, opts: { uid?: number; gid?: number } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(binFor(opts.uid), cmd), ['-C', sb.conf, ...args], { env: sb.env, ...opts });
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

// ------------------------------------------------- root-only: real accounts, the daemon's processes

/**
 * Real system accounts (useradd) for tests of the identities a root mailtk
 * takes: each gets a home under the sandbox (0755, its own) and a line in the
 * sandbox's user_db with its real uid and gid. Names are unique per test
 * process; call removeSystemUsers() in an after() hook, even after a failure.
 */
export function addSystemUsers(sb: Sandbox, tags: string[]): TestUser[] {
  const out: TestUser[] = [];
  for (const tag of tags) {
    const name = `psv${process.pid}${tag}`.toLowerCase();
    const home = path.join(sb.dir, 'home', name);
    fs.mkdirSync(home, { recursive: true });
    let r = spawnSync('useradd', ['--user-group', '--no-create-home', '--home-dir', home, '--shell', '/bin/sh', name], { encoding: 'utf8' });
    // useradd may find /etc/passwd locked by a concurrent useradd: try again a few times.
    for (let i = 0; i < 20 && r.status === 1 && /lock/i.test(r.stderr); i++) {
      spawnSync('sleep', ['0.2']);
      r = spawnSync('useradd', ['--user-group', '--no-create-home', '--home-dir', home, '--shell', '/bin/sh', name], { encoding: 'utf8' });
    }
    if (r.status !== 0) throw new Error(`useradd ${name}: ${r.stderr}`);
    createdAccounts.add(name);
    const [uid, gid] = spawnSync('getent', ['passwd', name], { encoding: 'utf8' }).stdout.split(':').slice(2, 4).map(Number);
    fs.chownSync(home, uid, gid);
    fs.chmodSync(home, 0o755);
    fs.appendFileSync(path.join(sb.dir, 'etc/passwd'), `${name}:x:${uid}:${gid}:${tag} Tester,,,:${home}:/bin/sh\n`);
    const u = { name, uid, gid, home };
    sb.users[tag] = u;
    out.push(u);
  }
  return out;
}

const createdAccounts = new Set<string>();

/** userdel every account addSystemUsers() made in this process (their homes go with the sandbox). */
export function removeSystemUsers(): string[] {
  const failed: string[] = [];
  for (const name of createdAccounts) {
    let r = spawnSync('userdel', [name], { encoding: 'utf8' });
    for (let i = 0; i < 20 && r.status !== 0 && r.status !== 6 && /lock|in use/i.test(r.stderr); i++) {
      spawnSync('sleep', ['0.2']);
      r = spawnSync('userdel', [name], { encoding: 'utf8' });
    }
    if (r.status === 0 || r.status === 6) createdAccounts.delete(name);
    else failed.push(`${name}: ${r.stderr.trim()}`);
  }
  return failed;
}

/** One process as /proc shows it: ids are [real, effective, saved, filesystem]. */
export interface ProcIdentity {
  pid: number;
  ppid: number;
  comm: string;
  argv: string[];
  env: Record<string, string>;
  uid: number[];
  gid: number[];
  groups: number[];
}

export function readProcess(pid: number): ProcIdentity | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (k: string) => (new RegExp(`^${k}:[ \\t]*(.*)$`, 'm').exec(status)?.[1] ?? '').trim().split(/\s+/).filter(Boolean).map(Number);
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const env: Record<string, string> = {};
    for (const kv of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
      const eq = kv.indexOf('=');
      if (eq > 0) env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    return { pid, ppid, comm, argv, env, uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
  } catch {
    return undefined; // gone meanwhile
  }
}

/** A process and all its descendants, found through the ppid field of /proc/PID/stat. */
export function processTree(root: number): ProcIdentity[] {
  const all: ProcIdentity[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const p = readProcess(Number(e));
    if (p) all.push(p);
  }
  const out: ProcIdentity[] = [];
  const want = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (!out.includes(p) && (p.pid === root || want.has(p.ppid))) {
        out.push(p);
        want.add(p.pid);
        grew = true;
      }
    }
  }
  return out;
}

export interface RunningDaemon {
  child: ChildProcess;
  /** Listener ports by kind (smtp, pop3, imap, ...), from the log. */
  ports: Record<string, number>;
  stderr(): string;
  /** SIGTERM, wait (at most timeoutMs), then SIGKILL whatever of its tree is left; resolves to its exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

/** `sendmail -C conf ARGS` (default -bD -q1h) until it logs its listeners. */
export async function startDaemon(sb: Sandbox, args = ['-bD', '-q1h'], kinds = ['smtp', 'pop3', 'imap']): Promise<RunningDaemon> {
  const logAt = fs.existsSync(sb.log) ? fs.statSync(sb.log).size : 0;
  const child = spawn(path.join(BIN, 'sendmail'), ['-C', sb.conf, ...args], { env: sb.env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  const ports: Record<string, number> = {};
  const readPorts = () => {
    const text = fs.existsSync(sb.log) ? fs.readFileSync(sb.log, 'utf8').slice(logAt) : '';
    for (const m of text.matchAll(/(\w+) listener on 127\.0\.0\.1:(\d+)/g)) ports[m[1]] = Number(m[2]);
    return kinds.every((k) => ports[k] > 0);
  };
  try {
    await waitFor(() => readPorts() || child.exitCode !== null, 20_000, 'the daemon to listen');
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  if (child.exitCode !== null) throw new Error(`the daemon exited ${child.exitCode}: ${err}`);
  return {
    child,
    ports,
    stderr: () => err,
    async stop(timeoutMs = 15_000) {
      const alive = () => child.exitCode === null && child.signalCode === null;
      // Its descendants, by pid and command line (so that a pid used again meanwhile is left alone).
      const tree = alive() ? processTree(child.pid!).filter((p) => p.pid !== child.pid) : [];
      if (alive()) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
        clearTimeout(timer);
        if (alive()) child.kill('SIGKILL');
      }
      for (const p of tree) {
        const now = readProcess(p.pid);
        if (now && now.argv.join(' ') === p.argv.join(' ')) {
          try {
            process.kill(p.pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
      return child.exitCode;
    },
  };
}
