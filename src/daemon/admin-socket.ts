// The root daemon's public socket, queue_dir/public/mailtk (mode 0666 in a
// root-owned 0755 directory; queue_dir is 0711, so everyone reaches it), as
// Postfix's postqueue reaches its flush service through public/flush: what
// an ordinary user may ask of the master, which alone can do it.
//
//   {"kind":"flush","ids":[...]}        a queue run now, as root's `mailtk
//                                       queue flush` makes it (anyone may)
//   {"kind":"admin","login":"bob@a.test","password":"...","request":{...}}
//                                       a domain administrator's change
//                                       (src/admin/requests.ts), made here
//                                       after the password and the right
//
// One request a connection: one line of JSON, at most MAX_REQUEST_BYTES,
// within REQUEST_TIMEOUT_MS, else the connection is dropped; one line of
// JSON back. Every field is checked before use (requests.ts checkRequest);
// a wrong password is answered after FAILURE_DELAY_MS, and the checks of
// one login wait for each other, so guessing runs at one try per delay.
// Each change is logged with the login that made it, never a password.
// Known limits: Node cannot read the peer's uid (SO_PEERCRED), so the log
// names the mail login, not the Unix account; at most MAX_CLIENTS at once.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { MAX_REQUEST_BYTES, type SocketAnswer, type SocketRequest, adminSocketPath } from '../admin/daemon-client.ts';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';
import { isQueueId } from '../queue/index.ts';

const REQUEST_TIMEOUT_MS = 10_000;
const FAILURE_DELAY_MS = 2_000;
const MAX_CLIENTS = 16;
const MAX_IDS = 1_000;
/** Flush requests waiting behind the one under way; more are told to try later. */
const MAX_WAITING_FLUSHES = 4;

export interface AdminSocket {
  close(): Promise<void>;
}

/** Listen, or log why not and return undefined (the daemon runs on without it). */
export async function serveAdminSocket(config: () => Config, runQueue: (argv: string[]) => Promise<number>): Promise<AdminSocket | undefined> {
  const file = adminSocketPath(config());
  let dirFd: number;
  let at: string;
  try {
    dirFd = openPlace(path.dirname(file));
    at = `/proc/self/fd/${dirFd}/${path.basename(file)}`;
  } catch (e) {
    log(config(), '', `SYSERR: no admin socket: ${(e as Error).message}`);
    return undefined;
  }
  const done = () => fs.closeSync(dirFd);
  try {
    const old = fs.lstatSync(at, { throwIfNoEntry: false });
    if (old && !old.isSocket()) throw new Error(`${file} exists and is not a socket; remove it`);
    if (old) fs.unlinkSync(at); // left by a daemon that died
  } catch (e) {
    done();
    log(config(), '', `SYSERR: no admin socket: ${(e as Error).message}`);
    return undefined;
  }
  const handler = new Handler(config, runQueue);
  // Half-open: the client ends its side after its request and still reads the answer.
  const server = net.createServer({ allowHalfOpen: true }, (s) => handler.serve(s));
  server.maxConnections = MAX_CLIENTS;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(at, () => resolve());
  }).catch((e: Error) => {
    log(config(), '', `SYSERR: no admin socket ${file}: ${e.message}`);
    return undefined;
  });
  if (!server.listening) {
    done();
    return undefined;
  }
  fs.chmodSync(at, 0o666);
  return {
    // The directory stays open while the socket is bound: closing the server unlinks it through `at`.
    close: () => new Promise<void>((resolve) => server.close(() => resolve())).finally(done),
  };
}

/**
 * The public directory, made if missing, root's and 0755, opened without
 * following a link; the socket is then made, removed and chmod'ed through
 * /proc/self/fd/N, never by its name. queue_dir belongs to mail_owner, who
 * could otherwise swap `public` for a link between a check and a use and
 * have root chmod or unlink a file of its choosing.
 */
function openPlace(dir: string): number {
  try {
    fs.mkdirSync(dir, { mode: 0o755 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  let fd: number;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY | fs.constants.O_NOFOLLOW);
  } catch (e) {
    throw new Error(`${dir} is not a directory (${(e as NodeJS.ErrnoException).code}); remove it`);
  }
  try {
    // Given to mail_owner with the rest of the queue (daemon/privs.ts giveQueueTo walks it): root's again.
    const me = process.geteuid?.() ?? 0;
    if (fs.fstatSync(fd).uid !== me) fs.fchownSync(fd, me, process.getegid?.() ?? 0);
    fs.fchmodSync(fd, 0o755);
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

class Handler {
  private flushing: Promise<unknown> = Promise.resolve();
  private waitingFlushes = 0;
  /** Per login, the check under way: the next waits for it. */
  private checks = new Map<string, Promise<unknown>>();

  constructor(
    private config: () => Config,
    private runQueue: (argv: string[]) => Promise<number>,
  ) {}

  serve(s: net.Socket): void {
    const chunks: Buffer[] = [];
    let bytes = 0;
    s.setTimeout(REQUEST_TIMEOUT_MS, () => s.destroy());
    s.on('error', () => undefined);
    const onData = (d: Buffer) => {
      const nl = d.indexOf(0x0a);
      const take = nl < 0 ? d : d.subarray(0, nl);
      bytes += take.length;
      if (bytes > MAX_REQUEST_BYTES) return void s.destroy();
      chunks.push(take);
      if (nl < 0) return;
      s.off('data', onData);
      s.setTimeout(0);
      s.pause();
      void this.answer(Buffer.concat(chunks).toString('utf8')).then((a) => s.end(JSON.stringify(a) + '\n'));
    };
    s.on('data', onData);
    s.on('end', () => {
      if (s.listenerCount('data') > 0) s.destroy(); // ended before a whole request
    });
  }

  private async answer(line: string): Promise<SocketAnswer> {
    try {
      const req = parseRequest(line);
      if (req.kind === 'flush') return { ok: true, code: await this.flush(req.ids) };
      return { ok: true, answer: await this.admin(req) };
    } catch (e) {
      if (e instanceof MailError) return { ok: false, failure: e.failure, error: e.message };
      log(this.config(), '', `SYSERR: admin socket: ${(e as Error).stack ?? e}`);
      return { ok: false, failure: 'internal', error: 'internal error (see the log)' };
    }
  }

  /** Runs one after another; each asked run is made (a request during a run gets a run of its own after it). */
  private async flush(ids: string[]): Promise<number> {
    if (this.waitingFlushes >= MAX_WAITING_FLUSHES) throw new MailError('server-busy', `${MAX_WAITING_FLUSHES} queue runs are waiting already; try again later`);
    this.waitingFlushes++;
    const mine = this.flushing.then(async () => {
      this.waitingFlushes--;
      let worst = 0;
      for (const args of ids.length ? ids.map((id) => [`-qI${id}`]) : [['-qf']]) {
        const code = await this.runQueue(args);
        if (code !== 0) worst = code;
      }
      log(this.config(), '', `queue flush${ids.length ? ` of ${ids.join(' ')}` : ''} asked through the admin socket: exit ${worst}`);
      return worst;
    });
    this.flushing = mine.catch(() => undefined);
    return mine;
  }

  private async admin(req: Extract<SocketRequest, { kind: 'admin' }>): Promise<object> {
    const login = req.login.toLowerCase();
    const before = this.checks.get(login) ?? Promise.resolve();
    const mine = before.then(() => this.checkAndDo(login, req));
    const settled = mine.catch(() => undefined);
    this.checks.set(login, settled);
    void settled.then(() => this.checks.get(login) === settled && this.checks.delete(login));
    return mine;
  }

  private async checkAndDo(login: string, req: Extract<SocketRequest, { kind: 'admin' }>): Promise<object> {
    const config = this.config();
    const { PasswdFile } = await import('../server/passwd.ts');
    const { adminDomains } = await import('../virtual/tables.ts');
    const { checkRequest, describeRequest, performRequest, scopeOf } = await import('../admin/requests.ts');
    const request = checkRequest(req.request);
    if (!(await PasswdFile.load(config.passwdFile).verify(login, req.password))) {
      log(config, '', `admin auth failure: user=${JSON.stringify(login)} reason=password`);
      await new Promise((r) => setTimeout(r, FAILURE_DELAY_MS));
      throw new MailError('auth-failed', `${login}: wrong password, or no such login`);
    }
    const what = describeRequest(request);
    try {
      const domains = adminDomains(config, login);
      if (domains.length === 0) throw new MailError('not-allowed', `${login} is not a domain administrator (mailtk admin add, as root)`);
      const answer = await performRequest(config, scopeOf(request, login, domains), domains);
      log(config, '', `admin: ${what}, by=${login}, stat=done`);
      // Rows given one at a time (a generator) would not survive JSON.stringify.
      return answer.rows ? { ...answer, rows: Array.from(answer.rows) } : answer;
    } catch (e) {
      if (e instanceof MailError) log(config, '', `admin: ${what}, by=${login}, stat=refused (${e.message.split('\n')[0]})`);
      throw e;
    }
  }
}

/** The request line, every field checked; the admin request itself is checked by requests.ts. */
function parseRequest(line: string): SocketRequest {
  const bad = (why: string) => new MailError('usage', `bad request: ${why}`);
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw bad('not JSON');
  }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw bad('not an object');
  const short = (v: unknown, max: number) => typeof v === 'string' && v.length > 0 && v.length <= max && !/[\x00-\x1f\x7f]/.test(v);
  if (o.kind === 'flush') {
    const ids = o.ids ?? [];
    if (!Array.isArray(ids) || ids.length > MAX_IDS || !ids.every((i) => typeof i === 'string' && isQueueId(i))) throw bad('ids: a list of queue IDs');
    return { kind: 'flush', ids: ids as string[] };
  }
  if (o.kind === 'admin') {
    if (!short(o.login, 320) || !short(o.password, 1024)) throw bad('login and password: strings');
    return { kind: 'admin', login: o.login as string, password: o.password as string, request: o.request as never };
  }
  throw bad('unknown kind');
}
