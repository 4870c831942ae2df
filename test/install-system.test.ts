// The system install (npm run install-system = scripts/install-system.sh),
// never on this machine itself: in scratch roots laid out as Debian lays them
// out (DESTDIR; dpkg-divert, update-alternatives and useradd work in them with
// --root), and once on the machine's own paths under overlays in a private
// mount namespace (unshare -m), whose writes land in a temporary directory.
// Checked: the copy in /usr/lib/mailtk (root's, 0755/0644, no link into the
// checkout) and that it runs; the diversions and the mailx alternative; the
// account, queue, spool, configuration and aliases; the unit (systemd-analyze
// verify) and the logrotate file (logrotate); a second install changing
// nothing; --uninstall putting back all but what it keeps on purpose; the
// refusal when another program holds the SMTP port.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { IS_ROOT, makeSandbox, ROOT } from './helpers.ts';

const LIB = '/usr/lib/mailtk';
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = !IS_ROOT
  ? 'needs root (useradd, chown, dpkg-divert)'
  : !fs.existsSync(path.join(ROOT, 'dist/sendmail.js'))
    ? 'no dist/: run npm run build first'
    : !has('dpkg-divert') || !has('update-alternatives')
      ? 'not Debian: no dpkg-divert or update-alternatives'
      : false;

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-install-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

/**
 * The checkout installed from: a copy of this one's built files, so that a
 * build others start meanwhile (dist/ is swapped whole) changes nothing under
 * test. Copied again until it equals dist/ as it is after the copy.
 */
function checkoutCopy(): string {
  const to = path.join(scratch, 'checkout');
  for (let tries = 0; ; tries++) {
    fs.rmSync(to, { recursive: true, force: true });
    try {
      for (const d of ['bin', 'dist', 'man', 'packaging', 'scripts']) fs.cpSync(path.join(ROOT, d), path.join(to, d), { recursive: true });
      fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(to, 'package.json'));
      fs.mkdirSync(path.join(to, 'src'));
      if (spawnSync('diff', ['-r', '-q', path.join(ROOT, 'dist'), path.join(to, 'dist')]).status === 0) return to;
    } catch (e) {
      if (tries >= 5) throw e;
    }
    if (tries >= 5) throw new Error('dist/ keeps changing: cannot copy it whole');
  }
}
const CHECKOUT = skip ? ROOT : checkoutCopy();
const SCRIPT = path.join(CHECKOUT, 'scripts/install-system.sh');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, input?: string): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...env }, input });
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  assert.equal(r.status, 0, `${what}: status ${r.status}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** The install script with DESTDIR=root. */
function install(root: string, ...args: string[]): SpawnSyncReturns<string> {
  return run('bash', [SCRIPT, ...args], { DESTDIR: root });
}

const ua = (root: string, ...args: string[]) => run('update-alternatives', ['--root', root, ...args]);
const divert = (root: string, ...args: string[]) => run('dpkg-divert', ['--root', root, ...args]);

/**
 * A root as Debian 12 has it with Postfix and bsd-mailx installed: merged
 * /usr, the accounts files, Postfix's sendmail with its mailq, newaliases and
 * /usr/lib/sendmail links, bsd-mailx as the mailx alternative (in manual mode
 * when asked), one unrelated diversion, /etc/aliases with postmaster, /var/mail
 * 2775 root:mail and /var/spool/mail a link to it, kill(1), and systemd's
 * units (for systemd-analyze verify --root).
 */
function debianRoot(name: string, opts: { mta?: boolean; mailx?: 'auto' | 'manual' | false } = {}): string {
  const r = path.join(scratch, name);
  const at = (p: string) => path.join(r, p);
  for (const d of ['usr/bin', 'usr/sbin', 'usr/lib', 'etc/alternatives', 'etc/systemd/system', 'etc/logrotate.d', 'var/lib/dpkg/alternatives', 'var/log', 'var/mail', 'var/spool', 'usr/local/share/man', 'usr/share/man/man1']) {
    fs.mkdirSync(at(d), { recursive: true });
  }
  for (const d of ['bin', 'sbin', 'lib']) fs.symlinkSync(`usr/${d}`, at(d));
  fs.writeFileSync(at('etc/passwd'), 'root:x:0:0:root:/root:/bin/bash\n');
  fs.writeFileSync(at('etc/group'), 'root:x:0:\nadm:x:4:\nmail:x:8:\n');
  fs.writeFileSync(at('etc/shadow'), 'root:*:19000:0:99999:7:::\n', { mode: 0o640 });
  fs.writeFileSync(at('etc/gshadow'), 'root:*::\nadm:*::\nmail:*::\n', { mode: 0o640 });
  if (fs.existsSync('/usr/sbin/nologin')) fs.copyFileSync('/usr/sbin/nologin', at('usr/sbin/nologin'));
  for (const k of ['/usr/bin/kill', '/bin/kill']) {
    if (fs.existsSync(k)) {
      fs.copyFileSync(k, at('usr/bin/kill'));
      break;
    }
  }
  if (opts.mta !== false) {
    fs.writeFileSync(at('usr/sbin/sendmail'), '#!/bin/sh\necho "Postfix\'s sendmail"\n', { mode: 0o755 });
    for (const l of ['usr/bin/mailq', 'usr/bin/newaliases', 'usr/lib/sendmail']) fs.symlinkSync('../sbin/sendmail', at(l));
  }
  if (opts.mailx !== false) {
    fs.writeFileSync(at('usr/bin/bsd-mailx'), '#!/bin/sh\necho bsd-mailx\n', { mode: 0o755 });
    fs.writeFileSync(at('usr/share/man/man1/bsd-mailx.1.gz'), 'man page\n');
    const man = '/usr/share/man/man1/bsd-mailx.1.gz';
    ok(ua(r, '--install', '/usr/bin/mailx', 'mailx', '/usr/bin/bsd-mailx', '50', '--slave', '/usr/bin/mail', 'mail', '/usr/bin/bsd-mailx', '--slave', '/usr/bin/Mail', 'Mail', '/usr/bin/bsd-mailx', '--slave', '/usr/share/man/man1/mail.1.gz', 'mail.1.gz', man, '--slave', '/usr/share/man/man1/mailx.1.gz', 'mailx.1.gz', man, '--slave', '/usr/share/man/man1/Mail.1.gz', 'Mail.1.gz', man), 'update-alternatives --install bsd-mailx');
    if (opts.mailx === 'manual') ok(ua(r, '--set', 'mailx', '/usr/bin/bsd-mailx'), 'update-alternatives --set');
  }
  ok(divert(r, '--local', '--no-rename', '--add', '/usr/bin/unrelated'), 'dpkg-divert unrelated');
  fs.writeFileSync(at('etc/aliases'), '# See man 5 aliases for format\npostmaster:    root\n');
  fs.chownSync(at('var/mail'), 0, 8);
  fs.chmodSync(at('var/mail'), 0o2775);
  fs.symlinkSync('../mail', at('var/spool/mail'));
  if (fs.existsSync('/usr/lib/systemd/system')) {
    fs.mkdirSync(at('usr/lib/systemd'), { recursive: true });
    fs.cpSync('/usr/lib/systemd/system', at('usr/lib/systemd/system'), { recursive: true, verbatimSymlinks: true });
  }
  return r;
}

/** Every entry under root: type, mode, owner, and content digest or link target; with times when asked. */
function listing(root: string, times = false): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const p = path.join(root, rel);
    const st = fs.lstatSync(p);
    let what: string;
    if (st.isSymbolicLink()) what = `l -> ${fs.readlinkSync(p)}`;
    else if (st.isDirectory()) what = 'd';
    else what = `f ${crypto.createHash('sha1').update(fs.readFileSync(p)).digest('hex')}`;
    const time = times ? ` m${st.mtimeMs} c${st.ctimeMs}` : '';
    out.set(rel || '.', `${what} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}${time}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(rel, e));
  };
  walk('');
  return out;
}

function changes(a: Map<string, string>, b: Map<string, string>): string[] {
  const keys = new Set([...a.keys(), ...b.keys()]);
  return [...keys].filter((k) => a.get(k) !== b.get(k)).sort();
}

/** Why overlays in a private mount namespace cannot be made here, or '' when they can. */
function noOverlays(): string {
  if (!has('unshare')) return 'no unshare';
  const d = fs.mkdtempSync(path.join(scratch, 'probe-'));
  for (const s of ['a', 'b', 'up', 'work', 'to']) fs.mkdirSync(path.join(d, s));
  const r = run('unshare', ['-m', 'sh', '-c', `mount --make-rprivate / && mount -t overlay overlay -o lowerdir=${d}/a:${d}/b,upperdir=${d}/up,workdir=${d}/work ${d}/to`]);
  return r.status === 0 ? '' : `no overlay mounts in a private namespace: ${r.stderr.trim()}`;
}

function passwdEntry(root: string, name: string): string[] | undefined {
  return fs
    .readFileSync(path.join(root, 'etc/passwd'), 'utf8')
    .split('\n')
    .map((l) => l.split(':'))
    .find((f) => f[0] === name);
}

/** The host's own state the scratch installs must not touch. */
function hostState(): string {
  return [
    run('dpkg-divert', ['--list']).stdout.split('\n').sort().join('\n'),
    run('update-alternatives', ['--query', 'mailx']).stdout,
    String(fs.existsSync(LIB)),
    ...['/usr/sbin/sendmail', '/usr/bin/mailq', '/usr/bin/newaliases', '/usr/lib/sendmail', '/etc/systemd/system/mailtk.service', '/etc/logrotate.d/mailtk'].map((p) => {
      try {
        const st = fs.lstatSync(p);
        return `${p} ${st.ino} ${st.mtimeMs} ${st.isSymbolicLink() ? fs.readlinkSync(p) : ''}`;
      } catch {
        return `${p} absent`;
      }
    }),
  ].join('\n');
}

// ---------------------------------------------------------------------------
// One Debian root through install, second install, checks, uninstall.

const host = skip ? '' : hostState();
let root = '';
let before = new Map<string, string>();

test('install-system into a Debian root: the copy, the commands, the account, the spool, the unit', { skip }, () => {
  root = debianRoot('debian', { mailx: 'manual' });
  before = listing(root);
  const out = ok(install(root, '--no-service', '--no-build'), 'install');
  assert.match(out, /mailtk installed in \/usr\/lib\/mailtk/);
  const at = (p: string) => path.join(root, p);

  // The copy: root's, 0755 directories, 0644 files, 0755 commands; nothing links into the checkout.
  const lib = at(LIB);
  for (const [rel, entry] of listing(lib)) {
    const [type] = entry.split(' ');
    const st = fs.lstatSync(path.join(lib, rel));
    assert.equal(`${st.uid}:${st.gid}`, '0:0', `${rel} is root's`);
    assert.notEqual(type, 'l', `${rel}: no symbolic link in ${LIB}`);
    const exec = /^(bin|launch)\//.test(rel) || rel === 'scripts/install-system.sh';
    assert.equal(st.mode & 0o7777, st.isDirectory() || exec ? 0o755 : 0o644, `${rel} mode ${(st.mode & 0o7777).toString(8)}`);
    if (st.isFile()) {
      const text = fs.readFileSync(path.join(lib, rel), 'utf8');
      assert.ok(!text.includes(`${CHECKOUT}/`) && !text.includes(`${ROOT}/`), `${rel} names the checkout`);
    }
  }
  assert.ok(!fs.existsSync(path.join(lib, 'node_modules')), 'the bundle needs no node_modules');
  assert.equal(JSON.parse(fs.readFileSync(path.join(lib, 'package.json'), 'utf8')).type, 'module');
  assert.equal(spawnSync('diff', ['-r', '-q', path.join(CHECKOUT, 'dist'), path.join(lib, 'dist')]).status, 0, 'dist/ copied whole');
  for (const c of ['sendmail', 'mailq', 'newaliases', 'mail', 'mailpasswd', 'mailtk', 'vacation']) {
    assert.equal(fs.readFileSync(path.join(lib, 'bin', c), 'utf8'), fs.readFileSync(path.join(CHECKOUT, 'bin', c), 'utf8'));
    const launcher = fs.readFileSync(path.join(lib, 'launch', c), 'utf8');
    assert.match(launcher, new RegExp(`exec "\\$node" \\$MAILTK_NODE_FLAGS ${LIB}/bin/${c} "\\$@"`));
    ok(run('sh', ['-n', path.join(lib, 'launch', c)]), `sh -n launch/${c}`);
  }

  // Diverted, Postfix's files kept as *.distrib, the names linked to the launchers.
  const diversions = divert(root, '--list').stdout;
  for (const p of ['/usr/sbin/sendmail', '/usr/lib/sendmail', '/usr/bin/mailq', '/usr/bin/newaliases']) {
    assert.ok(diversions.includes(`local diversion of ${p} to ${p}.distrib`), `${p} diverted:\n${diversions}`);
    assert.equal(fs.readlinkSync(at(p)), `${LIB}/launch/${path.basename(p)}`);
  }
  assert.ok(diversions.includes('local diversion of /usr/bin/unrelated'), 'the other diversion stays');
  assert.match(fs.readFileSync(at('/usr/sbin/sendmail.distrib'), 'utf8'), /Postfix's sendmail/);
  assert.equal(fs.readlinkSync(at('/usr/bin/mailq.distrib')), '../sbin/sendmail');
  assert.ok(!fs.existsSync(at('/usr/sbin/newaliases')), 'no /usr/sbin/newaliases made where Debian has none');
  for (const p of ['/usr/sbin/mailpasswd', '/usr/sbin/mailtk', '/usr/bin/vacation']) assert.equal(fs.readlinkSync(at(p)), `${LIB}/launch/${path.basename(p)}`);

  // mail: the mailx alternative, chosen, with its slaves.
  const q = ok(ua(root, '--query', 'mailx'), 'query mailx');
  assert.match(q, new RegExp(`^Value: ${LIB}/launch/mail$`, 'm'));
  assert.match(q, new RegExp(`^Alternative: ${LIB}/launch/mail\nPriority: 60\nSlaves:\n`, 'm'));
  for (const l of ['/usr/bin/mailx', '/usr/bin/mail', '/usr/bin/Mail']) {
    assert.equal(fs.readlinkSync(at(l)), `/etc/alternatives/${path.basename(l)}`);
    assert.equal(fs.readlinkSync(at(`/etc/alternatives/${path.basename(l)}`)), `${LIB}/launch/mail`);
  }
  assert.equal(fs.readlinkSync(at('/etc/alternatives/mail.1.gz')), `${LIB}/share/man/man1/mail.1.gz`);

  // The account, as the daemon would make it; the queue its, the spool root:mail.
  const acct = passwdEntry(root, 'mailtk');
  assert.ok(acct, 'mailtk in etc/passwd');
  assert.equal(acct[6], '/usr/sbin/nologin');
  assert.equal(acct[5], '/nonexistent');
  assert.ok(Number(acct[2]) < 1000, 'a system account');
  assert.match(fs.readFileSync(at('etc/group'), 'utf8'), new RegExp(`^mailtk:x:${acct[3]}:`, 'm'));
  const mode = (p: string) => {
    const st = fs.statSync(at(p));
    return `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
  };
  assert.equal(mode('var/spool/mqueue'), `711 ${acct[2]}:${acct[3]}`);
  assert.equal(mode('var/spool/mqueue/maildrop'), `1733 ${acct[2]}:${acct[3]}`);
  assert.equal(mode('var/spool/mail'), '2775 0:8');
  assert.equal(fs.readlinkSync(at('var/spool/mail')), '../mail', "Debian's link stays");

  // Configuration: Debian's /etc/aliases, with the three required aliases, compiled.
  assert.match(fs.readFileSync(at('etc/mail/mailtk.conf'), 'utf8'), /^alias_file = \/etc\/aliases$/m);
  const aliases = fs.readFileSync(at('etc/aliases'), 'utf8');
  assert.equal(aliases.match(/^postmaster:/gim)?.length, 1, 'postmaster was there');
  assert.match(aliases, /^MAILER-DAEMON: root$/m);
  assert.match(aliases, /^abuse: root$/m);
  assert.ok(aliases.startsWith('# See man 5 aliases for format\npostmaster:    root\n'), 'the old lines untouched');
  assert.ok(fs.statSync(at('etc/mail/aliases.cdb')).size > 0, 'newaliases ran');
  assert.ok(!fs.existsSync(at('etc/mail/aliases')), 'no second aliases file');

  // The unit and the logrotate file.
  const unit = fs.readFileSync(at('etc/systemd/system/mailtk.service'), 'utf8');
  assert.match(unit, new RegExp(`^ExecStart=${LIB}/launch/sendmail -bD -q20m$`, 'm'));
  assert.match(unit, /^ExecReload=\/usr\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unit, /^Conflicts=postfix\.service exim4\.service sendmail\.service opensmtpd\.service$/m);
  assert.match(unit, /^ProtectSystem=full$/m);
  assert.match(unit, /^PrivateTmp=yes$/m);
  assert.match(unit, /^ReadWritePaths=-\/etc\/mail$/m);
  assert.doesNotMatch(unit, /^NoNewPrivileges=/m, 'agents run the setgid dotlockfile');
  assert.doesNotMatch(unit, /@[A-Z]+@/);
  const rotate = fs.readFileSync(at('etc/logrotate.d/mailtk'), 'utf8');
  assert.match(rotate, /^\/var\/log\/maillog \{$/m);
  assert.match(rotate, /^\tcreate 0640 root adm$/m, "moved away and made anew: SIGHUP reopens it");
  assert.doesNotMatch(rotate, /copytruncate/);
  assert.match(rotate, /cat \/run\/mailtk\.pid .*kill -HUP "\$pid"/);
  for (const [sec, page] of [['8', 'sendmail.8'], ['1', 'mailq.1'], ['1', 'newaliases.1'], ['5', 'aliases.5'], ['5', 'mailtk.conf.5'], ['8', 'mailpasswd.8'], ['8', 'mailtk.8'], ['1', 'vacation.1']]) {
    assert.ok(fs.existsSync(at(`usr/local/share/man/man${sec}/${page}`)), page);
  }
  assert.equal(hostState(), host, "the machine's own diversions, alternatives and files are untouched");
});

test('the unit passes systemd-analyze verify', { skip: skip || (!has('systemd-analyze') && 'no systemd-analyze') || (!fs.existsSync('/usr/lib/systemd/system') && 'no systemd units to verify against') }, () => {
  // --root: the unit's programs and systemd's units as installed; its man pages found with MANPATH.
  const r = run('systemd-analyze', ['verify', `--root=${root}`, '/etc/systemd/system/mailtk.service'], { MANPATH: path.join(root, 'usr/local/share/man') });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'no warnings');
});

test('the installed commands run from /usr/lib/mailtk, the checkout nowhere involved', { skip }, (t) => {
  const why = noOverlays();
  if (why) return t.skip(why);
  // The root's /usr/lib and /etc/alternatives over the machine's, in a mount namespace of this test only.
  const sb = makeSandbox({ users: ['alice'] });
  try {
    const script = [
      'set -e',
      'mount --make-rprivate /',
      `mount -t overlay overlay -o lowerdir=${root}/usr/lib:/usr/lib /usr/lib`,
      `mount -t overlay overlay -o lowerdir=${root}/etc/alternatives:/etc/alternatives /etc/alternatives`,
      `printf 'Subject: installed\\n\\nfrom the copy\\n' | ${root}/usr/sbin/sendmail -C ${sb.conf} -odi -i alice`,
      `${root}/usr/bin/mailq -C ${sb.conf}`,
      `MAILTK_CONFIG=${sb.conf} ${root}/usr/bin/mail -H -f ${sb.mbox('alice')}`,
    ].join('\n');
    // A PATH without the checkout's node_modules/.bin: the launchers find node in /usr/bin or /usr/local/bin.
    const r = run('unshare', ['-m', 'sh', '-c', script], { PATH: '/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/bin' });
    const out = ok(r, 'the installed commands');
    assert.match(out, /is empty/);
    assert.match(out, /installed/);
    assert.match(sb.readMbox('alice'), /^Subject: installed$/m);
    assert.match(sb.readMbox('alice'), /from the copy/);
  } finally {
    sb.cleanup();
  }
});

test('a second install changes nothing', { skip }, () => {
  const was = listing(root, true);
  const out = ok(install(root, '--no-service', '--no-build'), 'second install');
  assert.match(out, /up to date: nothing changed/);
  assert.deepEqual(changes(was, listing(root, true)), []);
});

test('logrotate rotates the log and sends SIGHUP to the daemon of the pid file', { skip: skip || (!has('logrotate') && 'no logrotate') }, async () => {
  // The installed file with the log and the pid file moved into the scratch directory.
  const dir = fs.mkdtempSync(path.join(scratch, 'logrotate-'));
  const log = path.join(dir, 'maillog');
  const pidFile = path.join(dir, 'mailtk.pid');
  fs.writeFileSync(log, 'a line\n');
  const conf = fs.readFileSync(path.join(root, 'etc/logrotate.d/mailtk'), 'utf8').replaceAll('/var/log/maillog', log).replaceAll('/run/mailtk.pid', pidFile);
  fs.writeFileSync(path.join(dir, 'conf'), conf);
  // A stand-in daemon: its command line names mailtk, as the real one's does.
  const daemon = spawn(process.execPath, ['-e', "process.on('SIGHUP', () => { console.log('HUP'); process.exit(0); }); console.log('up'); setInterval(() => {}, 1000);", 'mailtk'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let said = '';
  daemon.stdout.on('data', (b) => (said += b));
  while (!said.includes('up')) await new Promise((r) => setTimeout(r, 20));
  fs.writeFileSync(pidFile, `${daemon.pid}\n`);
  const exited = new Promise((r) => daemon.once('exit', r));
  ok(run('logrotate', ['-f', '-s', path.join(dir, 'state'), path.join(dir, 'conf')]), 'logrotate');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (daemon.exitCode === null) daemon.kill();
  assert.match(said, /HUP/, 'the daemon got SIGHUP');
  assert.equal(fs.readFileSync(path.join(dir, 'maillog.1'), 'utf8'), 'a line\n');
  assert.equal(fs.statSync(log).size, 0, 'the same file, truncated');
});

test('--uninstall puts the root back, keeping configuration, aliases, queue, log and account', { skip }, () => {
  const out = ok(install(root, '--uninstall', '--no-service'), 'uninstall');
  assert.match(out, /kept: .*\/etc\/mail.*\/etc\/aliases.*\/var\/spool\/mqueue.*\/var\/log\/maillog.*account mailtk/);
  const now = listing(root);
  // Kept on purpose: the configuration and alias database, the aliases added, the queue, the log,
  // the account (with useradd's backups and lock). The tools' own logs and backups change too.
  const kept = /^(etc\/mail(\/.*)?|etc\/aliases|var\/spool\/mqueue(\/.*)?|var\/log\/maillog|etc\/(passwd|group|shadow|gshadow)-?|etc\/\.pwd\.lock|var\/log\/alternatives\.log|var\/lib\/dpkg\/diversions-old)$/;
  const diff = changes(before, now);
  assert.deepEqual(diff.filter((p) => !kept.test(p)), [], 'all else as before the install');
  for (const p of ['etc/mail/mailtk.conf', 'etc/mail/aliases.cdb', 'var/spool/mqueue/maildrop', 'var/log/maillog']) assert.ok(now.has(p), `${p} kept`);
  assert.ok(passwdEntry(root, 'mailtk'), 'the account kept');
  assert.match(fs.readFileSync(path.join(root, 'etc/aliases'), 'utf8'), /^abuse: root$/m);
  // bsd-mailx chosen by hand again, as before; Postfix's files back.
  assert.match(ua(root, '--query', 'mailx').stdout, /^Status: manual\nBest: .*\nValue: \/usr\/bin\/bsd-mailx$/m);
  assert.match(fs.readFileSync(path.join(root, 'usr/sbin/sendmail'), 'utf8'), /Postfix's sendmail/);
  assert.doesNotMatch(divert(root, '--list').stdout, /sendmail|mailq|newaliases/);
  // Once more: nothing to do.
  assert.match(ok(install(root, '--uninstall', '--no-service'), 'second uninstall'), /not installed/);
  assert.deepEqual(changes(now, listing(root)), []);
  assert.equal(hostState(), host);
});

test('a root with no MTA and no mailx, and the links of the install-system of old', { skip }, () => {
  const r = debianRoot('bare', { mta: false, mailx: false });
  fs.rmSync(path.join(r, 'etc/aliases'));
  // The old script linked the names to the checkout's bin/.
  fs.symlinkSync(path.join(CHECKOUT, 'bin/sendmail'), path.join(r, 'usr/sbin/sendmail'));
  fs.symlinkSync(path.join(CHECKOUT, 'bin/mail'), path.join(r, 'usr/bin/mail'));
  const was = listing(r);
  const out = ok(install(r, '--no-service', '--no-build'), 'install');
  assert.match(out, /linked to a mailtk checkout/);
  assert.equal(fs.readlinkSync(path.join(r, 'usr/sbin/sendmail')), `${LIB}/launch/sendmail`);
  assert.equal(fs.readlinkSync(path.join(r, 'usr/bin/mail')), '/etc/alternatives/mail');
  assert.match(ua(r, '--query', 'mailx').stdout, /^Status: auto$/m);
  // No /etc/aliases: /etc/mail/aliases, made with the three aliases.
  assert.doesNotMatch(fs.readFileSync(path.join(r, 'etc/mail/mailtk.conf'), 'utf8'), /alias_file/);
  assert.match(fs.readFileSync(path.join(r, 'etc/mail/aliases'), 'utf8'), /^postmaster: root\nMAILER-DAEMON: root\nabuse: root$/m);
  ok(install(r, '--uninstall', '--no-service'), 'uninstall');
  // The checkout links are not brought back; no mailx alternative is left.
  assert.ok(!fs.existsSync(path.join(r, 'usr/sbin/sendmail')) && !fs.existsSync(path.join(r, 'usr/bin/mail')));
  assert.notEqual(ua(r, '--query', 'mailx').status, 0);
  const kept = /^(etc\/mail(\/.*)?|var\/spool\/mqueue(\/.*)?|var\/log\/maillog|etc\/(passwd|group|shadow|gshadow)-?|etc\/\.pwd\.lock|var\/log\/alternatives\.log|var\/lib\/dpkg\/diversions-old|usr\/sbin\/sendmail|usr\/bin\/mail)$/;
  assert.deepEqual(changes(was, listing(r)).filter((p) => !kept.test(p)), []);
});

test('an empty DESTDIR: no account (no etc/passwd), the rest made, then taken away', { skip }, () => {
  const r = fs.mkdtempSync(path.join(scratch, 'empty-'));
  const res = install(r, '--no-service', '--no-build');
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stderr, /etc\/passwd missing: the mail_owner account is not made/);
  assert.equal(fs.readlinkSync(path.join(r, 'usr/sbin/sendmail')), `${LIB}/launch/sendmail`);
  assert.equal(fs.readlinkSync(path.join(r, 'etc/alternatives/mailx')), `${LIB}/launch/mail`);
  assert.match(fs.readFileSync(path.join(r, 'etc/mail/aliases'), 'utf8'), /^postmaster: root$/m);
  assert.match(ok(install(r, '--no-service', '--no-build'), 'second install'), /nothing changed/);
  ok(install(r, '--uninstall', '--no-service'), 'uninstall');
  // What stays: the kept files, and dpkg's and update-alternatives' own files.
  const left = [...listing(r).keys()].filter((p) => !/^(\.|etc|etc\/mail(\/.*)?|var|var\/spool(\/.*)?|var\/log(\/maillog|\/alternatives\.log)?|var\/lib|var\/lib\/dpkg(\/diversions(-old)?)?)$/.test(p));
  assert.deepEqual(left, []);
});

// ---------------------------------------------------------------------------
// The port check.

function holdPort(): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => resolve(s));
  });
}

test('install refuses when another program holds the SMTP port, naming it and how to stop it', { skip: skip || (!has('ss') && 'no ss (iproute2)') }, async () => {
  const server = await holdPort();
  try {
    const port = (server.address() as net.AddressInfo).port;
    const r = debianRoot('port');
    fs.mkdirSync(path.join(r, 'etc/mail'));
    fs.writeFileSync(path.join(r, 'etc/mail/mailtk.conf'), `smtp_listen = 127.0.0.1:${port}\npop3_listen =\nimap_listen =\n`);
    const was = listing(r, true);
    // No --no-service: the check runs (with DESTDIR no systemctl is called).
    const res = install(r, '--no-build');
    assert.equal(res.status, 1, res.stdout + res.stderr);
    const pkg = run('dpkg', ['-S', fs.realpathSync(process.execPath)]).stdout.split(':')[0];
    const holder = pkg ? `node \\(package ${pkg}\\)` : `node \\(pid ${process.pid}, .*\\)`;
    assert.match(res.stderr, new RegExp(`port ${port} is held by ${holder}: kill -TERM ${process.pid}\\n`));
    assert.match(res.stderr, /not installed/);
    assert.deepEqual(changes(was, listing(r, true)), [], 'nothing written');
  } finally {
    server.close();
  }
});

test('the refusal names Postfix and its service', { skip: skip || (!has('ss') && 'no ss (iproute2)') }, (t) => {
  // The Postfix of this machine's interop tests listens on 127.0.0.1:2525.
  const line = run('ss', ['-ltnpH', 'sport = :2525']).stdout;
  if (!/"master"/.test(line)) return t.skip('no Postfix master on port 2525');
  const r = debianRoot('postfix-port');
  fs.mkdirSync(path.join(r, 'etc/mail'));
  fs.writeFileSync(path.join(r, 'etc/mail/mailtk.conf'), 'smtp_listen = 127.0.0.1:2525\npop3_listen =\nimap_listen =\n');
  const res = install(r, '--no-build');
  assert.equal(res.status, 1);
  assert.match(res.stderr, /^install-system: port 2525 is held by master \(package postfix\): systemctl disable --now postfix$/m);
});

// ---------------------------------------------------------------------------
// The machine's own paths, with overlays in a private mount namespace.

test("an install on the machine's own paths (overlaid in a private mount namespace) and its uninstall", { skip }, (t) => {
  const why = noOverlays();
  if (why) return t.skip(why);
  const o = fs.mkdtempSync(path.join(scratch, 'overlay-'));
  const script = [
    'set -e',
    'mount --make-rprivate /',
    ...['etc', 'usr', 'var'].flatMap((d) => [
      `mkdir -p ${o}/${d}.up ${o}/${d}.work`,
      `mount -t overlay overlay -o lowerdir=/${d},upperdir=${o}/${d}.up,workdir=${o}/${d}.work /${d}`,
    ]),
    // Writes land in the upper directories, or nothing runs.
    `touch /etc/.mailtk-overlay && test -e ${o}/etc.up/.mailtk-overlay && rm /etc/.mailtk-overlay`,
    `touch /usr/.mailtk-overlay && test -e ${o}/usr.up/.mailtk-overlay && rm /usr/.mailtk-overlay`,
    `touch /var/.mailtk-overlay && test -e ${o}/var.up/.mailtk-overlay && rm /var/.mailtk-overlay`,
    'echo "== diversions before"; dpkg-divert --list | sort',
    'echo "== mailx before"; readlink -f /usr/bin/mailx',
    `echo "== install"; bash ${SCRIPT} --no-service --no-build`,
    `echo "== again"; bash ${SCRIPT} --no-service --no-build`,
    'echo "== diversions installed"; dpkg-divert --list | sort',
    'echo "== links installed"; readlink -f /usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases /usr/bin/mailx; stat -c "%a %U" /var/spool/mqueue',
    'echo "== verify"; /usr/sbin/sendmail -bv postmaster',
    `echo "== uninstall"; bash ${SCRIPT} --uninstall --no-service`,
    'echo "== diversions after"; dpkg-divert --list | sort',
    'echo "== mailx after"; readlink -f /usr/bin/mailx; test ! -e /usr/lib/mailtk && echo "no /usr/lib/mailtk"',
  ].join('\n');
  const r = run('unshare', ['-m', 'sh', '-c', script]);
  const out = ok(r, 'install in the namespace');
  const part = (name: string) => (`\n${out}`.split(`\n== ${name}\n`)[1] ?? '').split('\n== ')[0].trimEnd();
  assert.match(part('install'), /mailtk installed in \/usr\/lib\/mailtk/);
  assert.match(part('again'), /nothing changed/);
  assert.match(part('diversions installed'), /^local diversion of \/usr\/sbin\/sendmail to \/usr\/sbin\/sendmail\.distrib$/m);
  assert.equal(part('links installed'), `${LIB}/launch/sendmail\n${LIB}/launch/mailq\n${LIB}/launch/newaliases\n${LIB}/launch/mail\n711 mailtk`);
  assert.match(part('verify'), /deliverable/);
  assert.match(part('uninstall'), /kept:/);
  assert.equal(part('diversions after'), part('diversions before'));
  assert.equal(part('mailx after'), `${part('mailx before')}\nno /usr/lib/mailtk`);
  assert.equal(hostState(), host, 'the machine itself untouched');
});
