// Harness for the POP3 and IMAP tests: a sandbox installation (helpers.ts)
// with passwords in passwd_file, the mailbox listeners started in this
// process on loopback ports the system picks, mail put into a user's spool
// mbox with the real `sendmail -odi`, and a line client for transcripts.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { type MailboxListeners, setPassword, startMailboxListeners } from '../../src/server/index.ts';
import { type Sandbox, makeSandbox, run } from '../helpers.ts';
import { serverConf } from '../transcripts/harness.ts';

export interface MailboxServer {
  sb: Sandbox;
  config: Config;
  listeners: MailboxListeners;
  pop3: number;
  imap: number;
  pop3s?: number;
  imaps?: number;
  close(): Promise<void>;
}

export const PASSWORD = 's3cret';

export async function startMailboxServer(opts: { extraConf?: string; users?: string[]; implicitTls?: boolean } = {}): Promise<MailboxServer> {
  const sb = makeSandbox({ users: opts.users });
  const conf = [
    serverConf(sb),
    'pop3_listen = 127.0.0.1:0',
    'imap_listen = 127.0.0.1:0',
    `pop3s_listen = ${opts.implicitTls ? '127.0.0.1:0' : ''}`,
    `imaps_listen = ${opts.implicitTls ? '127.0.0.1:0' : ''}`,
    `apop_secrets_file = ${sb.dir}/etc/apop-secrets`,
    'delivery_mode = interactive',
    opts.extraConf ?? '',
  ];
  fs.appendFileSync(sb.conf, conf.join('\n') + '\n');
  for (const u of Object.keys(sb.users)) await setPassword(path.join(sb.dir, 'etc/smtp-passwd'), u, PASSWORD);
  const config = loadConfig({ file: sb.conf });
  const listeners = await startMailboxListeners(config);
  const port = (kind: string) => listeners.addresses.find((a) => a.kind === kind)?.port;
  return {
    sb, config, listeners, pop3: port('pop3')!, imap: port('imap')!, pop3s: port('pop3s'), imaps: port('imaps'),
    close: async () => {
      await listeners.close(2000);
      sb.cleanup();
    },
  };
}

/** Deliver a message to a local user with the real sendmail (-odi: into the mbox before it exits). */
export function deliver(sb: Sandbox, user: string, subject: string, body = 'hello\n', extraHeaders = ''): void {
  const msg = `From: sender@mail.test\nTo: ${user}@mail.test\nSubject: ${subject}\n${extraHeaders}\n${body}`;
  const r = run(sb, 'sendmail', ['-odi', '-i', user], msg);
  if (r.status !== 0) throw new Error(`sendmail failed (${r.status}): ${r.stderr}`);
}

/** A line client: send lines, read lines (CRLF stripped). */
export class LineClient {
  private buf = '';
  private waiters: Array<() => void> = [];
  closed = false;
  constructor(readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static connect(port: number): Promise<LineClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => resolve(new LineClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  async line(timeoutMs = 10_000): Promise<string | undefined> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const i = this.buf.indexOf('\r\n');
      if (i >= 0) {
        const l = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 2);
        return l;
      }
      if (this.closed) return undefined;
      if (Date.now() > end) throw new Error(`timed out waiting for a line (have ${JSON.stringify(this.buf.slice(0, 200))})`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Exactly n bytes (a literal), as a Buffer. */
  async bytes(n: number): Promise<Buffer> {
    while (Buffer.byteLength(this.buf, 'latin1') < n) {
      if (this.closed) throw new Error('closed inside a literal');
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
    const out = Buffer.from(this.buf.slice(0, n), 'latin1');
    this.buf = this.buf.slice(n);
    return out;
  }

  /** Read and drop n bytes; returns n. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) {
        if (this.closed) throw new Error('closed inside a literal');
        await new Promise<void>((r) => {
          this.waiters.push(r);
          setTimeout(r, 200);
        });
        continue;
      }
      const take = Math.min(left, this.buf.length);
      this.buf = this.buf.slice(take);
      left -= take;
    }
    return n;
  }

  send(line: string): void {
    this.socket.write(line + '\r\n');
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Run a Python script (poplib, imaplib) asynchronously: the listeners run in this process. */
export function python(script: string, args: string[] = []): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn('python3', ['-c', script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => resolve({ code, out, err }));
  });
}

export interface ImapReply {
  status: string;
  text: string;
  untagged: string[];
}

/** A raw IMAP client for tests: one tagged command at a time, untagged lines collected. */
export class ImapClient {
  private n = 0;
  greeting = '';
  private constructor(private readonly c: LineClient) {}

  static async connect(port: number): Promise<ImapClient> {
    const c = await LineClient.connect(port);
    const s = new ImapClient(c);
    s.greeting = (await c.line())!;
    assert.match(s.greeting, /^\* OK /);
    return s;
  }

  static async login(port: number, user: string, password = PASSWORD): Promise<ImapClient> {
    const s = await ImapClient.connect(port);
    await s.ok(`LOGIN ${user} ${password}`);
    return s;
  }

  /** One command; `literal` goes as its last argument, a non-synchronizing literal (RFC 7888). */
  async run(command: string, literal?: string): Promise<ImapReply> {
    const tag = `t${++this.n}`;
    if (literal === undefined) this.c.send(`${tag} ${command}`);
    else this.c.socket.write(`${tag} ${command} {${Buffer.byteLength(literal)}+}\r\n${literal}\r\n`);
    const untagged: string[] = [];
    for (;;) {
      const line = await this.c.line();
      if (line === undefined) throw new Error(`connection closed during ${command}`);
      const m = /^(\S+) (OK|NO|BAD) ?(.*)$/.exec(line);
      if (m && m[1] === tag) return { status: m[2], text: m[3], untagged };
      untagged.push(line);
    }
  }

  async ok(command: string): Promise<ImapReply> {
    const r = await this.run(command);
    assert.equal(r.status, 'OK', `${command}: ${r.status} ${r.text}`);
    return r;
  }

  /** STATUS MESSAGES of a mailbox. */
  async messages(mailbox: string): Promise<number> {
    const r = await this.ok(`STATUS ${mailbox} (MESSAGES)`);
    return Number(/MESSAGES (\d+)/.exec(r.untagged.join(' '))?.[1]);
  }

  /** Each command must answer NO. */
  async refused(commands: Array<string | [string, string]>): Promise<ImapReply[]> {
    const out: ImapReply[] = [];
    for (const c of commands) {
      const [cmd, lit] = typeof c === 'string' ? [c, undefined] : c;
      const r = await this.run(cmd, lit);
      assert.equal(r.status, 'NO', `${cmd} answered ${r.status} ${r.text}`);
      out.push(r);
    }
    return out;
  }

  async logout(): Promise<void> {
    await this.run('LOGOUT');
    this.c.close();
  }

  close(): void {
    this.c.close();
  }
}

/** One tagged command, which must succeed; untagged lines with their literals inlined as {n}\r\n<bytes>. */
export async function imapCommand(c: LineClient, tag: string, line: string, literal?: Buffer): Promise<string[]> {
  const { lines, done } = await imapExchange(c, tag, line, literal);
  assert.match(done, new RegExp(`^${tag} OK`), done);
  return lines;
}

/** One tagged command: the untagged lines (literals, literal8 too, inlined) and the tagged line, whatever it says. */
export async function imapExchange(c: LineClient, tag: string, line: string, literal?: Buffer): Promise<{ lines: string[]; done: string }> {
  c.send(`${tag} ${line}${literal ? ` {${literal.length}}` : ''}`);
  if (literal) {
    assert.match((await c.line()) ?? '', /^\+/);
    c.socket.write(Buffer.concat([literal, Buffer.from('\r\n')]));
  }
  const lines: string[] = [];
  let cur = '';
  for (;;) {
    const l = await c.line();
    if (l === undefined) throw new Error('connection closed');
    cur += l;
    const lit = /~?\{(\d+)\}$/.exec(l);
    if (lit) {
      cur += '\r\n' + (await c.bytes(Number(lit[1]))).toString('latin1');
      continue;
    }
    if (cur.startsWith(`${tag} `)) return { lines, done: cur };
    lines.push(cur);
    cur = '';
  }
}

/** The literal after `item` in a FETCH response, checked against its announced length. */
export function fetchedLiteral(resp: string, item: string): string {
  const at = resp.indexOf(`${item} {`);
  assert.ok(at >= 0, `${item} in ${resp.slice(0, 200)}`);
  const m = /^\{(\d+)\}\r\n/.exec(resp.slice(at + item.length + 1))!;
  const start = at + item.length + 1 + m[0].length;
  return resp.slice(start, start + Number(m[1]));
}
