// sendmail-style log lines, one per event, appended to log_file:
//   Nov 22 00:03:44 host sendmail[1234]: ID: to=<u@h>, delay=00:00:01, mailer=local, dsn=2.0.0, stat=Sent
// Keys keep sendmail's names and order so that log readers (logwatch,
// pflogsumm-style scripts) work. Each line is one write(2) on an O_APPEND
// descriptor, so lines from concurrent processes never interleave.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let fd: number | undefined;
let fdPath: string | undefined;
let program = 'sendmail';
let warned = false;
/**
 * A root master's children may not open the log themselves: the master opens
 * it and gives it to them as a descriptor, named by MAILTK_LOG_FD (or, for
 * the runner, its --log-fd argument: useLogFd).
 */
let inherited = /^\d+$/.test(process.env.MAILTK_LOG_FD ?? '') ? Number(process.env.MAILTK_LOG_FD) : undefined;

/** Write the log to this inherited descriptor instead of opening log_file. */
export function useLogFd(n: number): void {
  inherited = n;
}

export function setProgramName(name: string): void {
  program = name;
}

function stamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Values that could break a log line (newlines) are flattened. */
function clean(v: string): string {
  return v.replace(/[\r\n]+/g, ' ');
}

export type Fields = Array<[string, string | number | undefined]>;

export function formatFields(fields: Fields): string {
  return fields
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${clean(String(v))}`)
    .join(', ');
}

/** Open the log now, before this process gives up the identity that may open it. */
export function openLogNow(config: Config): void {
  if (inherited !== undefined || (fd !== undefined && fdPath === config.logFile)) return;
  fs.mkdirSync(path.dirname(config.logFile), { recursive: true });
  fd = fs.openSync(config.logFile, 'a', 0o640);
  fdPath = config.logFile;
}

/** Lines held by holdLines(), written by its release. */
let held: { config: Config; lines: string[] } | undefined;

/**
 * Hold this process's log lines and write them with one write(2) when the
 * returned function is called (a queue run's batch: one write for its 64
 * entries' lines instead of one each). Still atomic against other processes'
 * lines: a single O_APPEND write. Holding nests: an inner hold is a no-op.
 */
export function holdLines(config: Config): () => void {
  if (held) return () => {};
  held = { config, lines: [] };
  return () => {
    const h = held;
    held = undefined;
    if (h?.lines.length) writeLine(h.config, h.lines.join(''));
  };
}

/** Write one line: "ID: k=v, k=v" (id may be empty for daemon-wide events). */
export function log(config: Config, id: string, fields: Fields | string): void {
  const body = typeof fields === 'string' ? clean(fields) : formatFields(fields);
  const line = `${stamp(new Date())} ${config.hostname.split('.')[0]} ${program}[${process.pid}]: ${id ? `${id}: ` : ''}${body}\n`;
  if (held && held.config.logFile === config.logFile) held.lines.push(line);
  else writeLine(config, line);
}

/** Close the log so that the next line opens log_file by its name again (SIGHUP, after logrotate). */
export function reopenLog(): void {
  if (inherited === undefined && fd !== undefined) {
    try {
      fs.closeSync(fd);
    } catch {
      // closed already
    }
  }
  if (inherited === undefined) fd = undefined;
}

let echoStartup = false;

/** A foreground daemon (-bD) also prints its start-up lines on standard output. */
export function echoStartupLines(on: boolean): void {
  echoStartup = on;
}

/** A start-up line (the version, each listener, a fatal start-up error): logged, and shown with -bD. */
export function logStartup(config: Config, text: string): void {
  log(config, '', text);
  if (echoStartup) process.stdout.write(`sendmail: ${text}\n`);
}

/** Write all of `line`; a pipe to the master (a root daemon's children) may be full for a moment. */
function writeAll(to: number, line: string): void {
  const buf = Buffer.from(line);
  for (let off = 0, waits = 0; off < buf.length; ) {
    try {
      off += fs.writeSync(to, buf, off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || ++waits > 5000) throw e;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}
const pause = new Int32Array(new SharedArrayBuffer(4));

function writeLine(config: Config, line: string): void {
  try {
    if (inherited !== undefined) fd = inherited;
    else if (fd === undefined || fdPath !== config.logFile) {
      fs.mkdirSync(path.dirname(config.logFile), { recursive: true });
      fd = fs.openSync(config.logFile, 'a', 0o640);
      fdPath = config.logFile;
    }
    writeAll(fd, line);
  } catch (e) {
    // Logging must never stop mail: say it once on stderr and go on.
    if (!warned) {
      warned = true;
      process.stderr.write(`mailtk: cannot write log ${config.logFile}: ${(e as Error).message}\n`);
    }
  }
}

/** sendmail's delay format: [D+]HH:MM:SS. */
export function formatDelay(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  s %= 86400;
  const p = (n: number) => String(n).padStart(2, '0');
  const hms = `${p(Math.floor(s / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}`;
  return d ? `${d}+${hms}` : hms;
}
