// sendmail -bd / -bD / -bs / -q<interval>: hands over to src/daemon.
// -bd detaches from the terminal as sendmail does; -bD stays in the
// foreground (systemd, the README's quick start, tests).

import { spawn } from 'node:child_process';
import { type Config, childEnv, parseDuration } from '../config/index.ts';
import { runDaemon } from '../daemon/index.ts';
import { MailError } from '../message/status.ts';
import type { SendmailOptions } from './sendmail-args.ts';

export async function runDaemonMode(config: Config, o: SendmailOptions): Promise<number> {
  if (o.mode === 'smtp') throw new MailError('usage', '-bs: SMTP on standard input is not available yet');
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
  return runDaemon(config, { intervalMs, listen, configFile: o.configFile, overrides: o.overrides });
}
