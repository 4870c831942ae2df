// Test fixture: a private Dovecot, the peer of the IMAP differential test and
// of the LMTP hand-off test. It runs in the foreground (-F) with a config the
// test writes into its own directory (base_dir, state, log and mail all
// there), listening on a loopback port picked at run time; it is ready when
// that port greets with the protocol's greeting. A port taken between the
// pick and Dovecot's bind is tried again with another, up to three times.
// Needs root (Dovecot switches to each mail user's uid) and Debian's Dovecot
// packages, which test/install-deps.sh installs.

import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const DOVECOT = '/usr/sbin/dovecot';

export interface DovecotServer {
  port: number;
  child: ChildProcess;
  dir: string;
  /** Dovecot's log file and what it wrote to stdout and stderr. */
  log(): string;
  /** Stop Dovecot and, unless `keep`, remove its directory. */
  stop(keep?: boolean): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start Dovecot in `dir` with the config `conf(port)` returns (written to
 * dir/dovecot.conf); ready once 127.0.0.1:port answers with a greeting that
 * starts with `greeting` ("* OK" for IMAP, "220" for LMTP).
 */
export async function startDovecot(dir: string, conf: (port: number) => string, greeting: string): Promise<DovecotServer> {
  const file = path.join(dir, 'dovecot.conf');
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    fs.writeFileSync(file, conf(port));
    const child = spawn(DOVECOT, ['-F', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (x) => (out += x));
    child.stderr!.on('data', (x) => (out += x));
    const logFile = path.join(dir, 'log');
    const log = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '') + out;
    const end = Date.now() + 15_000;
    while (Date.now() < end && child.exitCode === null && child.signalCode === null) {
      if (await greets(port, greeting)) {
        const stop = async (keep = false) => {
          await stopChild(child);
          if (!keep) fs.rmSync(dir, { recursive: true, force: true });
        };
        return { port, child, dir, log, stop };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    lastErr = log();
    await stopChild(child);
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(`Dovecot did not start: ${lastErr}`);
}

function greets(port: number, greeting: string): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.once('data', (d) => {
        s.destroy();
        resolve(d.toString().startsWith(greeting));
      });
    });
    s.once('error', () => resolve(false));
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export async function stopChild(child: ChildProcess, ms = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}
