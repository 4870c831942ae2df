// `mailtk status`: the daemon, its listeners, the queue and the mailboxes at
// a glance. Read only, from what is on disk; nothing is asked of the daemon:
//   - the daemon: pid_file's pid, alive or not (kill 0), its uptime from
//     /proc/<pid>/stat (start time in clock ticks since boot);
//   - its listeners: the "KIND listener on ADDRESS" lines that daemon (or,
//     as root, its worker) logged at its start (log_file; read from the end,
//     at most LOG_TAIL bytes), so a log rotated since then leaves them
//     unknown, and says so;
//   - the queue: entries by state (scan.ts's countQueue, mailq's states);
//   - the mailboxes: how many files mail_spool_dir holds and their bytes (a
//     stat each; no mailbox is opened, src/mailbox owns that).

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { processAlive } from '../config/process.ts';
import { type QueueCounts, countQueue } from '../queue/index.ts';

/** How much of the end of log_file is searched for the daemon's start. */
const LOG_TAIL = 8 << 20;
/** Linux's USER_HZ: /proc/<pid>/stat counts start times in these. */
const CLOCK_TICKS = 100;

export interface Listener {
  kind: string;
  address: string;
}

export interface DaemonStatus {
  pidFile: string;
  /** False when pid_file does not exist (no daemon started, or it stopped cleanly). */
  pidFileExists: boolean;
  pid?: number;
  running: boolean;
  /** When it started, ms since the epoch (absent without /proc). */
  started?: number;
  /** undefined: not found in the log (rotated away, or another log_file). */
  listeners?: Listener[];
}

export interface MailboxTotals {
  dir: string;
  mailboxes: number;
  bytes: number;
}

export interface Status {
  daemon: DaemonStatus;
  queue: QueueCounts & { dir: string };
  mailboxes: MailboxTotals;
}

export function readStatus(config: Config): Status {
  return {
    daemon: daemonStatus(config),
    queue: { dir: config.queueDir, ...countQueue(config) },
    mailboxes: mailboxTotals(config),
  };
}

function daemonStatus(config: Config): DaemonStatus {
  const out: DaemonStatus = { pidFile: config.pidFile, pidFileExists: false, running: false };
  let text: string;
  try {
    text = fs.readFileSync(config.pidFile, 'utf8');
  } catch {
    return out;
  }
  out.pidFileExists = true;
  const pid = Number(text.trim());
  if (!Number.isInteger(pid) || pid <= 0) return out;
  out.pid = pid;
  out.running = processAlive(pid);
  if (!out.running) return out;
  out.started = startedAt(pid);
  out.listeners = loggedListeners(config, pid);
  return out;
}

/** A process's start, from /proc: boot time plus its start in clock ticks. */
function startedAt(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = Number(/^btime (\d+)$/m.exec(fs.readFileSync('/proc/stat', 'latin1'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined;
    return btime * 1000 + (ticks * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/**
 * The listeners the daemon `pid` logged at its last start: the lines
 * `sendmail[PID]: KIND listener on ADDRESS` (src/server/bind.ts) after its
 * start line (`starting daemon`; as root, `master (pid PID, ...`), from it
 * or, under a root master, from its workers (their `starting daemon` lines
 * follow the master's; a worker started again logs its listeners again).
 */
export function loggedListeners(config: Config, pid: number): Listener[] | undefined {
  const lines = logTail(config.logFile)
    .split('\n')
    .map((l) => /\[(\d+)\]: (.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ pid: Number(m[1]), text: m[2] }));
  let start = -1;
  lines.forEach((l, i) => {
    if (l.pid === pid && (l.text.startsWith('starting daemon') || l.text.startsWith(`master (pid ${pid},`))) start = i;
  });
  if (start < 0) return undefined;
  const ours = new Set([pid]);
  const found: Listener[] = [];
  for (const l of lines.slice(start)) {
    if (lines[start].text.startsWith('master') && l.text.startsWith('starting daemon')) ours.add(l.pid);
    const m = /^(\S+) listener on (\S+)$/.exec(l.text);
    if (m && ours.has(l.pid) && !found.some((f) => f.kind === m[1] && f.address === m[2])) found.push({ kind: m[1], address: m[2] });
  }
  return found;
}

/** The last LOG_TAIL bytes of the log; '' when it cannot be read. */
function logTail(file: string): string {
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const n = Math.min(size, LOG_TAIL);
      const buf = Buffer.alloc(n);
      fs.readSync(fd, buf, 0, n, size - n);
      return buf.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return '';
  }
}

function mailboxTotals(config: Config): MailboxTotals {
  const out: MailboxTotals = { dir: config.mailSpoolDir, mailboxes: 0, bytes: 0 };
  let names: string[];
  try {
    names = fs.readdirSync(config.mailSpoolDir);
  } catch {
    return out;
  }
  for (const n of names) {
    if (n.startsWith('.') || n.endsWith('.lock')) continue;
    const st = fs.lstatSync(path.join(config.mailSpoolDir, n), { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    out.mailboxes++;
    out.bytes += st.size;
  }
  return out;
}

/** "3d 4h", "2h 05m", "42s": how long since `ms`. */
export function formatUptime(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m ${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}
