// The daemon's side of its queue runner: one child process (dist/runner.js
// --serve, src/deliver/serve-runs.ts; as sendmail forks one) that lives as
// long as the daemon and makes a run each time it is asked over the IPC
// channel. Deliveries then never stall the listeners'
// event loop and use the second core, and a run costs no process start-up
// (on a busy daemon that start-up cost more CPU than the deliveries). A
// runner that dies is started again at the next request; SIGHUP replaces it
// so that it reads the new configuration.

import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Config, childArgs, childEnv } from '../config/index.ts';
import { notStarted } from './child-start.ts';
import { codeDir } from './code-dir.ts';
import type { LogSink } from './log-sink.ts';

/**
 * Node flags for the long-lived processes (the detached daemon, its runner,
 * the systemd unit): a small young generation, collected more often, keeps
 * peak memory under a flood of messages low at no cost in speed
 * (bench/smtp-accept.sh). Not in bin/sendmail's own line: it would cost
 * every short-lived sendmail Node's start-up snapshot.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4'];

interface Waiter {
  child: ChildProcess;
  done: Promise<void>;
  resolve(): void;
  reject(e: Error): void;
}

/** How a root master starts its runner: as mail_owner, asking it for agents. */
export interface RunnerOptions {
  identity?: { uid: number; gid: number };
  /** The log, opened by root, as the child's fd 4. */
  log?: LogSink;
  /** Called with each new runner process (the master serves its agent requests). */
  onSpawn?(child: ChildProcess): void;
}

export class QueueRunner {
  private child?: ChildProcess;
  private seq = 0;
  private waiting = new Map<number, Waiter>();

  constructor(private config: Config, private opts: RunnerOptions = {}) {}

  /** One queue run; resolves when it is over. */
  run(): Promise<void> {
    const child = this.child ?? this.spawn();
    const n = ++this.seq;
    const w = { child } as Waiter;
    w.done = new Promise<void>((resolve, reject) => Object.assign(w, { resolve, reject }));
    this.waiting.set(n, w);
    // Not started (out of descriptors): gone() fails the run on the next tick, with the reason; the queue stays as it is.
    if (child.pid === undefined) return w.done;
    child.send({ run: n }, (e) => {
      if (e) this.settle(n, e);
    });
    return w.done;
  }

  private spawn(): ChildProcess {
    const { identity, log } = this.opts;
    const own = ['--serve', ...(identity ? ['--agents=ipc'] : []), ...(log ? ['--log-fd=4'] : [])];
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, runnerEntry(), ...own, ...childArgs(this.config)], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc', ...(log ? [log.stdio] : [])],
      ...(identity ? { uid: identity.uid, gid: identity.gid, cwd: '/', serialization: 'advanced' as const } : {}),
      env: childEnv(this.config),
    });
    this.child = child;
    if (notStarted(child, (e) => this.gone(child, `could not be started: ${e.message}`))) return child;
    log?.attach(child);
    this.opts.onSpawn?.(child);
    child.on('message', (m: { done?: number; error?: string }) => {
      if (typeof m?.done === 'number') this.settle(m.done, m.error ? new Error(m.error) : undefined);
    });
    child.on('exit', (code, signal) => this.gone(child, `exited ${signal ?? code}`));
    child.on('error', () => {
      // Reported through 'exit', or through send()'s callback.
    });
    return child;
  }

  /** The runner ended, or never began: its runs fail (their entries stay queued) and the next run starts another. */
  private gone(child: ChildProcess, how: string): void {
    if (this.child === child) this.child = undefined;
    for (const [n, w] of this.waiting) if (w.child === child) this.settle(n, new Error(`queue runner ${how}`));
  }

  private settle(n: number, e?: Error): void {
    const w = this.waiting.get(n);
    if (!w) return;
    this.waiting.delete(n);
    if (e) w.reject(e);
    else w.resolve();
  }

  /** Let the runner finish its run and exit (the next run starts a new one, with this config). */
  async stop(config?: Config): Promise<void> {
    if (config) this.config = config;
    const child = this.child;
    this.child = undefined;
    // One that was never started will not exit either.
    if (!child || child.pid === undefined) return;
    const exited = new Promise((r) => child.once('exit', r));
    // Its run under way ends first: the next run already goes to a new runner.
    await Promise.allSettled([...this.waiting.values()].filter((w) => w.child === child).map((w) => w.done));
    if (child.connected) child.disconnect();
    await exited;
  }
}

/** dist/runner.js of the bundle that runs this daemon (a copy others can read, for a root master's children). */
export function runnerEntry(): string {
  const root = process.geteuid?.() === 0 ? codeDir() : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  return path.join(root, 'dist', 'runner.js');
}

/** bin/sendmail beside the bundle that runs this daemon (a copy others can read, for a root master's children). */
export function sendmailBin(): string {
  if (process.geteuid?.() === 0) return path.join(codeDir(), 'bin', 'sendmail');
  return ownSendmailBin();
}

/**
 * bin/sendmail beside the running code, for a child with this process's own
 * identity. A one-shot command (mailtk) uses this one: codeDir()'s copy is
 * removed when the process that made it exits, which would pull the files
 * from under a background delivery that the child starts and leaves running.
 */
export function ownSendmailBin(): string {
  const self = process.argv[1] ?? '';
  return path.basename(self) === 'sendmail' ? self : fileURLToPath(new URL('../bin/sendmail', import.meta.url));
}
