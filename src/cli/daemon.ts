// sendmail -bd / -bD / -bs / -q<interval>: hands over to src/daemon.
// -bd detaches from the terminal as sendmail does; -bD stays in the
// foreground (systemd, the README's quick start, tests).

import { spawn } from 'node:child_process';
import { type Config, childEnv, loadConfig, parseDuration } from '../config/index.ts';
import { Daemon, runDaemon } from '../daemon/index.ts';
import { mayWriteQueue } from '../queue/index.ts';
import type { SendmailOptions } from './sendmail-args.ts';

/** How long SIGTERM lets SMTP sessions finish before they are told 421. */
const SMTP_SHUTDOWN_MS = 30_000;

export async function runDaemonMode(config: Config, o: SendmailOptions): Promise<number> {
  if (o.mode === 'smtp') return runStdioSmtp(config);
  const intervalMs = o.queueInterval !== undefined ? parseDuration(o.queueInterval, 'm') : undefined;
  const listen = o.mode === 'daemon' || o.mode === 'daemon-fg';
  if (o.mode === 'daemon' && !process.env.MAILTK_FOREGROUND) {
    // Detach: the same command again in the foreground, in a new session.
    const child = spawn(process.execPath, process.argv.slice(1), {
      detached: true,
      stdio: 'ignore',
      env: { ...childEnv(config), MAILTK_FOREGROUND: '1' },
    });
    child.unref();
    return 0;
  }
  const opts = { intervalMs, listen, configFile: o.configFile, overrides: o.overrides };
  return listen ? runWithListeners(config, opts) : runDaemon(config, opts);
}

/** -bs: one SMTP session on stdin/stdout; accepted mail is delivered as delivery_mode says. */
async function runStdioSmtp(config: Config): Promise<number> {
  const { runSmtpSession } = await import('../server/index.ts');
  const { startBackgroundDelivery } = await import('./submit.ts');
  const background = config.deliveryMode !== 'queue' && mayWriteQueue(config);
  await runSmtpSession(config, process.stdin, process.stdout, {
    onAccepted: (id) => background && startBackgroundDelivery(config, id),
  });
  return 0;
}

// Interim wiring of the SMTP listeners until src/daemon owns them (the lead's):
// a queue run starts when a message is accepted, SIGHUP reloads both, and
// SIGTERM closes the listeners (sessions get SMTP_SHUTDOWN_MS) before the daemon.
async function runWithListeners(config: Config, opts: ConstructorParameters<typeof Daemon>[1]): Promise<number> {
  const { startSmtpListeners } = await import('../server/index.ts');
  const d = new Daemon(config, opts);
  await d.start();
  let listeners: Awaited<ReturnType<typeof startSmtpListeners>>;
  try {
    listeners = await startSmtpListeners(config, { onAccepted: () => d.config.deliveryMode !== 'queue' && d.kick() });
  } catch (e) {
    await d.stop();
    throw e;
  }
  return new Promise((resolve) => {
    const stop = () => void listeners.close(SMTP_SHUTDOWN_MS).then(() => d.stop()).then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => {
      d.reload();
      listeners.reload(loadConfig({ file: opts.configFile, overrides: opts.overrides }));
    });
  });
}
