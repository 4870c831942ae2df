// sendmail -bd / -bD / -q<interval>: the long-running daemon. It claims the
// pid file, runs the queue at the interval (and soon after a drop into the
// maildrop), opens the network listeners its config names, reloads on SIGHUP
// and on SIGTERM stops accepting, lets work finish, and exits 0 with queued
// mail left queued.

import fs from 'node:fs';
import { type Config, loadConfig } from '../config/index.ts';
import { runQueue } from '../deliver/index.ts';
import { log } from '../log/index.ts';
import { ensureQueueDirs, mayWriteQueue } from '../queue/index.ts';
import { claimPidFile } from './pidfile.ts';

export interface DaemonOptions {
  intervalMs?: number;
  listen: boolean;
  configFile?: string;
  overrides: Record<string, string>;
}

const MAILDROP_SETTLE_MS = 200;

export class Daemon {
  config: Config;
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private again = false;
  private watcher?: fs.FSWatcher;
  private stopping = false;
  private releasePid?: () => Promise<void>;

  constructor(config: Config, private opts: DaemonOptions) {
    this.config = config;
  }

  async start(): Promise<void> {
    if (mayWriteQueue(this.config)) ensureQueueDirs(this.config);
    this.releasePid = await claimPidFile(this.config.pidFile);
    const what = [this.opts.listen ? 'listeners' : '', this.opts.intervalMs ? `queue runs every ${Math.round(this.opts.intervalMs / 1000)}s` : '']
      .filter(Boolean)
      .join(', ');
    log(this.config, '', `starting daemon (mailtk 0.1.0): ${what || 'idle'}`);
    if (this.opts.intervalMs) this.timer = setInterval(() => this.kick(), this.opts.intervalMs);
    this.watchMaildrop();
    this.kick();
  }

  /** Start a queue run now, or once more after the one under way. */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = runQueue(this.config, { force: false, verbose: false })
      .catch((e) => log(this.config, '', `SYSERR: queue run failed: ${(e as Error).message}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private watchMaildrop(): void {
    try {
      let pending: NodeJS.Timeout | undefined;
      this.watcher = fs.watch(this.config.maildropDir, () => {
        if (pending) return;
        pending = setTimeout(() => {
          pending = undefined;
          this.kick();
        }, MAILDROP_SETTLE_MS);
      });
    } catch {
      // No maildrop to watch (not root); interval runs still happen.
    }
  }

  reload(): void {
    try {
      this.config = loadConfig({ file: this.opts.configFile, overrides: this.opts.overrides });
      log(this.config, '', 'restarting: configuration reloaded on SIGHUP');
    } catch (e) {
      log(this.config, '', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.watcher?.close();
    await this.running;
    log(this.config, '', 'stopping daemon');
    await this.releasePid?.();
  }
}

export async function runDaemon(config: Config, opts: DaemonOptions): Promise<number> {
  const d = new Daemon(config, opts);
  await d.start();
  return new Promise((resolve) => {
    const stop = () => {
      d.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => d.reload());
  });
}
