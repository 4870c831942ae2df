// sendmail -bd / -bD / -bs / -q<interval>: hands over to src/daemon.
// -bd detaches from the terminal as sendmail does; -bD stays in the
// foreground (systemd, the README's quick start, tests).

import { spawn } from 'node:child_process';
import { type Config, childEnv, parseDuration } from '../config/index.ts';
import { DAEMON_NODE_FLAGS, runDaemon } from '../daemon/index.ts';
import { echoStartupLines, log } from '../log/index.ts';
import { mayWriteQueue } from '../queue/index.ts';
import type { SendmailOptions } from './sendmail-args.ts';

export async function runDaemonMode(config: Config, o: SendmailOptions): Promise<number> {
  if (o.mode === 'smtp') return runStdioSmtp(config);
  const intervalMs = o.queueInterval !== undefined ? parseDuration(o.queueInterval, 'm') : undefined;
  const listen = o.mode === 'daemon' || o.mode === 'daemon-fg';
  if (o.mode === 'daemon' && !process.env.MAILTK_FOREGROUND) {
    // Detach: the same command again in the foreground, in a new session.
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)], {
      detached: true,
      stdio: 'ignore',
      env: { ...childEnv(config), MAILTK_FOREGROUND: '1' },
    });
    child.unref();
    return 0;
  }
  // -bD: the start-up lines (version, listeners) on the terminal too.
  echoStartupLines(o.mode === 'daemon-fg');
  try {
    if (process.env.MAILTK_ROLE !== 'worker') {
      const { prepareFirstStart } = await import('../daemon/first-start.ts');
      config = await prepareFirstStart(config, o);
    }
    return await startDaemon(config, o, intervalMs, listen);
  } catch (e) {
    // Every fatal start-up error is in the log too, not only on a terminal nobody watches.
    log(config, '', `SYSERR: daemon not started: ${(e as Error).message}`);
    throw e;
  }
}

async function startDaemon(config: Config, o: SendmailOptions, intervalMs: number | undefined, listen: boolean): Promise<number> {
  const opts = { intervalMs, listen, configFile: o.configFile, overrides: o.overrides };
  if (process.env.MAILTK_ROLE === 'worker' && process.send) {
    const { MasterLink } = await import('../daemon/master-link.ts');
    return runDaemon(config, { ...opts, master: await MasterLink.connect() });
  }
  if (process.geteuid?.() === 0) {
    // As root: a master that keeps root and starts the rest with less (sendmail(8), SECURITY).
    const { runMaster } = await import('../daemon/master.ts');
    return runMaster(config, { listen, argv: process.argv.slice(2), configFile: o.configFile, overrides: o.overrides });
  }
  return runDaemon(config, opts);
}

/**
 * -bs: one SMTP session on stdin/stdout; accepted mail is delivered as
 * delivery_mode says. `loaded` runs once the code is loaded: a root sendmail
 * acts as mail_owner from there on, who may not read a checkout under /root
 * (Node's loader looks at the file again at every import(), cached or not).
 */
export async function runStdioSmtp(config: Config, loaded?: () => Promise<void>): Promise<number> {
  const { runSmtpSession } = await import('../server/index.ts');
  const { startBackgroundDelivery } = await import('./submit.ts');
  await loaded?.();
  const background = config.deliveryMode !== 'queue' && mayWriteQueue(config);
  await runSmtpSession(config, process.stdin, process.stdout, {
    onAccepted: (id) => background && startBackgroundDelivery(config, id),
  });
  return 0;
}
