// Domain administrators and the daemon's public socket (issue 14), through the
// real binaries: root makes bob@a.test administrator of a.test; then
// `mailtk --login bob@a.test ...` run by an ordinary Unix user (nobody), with
// bob's mail password on stdin, changes a.test's users, aliases and quotas
// through the running daemon (which logs who did it) and is refused, exit 77,
// on b.test, on the system's commands, with a wrong password, and for a
// user who administers nothing. A new user gets the welcome message. The
// socket drops a request that is too long and answers garbage with an error,
// then serves on. `mailtk queue flush` by nobody asks the daemon for the run.
// Without a daemon, both say so (--login exits 69, an unprivileged flush 77). Root only: the socket is the root
// master's.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, run, runAsync, startDaemon, waitFor } from './helpers.ts';

const NOBODY = { uid: 65534, gid: 65534 };
const CONF = [
  'virtual_domains_file = virtual-domains',
  'virtual_users_file = virtual-users',
  'virtual_alias_file = virtusertable',
  'quota_file = quotas',
  'domain_admins_file = domain-admins',
  'welcome_message_file = welcome',
].join('\n');

let sb: Sandbox;
let daemon: RunningDaemon | undefined;

function mailtk(args: string[], input = ''): string {
  const r = run(sb, 'mailtk', args, input);
  assert.equal(r.status, 0, `mailtk ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** mailtk as nobody, logged in as bob@a.test (or another login) with `password` first on stdin. */
function asAdmin(args: string[], password = 'pw-a', more = '', login = 'bob@a.test') {
  return runAsync(sb, 'mailtk', ['--login', login, ...args], `${password}\n${more}`, NOBODY);
}

const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
const socketPath = () => path.join(sb.queue, 'public', 'mailtk');

describe('domain administrators', { skip: !IS_ROOT && 'the admin socket is served by the root daemon (run as root)' }, () => {
  before(async () => {
    sb = makeSandbox({ extraConf: CONF });
    fs.writeFileSync(path.join(sb.dir, 'etc/welcome'), 'Subject: Welcome to ${domain}\nFrom: Postmaster <postmaster@${domain}>\n\nHello ${user}, your address is ${address}.\n');
    daemon = await startDaemon(sb, ['-bD', '-q1h']);
    mailtk(['domain', 'add', 'a.test']);
    mailtk(['domain', 'add', 'b.test']);
    mailtk(['user', 'add', 'bob@a.test'], 'pw-a\n');
    mailtk(['user', 'add', 'eve@b.test'], 'pw-e\n');
    mailtk(['admin', 'add', 'bob@a.test', '--domain', 'a.test']);
  });

  after(async () => {
    await daemon?.stop();
    sb?.cleanup();
  });

  test('admin list shows the right, as text and as the same rows in JSON', () => {
    assert.match(mailtk(['admin', 'list']), /^bob@a\.test\s+a\.test$/m);
    assert.deepEqual(JSON.parse(mailtk(['admin', 'list', '--json'])), [{ admin: 'bob@a.test', domains: ['a.test'] }]);
    const r = run(sb, 'mailtk', ['admin', 'add', 'nosuch@a.test', '--domain', 'a.test']);
    assert.equal(r.status, 67, r.stderr);
  });

  test('an ordinary user logged in as bob@a.test changes a.test: a user (who gets the welcome message), an alias, a quota', async () => {
    const add = await asAdmin(['user', 'add', 'carol@a.test'], 'pw-a', 'pw-c\n');
    assert.equal(add.status, 0, add.stderr);
    assert.match(add.stdout, /user carol@a\.test added/);
    assert.match(read(path.join(sb.dir, 'etc/virtual-users')), /^carol@a\.test$/m);
    assert.match(read(path.join(sb.dir, 'etc/mail-passwd')), /^carol@a\.test:\$scrypt\$/m);
    const box = path.join(sb.spool, 'virtual', 'a.test', 'carol');
    await waitFor(() => /Hello carol, your address is carol@a\.test\./.test(read(box)), 30_000, 'the welcome message');
    assert.match(read(box), /^Subject: Welcome to a\.test$/m);
    assert.match(read(box), /^To: <carol@a\.test>$/m);
    const alias = await asAdmin(['alias', 'add', 'sales@a.test', 'carol@a.test']);
    assert.equal(alias.status, 0, alias.stderr);
    const quota = await asAdmin(['quota', 'set', '@a.test', '10M']);
    assert.equal(quota.status, 0, quota.stderr);
    assert.match(read(path.join(sb.dir, 'etc/quotas')), /^@a\.test\t10M$/m);
    const users = await asAdmin(['user', 'list', '--json']);
    assert.equal(users.status, 0, users.stderr);
    assert.deepEqual((JSON.parse(users.stdout) as Array<{ user: string }>).map((u) => u.user), ['bob@a.test', 'carol@a.test'], "only a.test's users");
    const aliases = await asAdmin(['alias', 'list']);
    assert.match(aliases.stdout, /^sales@a\.test\s+carol@a\.test$/m);
    const log = read(sb.log);
    assert.match(log, /admin: user add carol@a\.test, by=bob@a\.test, stat=done/);
    assert.match(log, /admin: alias add sales@a\.test, by=bob@a\.test, stat=done/);
    assert.doesNotMatch(log, /pw-a|pw-c/, 'no password in the log');
  });

  test('refused, exit 77: another domain, the system commands, a wrong password, a user who administers nothing', async () => {
    const cases: Array<[string[], RegExp, string?, string?]> = [
      [['user', 'add', 'mallory@b.test'], /administers a\.test, not b\.test/, 'pw-a', 'x\n'],
      [['user', 'del', 'eve@b.test'], /not b\.test/],
      [['alias', 'add', '@b.test', 'bob@a.test'], /not b\.test/],
      [['quota', 'set', 'eve@b.test', '1k'], /not b\.test/],
      [['user', 'list', 'b.test'], /not b\.test/],
      [['domain', 'add', 'c.test'], /the whole system/],
      [['admin', 'add', 'carol@a.test', '--domain', 'a.test'], /the whole system/],
      [['user', 'del', 'carol@a.test'], /wrong password/, 'not-the-password'],
    ];
    for (const [args, why, password, more] of cases) {
      const r = await asAdmin(args, password, more);
      assert.equal(r.status, 77, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, why, args.join(' '));
    }
    const eve = await asAdmin(['user', 'list'], 'pw-e', '', 'eve@b.test');
    assert.equal(eve.status, 77, eve.stderr);
    assert.match(eve.stderr, /eve@b\.test is not a domain administrator/);
    assert.match(read(path.join(sb.dir, 'etc/virtual-users')), /^eve@b\.test$/m, 'eve is still there');
    assert.doesNotMatch(read(path.join(sb.dir, 'etc/virtual-users')), /mallory/);
    assert.match(read(sb.log), /admin: user add mallory@b\.test, by=bob@a\.test, stat=refused/);
    assert.match(read(sb.log), /admin auth failure: user="bob@a\.test"/);
    // --login is only for the domain commands.
    const q = await asAdmin(['queue', 'list']);
    assert.equal(q.status, 64, q.stderr);
  });

  test('the socket: a request too long is dropped, garbage gets an error, and it serves on', async () => {
    const st = fs.statSync(socketPath());
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o666);
    assert.equal(fs.statSync(path.dirname(socketPath())).uid, 0);
    const talk = (data: string | Buffer) =>
      new Promise<string>((resolve) => {
        const s = net.createConnection(socketPath());
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('error', () => resolve(got));
        s.on('close', () => resolve(got));
        s.write(data, () => undefined);
      });
    assert.equal(await talk(Buffer.alloc(70 * 1024, 'x')), '', 'over 64 KiB without a newline: dropped');
    assert.match(await talk('{nonsense\n'), /"ok":false.*not JSON/);
    assert.match(await talk('{"kind":"admin","login":"bob@a.test","password":"pw-a","request":{"op":"user-add","user":"z@a.test","password":"p","extra":1}}\n'), /unexpected field extra/);
    assert.match(await talk('{"kind":"flush","ids":["../../etc"]}\n'), /ids: a list of queue IDs/);
    const r = await asAdmin(['user', 'list']);
    assert.equal(r.status, 0, r.stderr);
  });

  test('mailtk queue flush by an ordinary user asks the daemon for the run', async () => {
    const q = run(sb, 'sendmail', ['-odq', '-i', 'bob@a.test'], 'Subject: flushed by nobody\n\nhi\n');
    assert.equal(q.status, 0, q.stderr);
    const box = path.join(sb.spool, 'virtual', 'a.test', 'bob');
    assert.doesNotMatch(read(box), /flushed by nobody/);
    const r = await runAsync(sb, 'mailtk', ['queue', 'flush'], '', NOBODY);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /queue run made by the daemon/);
    assert.match(read(box), /Subject: flushed by nobody/);
    assert.match(read(sb.log), /queue flush asked through the admin socket: exit 0/);
  });

  test('sendmail -q by an ordinary user asks the daemon too (postqueue -f); a filtered run is refused', async () => {
    const q = run(sb, 'sendmail', ['-odq', '-i', 'bob@a.test'], 'Subject: queue run by nobody\n\nhi\n');
    assert.equal(q.status, 0, q.stderr);
    const box = path.join(sb.spool, 'virtual', 'a.test', 'bob');
    assert.doesNotMatch(read(box), /queue run by nobody/);
    const part = await runAsync(sb, 'sendmail', ['-qRa.test'], '', NOBODY);
    assert.equal(part.status, 77, part.stderr);
    assert.match(part.stderr, /only root or the queue's owner may run part of the queue/);
    const r = await runAsync(sb, 'sendmail', ['-q'], '', NOBODY);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^sendmail: queue run made by the daemon/m);
    assert.match(read(box), /Subject: queue run by nobody/);
  });

  test('without a daemon: --login says so (69); flush too, and that nobody may run the queue (77)', async () => {
    await daemon!.stop();
    daemon = undefined;
    const r = await asAdmin(['user', 'list']);
    assert.equal(r.status, 69, r.stderr);
    assert.match(r.stderr, /no mailtk daemon answers on .*public\/mailtk/);
    const f = await runAsync(sb, 'mailtk', ['queue', 'flush'], '', NOBODY);
    assert.equal(f.status, 77, f.stderr);
    assert.match(f.stderr, /no mailtk daemon answers.*only root or the queue's owner may run the queue/);
    const q = await runAsync(sb, 'sendmail', ['-q'], '', NOBODY);
    assert.equal(q.status, 77, q.stderr);
    assert.match(q.stderr, /^sendmail: no mailtk daemon answers.*only root or the queue's owner may run the queue/m);
  });

  test("a link planted as queue_dir/public (queue_dir is mail_owner's) is refused: root changes nothing it points at", async () => {
    const pub = path.join(sb.queue, 'public');
    const target = path.join(sb.dir, 'elsewhere');
    fs.mkdirSync(target, { mode: 0o700 });
    fs.writeFileSync(path.join(target, 'mailtk'), 'not a socket\n', { mode: 0o600 });
    fs.rmSync(pub, { recursive: true, force: true });
    fs.symlinkSync(target, pub);
    const at = fs.existsSync(sb.log) ? fs.statSync(sb.log).size : 0;
    daemon = await startDaemon(sb, ['-bD', '-q1h']);
    await waitFor(() => /SYSERR: no admin socket: .*public is not a directory/.test(read(sb.log).slice(at)), 10_000, 'the refusal in the log');
    assert.equal(fs.statSync(target).mode & 0o777, 0o700, 'the target directory keeps its mode');
    assert.equal(fs.statSync(path.join(target, 'mailtk')).mode & 0o777, 0o600, 'the file in it is neither removed nor opened up');
    assert.equal(fs.readFileSync(path.join(target, 'mailtk'), 'utf8'), 'not a socket\n');
  });
});
