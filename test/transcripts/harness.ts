// Harness for the SMTP listener tests: a sandbox (helpers.ts) with the real
// listeners started in-process on 127.0.0.1 ports the system picks, a client
// that reads whole replies, and the replayer of the transcripts here. In a
// transcript "C: line" is sent with CRLF (consecutive C: lines in one write,
// as a pipelining client does), "R: json" raw; "S: line" must be the next
// reply line exactly ({DATE}, {QUEUEID}, {ANY} for what changes); "!closed"
// expects a hang-up; "!conf key = value", "!access line" and "!port
// submission" set the listener up.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { type Config, loadConfig } from '../../src/config/index.ts';
import { type SmtpListeners, startSmtpListeners } from '../../src/server/index.ts';
import { type Sandbox, makeSandbox } from '../helpers.ts';

export interface TestServer {
  sb: Sandbox;
  config: Config;
  listeners: SmtpListeners;
  smtpPort: number;
  submissionPort: number | undefined;
  accepted: string[];
  close(): Promise<void>;
}

export interface ServerOptions {
  extraConf?: string;
  access?: string;
  submission?: boolean;
  users?: string[];
  /** Passwords to put in passwd_file (hashed with the real code). */
  passwords?: Record<string, string>;
}

let certDir: string | undefined;

/** One self-signed pair per test process, copied into each sandbox (openssl takes a moment). */
function testCertificate(): string {
  if (certDir) return certDir;
  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-cert-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '30', '-subj', '/CN=mail.test',
    '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')], { stdio: 'ignore' });
  process.on('exit', () => fs.rmSync(certDir as string, { recursive: true, force: true }));
  return certDir;
}

export function serverConf(sb: Sandbox, opts: { submission?: boolean; copyCert?: boolean } = {}): string {
  const tlsDir = path.join(sb.dir, 'etc/tls');
  if (opts.copyCert !== false) {
    fs.mkdirSync(tlsDir, { recursive: true });
    fs.copyFileSync(path.join(testCertificate(), 'cert.pem'), path.join(tlsDir, 'mailtk.crt'));
    fs.copyFileSync(path.join(testCertificate(), 'key.pem'), path.join(tlsDir, 'mailtk.key'));
  }
  return [
    'smtp_listen = 127.0.0.1:0',
    `submission_listen = ${opts.submission ? '127.0.0.1:0' : ''}`,
    `passwd_file = ${sb.dir}/etc/smtp-passwd`,
    `tls_cert_file = ${tlsDir}/mailtk.crt`,
    `tls_key_file = ${tlsDir}/mailtk.key`,
    'delivery_mode = queue',
  ].join('\n');
}

export async function startServer(opts: ServerOptions = {}): Promise<TestServer> {
  const sb = makeSandbox({ users: opts.users });
  fs.appendFileSync(sb.conf, `${serverConf(sb, { submission: opts.submission })}\n${opts.extraConf ?? ''}\n`);
  if (opts.access !== undefined) fs.writeFileSync(path.join(sb.dir, 'etc/access'), opts.access);
  if (opts.passwords) {
    const { setPassword } = await import('../../src/server/index.ts');
    for (const [u, p] of Object.entries(opts.passwords)) await setPassword(path.join(sb.dir, 'etc/smtp-passwd'), u, p);
  }
  const config = loadConfig({ file: sb.conf });
  const accepted: string[] = [];
  const listeners = await startSmtpListeners(config, { onAccepted: (id) => accepted.push(id) });
  const port = (kind: string) => listeners.addresses.find((a) => a.kind === kind)?.port;
  return {
    sb,
    config,
    listeners,
    smtpPort: port('smtp') as number,
    submissionPort: port('submission'),
    accepted,
    close: async () => {
      await listeners.close(0);
      sb.cleanup();
    },
  };
}

/** A line-oriented SMTP client that hands out whole replies. */
export class SmtpClient {
  private buf = '';
  private lines: string[] = [];
  private waiters: Array<() => void> = [];
  ended = false;

  private constructor(public socket: net.Socket | tls.TLSSocket) {
    this.listen(socket);
  }

  static wrap(socket: net.Socket): SmtpClient {
    return new SmtpClient(socket);
  }

  static connect(port: number, host = '127.0.0.1'): Promise<SmtpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host }, () => resolve(new SmtpClient(s)));
      s.once('error', reject);
    });
  }

  private listen(s: net.Socket): void {
    s.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\r\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 2);
      }
      this.wake();
    });
    s.on('close', () => {
      this.ended = true;
      this.wake();
    });
    s.on('error', () => undefined);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async waitFor(cond: () => boolean, ms: number): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (this.ended) return;
      const left = end - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for the server (have: ${JSON.stringify(this.lines)})`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, left);
        this.waiters.push(() => (clearTimeout(t), r()));
      });
    }
  }

  /** The next reply line, or undefined once the server has closed. */
  async line(ms = 10_000): Promise<string | undefined> {
    await this.waitFor(() => this.lines.length > 0, ms);
    return this.lines.shift();
  }

  /** All lines of the next reply. */
  async reply(ms = 10_000): Promise<string[]> {
    const out: string[] = [];
    for (;;) {
      const l = await this.line(ms);
      if (l === undefined) return out;
      out.push(l);
      if (/^\d{3} /.test(l) || !/^\d{3}-/.test(l)) return out;
    }
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  async command(line: string): Promise<string[]> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** Resolves when the server closes the connection. */
  async closed(ms = 10_000): Promise<void> {
    await this.waitFor(() => this.ended, ms);
    if (!this.ended) throw new Error('the server did not close the connection');
  }

  async startTls(): Promise<void> {
    const raw = this.socket as net.Socket;
    raw.removeAllListeners('data');
    raw.removeAllListeners('close');
    const secure = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'mail.test' });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.listen(secure);
  }

  end(): void {
    this.socket.end();
  }
}

const PLACEHOLDERS: Record<string, string> = {
  '{DATE}': '\\w{3}, \\d{1,2} \\w{3} \\d{4} \\d\\d:\\d\\d:\\d\\d [+-]\\d{4}',
  '{QUEUEID}': '[0-9A-Za-x]{8}\\d{6}',
  '{ANY}': '.*',
};

function lineMatches(expected: string, actual: string): boolean {
  let re = expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  for (const [k, v] of Object.entries(PLACEHOLDERS)) re = re.split(k.replace(/[{}]/g, '\\$&')).join(v);
  return new RegExp(`^${re}$`).test(actual);
}

export interface Transcript {
  conf: string[];
  access: string[];
  port: 'smtp' | 'submission';
  steps: Array<{ line: number; kind: 'C' | 'R' | 'S' | 'closed'; text: string }>;
}

export function parseTranscript(file: string): Transcript {
  const t: Transcript = { conf: [], access: [], port: 'smtp', steps: [] };
  fs.readFileSync(file, 'utf8').split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) return;
    const m = /^(C|S|R): ?(.*)$/.exec(line);
    if (m) t.steps.push({ line: i + 1, kind: m[1] as 'C' | 'S' | 'R', text: m[1] === 'R' ? JSON.parse(m[2]) : m[2] });
    else if (line.startsWith('!conf ')) t.conf.push(line.slice(6));
    else if (line.startsWith('!access ')) t.access.push(line.slice(8));
    else if (line === '!port submission') t.port = 'submission';
    else if (line === '!closed') t.steps.push({ line: i + 1, kind: 'closed', text: '' });
    else throw new Error(`${file}:${i + 1}: cannot read "${line}"`);
  });
  return t;
}

/** Play a transcript against a listener; every S: line must match the server's line exactly. */
export async function replay(file: string, port: number, t = parseTranscript(file)): Promise<void> {
  const c = await SmtpClient.connect(port);
  const name = path.basename(file);
  let out = '';
  try {
    for (const step of t.steps) {
      if (step.kind === 'C') out += `${step.text}\r\n`;
      else if (step.kind === 'R') out += step.text;
      else {
        if (out) c.write(out);
        out = '';
        if (step.kind === 'closed') {
          await c.closed();
          continue;
        }
        const actual = await c.line();
        assert.ok(actual !== undefined && lineMatches(step.text, actual), `${name}:${step.line}: expected\n  S: ${step.text}\ngot\n  S: ${actual ?? '(connection closed)'}`);
      }
    }
  } finally {
    c.end();
  }
}
