// sendmail -bd / -bD / -q<interval>: the long-running daemon. It claims the
// pid file, opens the listeners its config names (SMTP and submission, POP3
// and IMAP), runs the queue in a child process at the interval, after each
// accepted message and soon after a drop into the maildrop, reloads on SIGHUP,
// and on SIGTERM stops accepting, lets sessions finish (up to
// SHUTDOWN_GRACE_MS, then 421), and exits 0 with queued mail left queued.

import fs from 'node:fs';
import { type Config, loadConfig } from '../config/index.ts';
import { log, logStartup, reopenLog } from '../log/index.ts';
import { SOFTWARE } from '../server/replies.ts';
import { ensureQueueDirs, mayWriteQueue } from '../queue/index.ts';
import type { MasterLink } from './master-link.ts';
import { claimPidFile } from './pidfile.ts';
import { QueueRunner } from './runner.ts';

export { DAEMON_NODE_FLAGS } from './runner.ts';

export interface DaemonOptions {
  intervalMs?: number;
  listen: boolean;
  configFile?: string;
  overrides: Record<string, string>;
  /** In a root daemon's worker: the master that bound the listeners and runs the queue. */
  master?: MasterLink;
}

const MAILDROP_SETTLE_MS = 200;
/** How long a run waits after an SMTP acceptance for more to deliver with it. */
const ACCEPTED_RUN_DELAY_MS = 100;
/** A queue run that failed (its runner could not start) is tried again after this long. */
const FAILED_RUN_RETRY_MS = 30_000;
/** How long SIGTERM lets sessions finish before they are told 421 / BYE. */
const SHUTDOWN_GRACE_MS = 30_000;

type Listeners = { reload(config: Config): void; close(timeoutMs?: number): Promise<void> };

export class Daemon {
  config: Config;
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private again = false;
  private soon?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private watcher?: fs.FSWatcher;
  private stopping = false;
  private releasePid?: () => Promise<void>;
  private listeners: Listeners[] = [];
  private runner: Pick<QueueRunner, 'run' | 'stop'>;

  constructor(config: Config, private opts: DaemonOptions) {
    this.config = config;
    const master = opts.master;
    this.runner = master ? { run: () => master.run(), stop: async () => undefined } : new QueueRunner(config);
  }

  async start(): Promise<void> {
    if (mayWriteQueue(this.config)) ensureQueueDirs(this.config);
    // A root daemon's pid file is its master's.
    if (!this.opts.master) this.releasePid = await claimPidFile(this.config.pidFile);
    const what = [this.opts.listen ? 'listeners' : '', this.opts.intervalMs ? `queue runs every ${Math.round(this.opts.intervalMs / 1000)}s` : '']
      .filter(Boolean)
      .join(', ');
    logStartup(this.config, `starting daemon (${SOFTWARE}): ${what || 'idle'}`);
    if (this.opts.listen) {
      try {
        await this.openListeners();
      } catch (e) {
        await Promise.all(this.listeners.map((l) => l.close(0)));
        await this.releasePid?.();
        throw e;
      }
    }
    if (this.opts.intervalMs) this.timer = setInterval(() => this.kick(), this.opts.intervalMs);
    this.watchMaildrop();
    this.kick();
  }

  private async openListeners(): Promise<void> {
    const { AuthThrottle, startSmtpListeners, startMailboxListeners } = await import('../server/index.ts');
    const m = this.opts.master;
    const binder = m?.binder(this.config);
    // One table of login failures for SMTP AUTH, POP3 and IMAP alike; it outlives SIGHUP.
    const throttle = new AuthThrottle();
    // An accepted message is delivered at once in the background (sendmail's default).
    this.listeners.push(await startSmtpListeners(this.config, { binder, throttle, onAccepted: () => this.config.deliveryMode !== 'queue' && this.kickSoon() }));
    this.listeners.push(await startMailboxListeners(this.config, { binder, broker: m?.broker, throttle }));
  }

  /**
   * Start a run shortly: the messages accepted meanwhile go in the same run,
   * so a mailbox takes them with one lock and one fsync instead of one each.
   */
  kickSoon(): void {
    if (this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.kick();
    }, ACCEPTED_RUN_DELAY_MS);
  }

  /** Start a queue run now, or once more after the one under way. */
  kick(): void {
    if (this.stopping) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.runner.run()
      .catch((e) => {
        log(this.config, '', `SYSERR: queue run failed: ${(e as Error).message}; trying again in ${FAILED_RUN_RETRY_MS / 1000}s`);
        // Out of descriptors, say: what was accepted meanwhile is not left until the next interval.
        this.retry ??= setTimeout(() => {
          this.retry = undefined;
          this.kick();
        }, FAILED_RUN_RETRY_MS);
      })
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
      // logrotate moved the file away before sending SIGHUP: the next line opens log_file anew.
      reopenLog();
      this.config = loadConfig({ file: this.opts.configFile, overrides: this.opts.overrides });
      for (const l of this.listeners) l.reload(this.config);
      void this.runner.stop(this.config);
      log(this.config, '', 'restarting: configuration reloaded on SIGHUP');
    } catch (e) {
      log(this.config, '', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    if (this.soon) clearTimeout(this.soon);
    if (this.retry) clearTimeout(this.retry);
    this.watcher?.close();
    await Promise.all(this.listeners.map((l) => l.close(SHUTDOWN_GRACE_MS)));
    await this.running;
    await this.runner.stop();
    log(this.config, '', 'stopping daemon');
    await this.releasePid?.();
  }
}

export async function runDaemon(config: Config, opts: DaemonOptions): Promise<number> {
  const d = new Daemon(config, opts);
  await d.start();
  return new Promise((resolve) => {
    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= d.stop().then(() => resolve(0));
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => d.reload());
    opts.master?.on('stop', stop);
    opts.master?.on('reload', () => d.reload());
  });
}
