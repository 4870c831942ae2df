// @entry
// sendmail, mailq and newaliases: one program, as in sendmail itself, with
// the mode chosen by -b (or by the name it was started as). Parses the
// command line, loads the config, runs the mode, and turns every MailError
// into "sendmail: what went wrong" on stderr and its sysexits code.
// Modes other than submission are loaded on demand to keep -t -i fast.

import { type Config, loadConfig, parseDuration } from '../config/index.ts';
import { setProgramName } from '../log/index.ts';
import { invokingUser } from '../config/users.ts';
import { MailError } from '../message/status.ts';
import { errorExit } from './error-exit.ts';
import { type SendmailOptions, parseSendmailArgs } from './sendmail-args.ts';

const USAGE = `usage: sendmail [-t] [-i] [-f sender] [-F name] [-C config] [-O key=value] [-od{b,i,q}] [-v] [--] recipient...
       sendmail -bp | -bi | -bv address... | -bs | -bd | -bD [-q interval] | -q[interval] | -qf [-q{I,R,S}substr]`;

async function runMode(config: Config, o: SendmailOptions, prog: string): Promise<number> {
  switch (o.mode) {
    case 'print-queue': {
      const { printQueue } = await import('./mailq.ts');
      return printQueue(config, o.queueFilters);
    }
    case 'init-aliases': {
      const { runNewaliases } = await import('./newaliases.ts');
      return runNewaliases(config, { verbose: o.verbose, tty: Boolean(process.stderr.isTTY) });
    }
    case 'verify': {
      const { verifyAddresses } = await import('./verify.ts');
      return verifyAddresses(config, o.recipients);
    }
    case 'smtp': {
      const { runStdioSmtp } = await import('./daemon.ts');
      return runStdioSmtp(config, () => queueAsMailOwner(config));
    }
    case 'daemon':
    case 'daemon-fg': {
      const { runDaemonMode } = await import('./daemon.ts');
      return runDaemonMode(config, o);
    }
    case 'deliver':
      if (o.queueRun) return queueRun(config, o, prog);
      {
        // Loaded first, as root: mail_owner may not read a checkout under a private home (/root, 0700).
        const { submit } = await import('./submit.ts');
        await queueAsMailOwner(config);
        return submit(config, o);
      }
    default:
      throw new MailError('usage', `mode ${o.mode as string} not supported`);
  }
}

/**
 * A submission by root writes the queue as mail_owner, whose queue it is
 * (effective ids only: the delivery that follows needs root to start it).
 */
async function queueAsMailOwner(config: Config): Promise<void> {
  if (process.geteuid?.() !== 0) return;
  const { actAsMailOwner, giveQueueTo, mailOwnerAccount } = await import('../daemon/privs.ts');
  const owner = mailOwnerAccount(config);
  giveQueueTo(config, owner);
  const { openLogNow } = await import('../log/index.ts');
  openLogNow(config);
  // Read as root what root may read and mail_owner perhaps not (a private user_db): it is cached.
  invokingUser(config);
  actAsMailOwner(owner);
}

async function queueRun(config: Config, o: SendmailOptions, prog: string): Promise<number> {
  if (o.queueInterval !== undefined) {
    if (parseDuration(o.queueInterval, 'm') === undefined) {
      throw new MailError('usage', `-q${o.queueInterval}: not a time interval (examples: 20m, 1h30m, 45s)`);
    }
    const { runDaemonMode } = await import('./daemon.ts');
    return runDaemonMode(config, o);
  }
  const { runQueueCommand } = await import('./queue-run.ts');
  return runQueueCommand(config, o, prog);
}

export async function main(argv: string[], invokedAs = 'sendmail'): Promise<void> {
  setProgramName(invokedAs === 'sendmail' ? 'sendmail' : invokedAs);
  let code: number;
  try {
    const o = parseSendmailArgs(argv, invokedAs);
    const config = loadConfig({ file: o.configFile, overrides: o.overrides });
    code = await runMode(config, o, invokedAs);
  } catch (err) {
    code = errorExit(invokedAs, err, (e) => (e.failure === 'usage' ? USAGE : undefined));
  }
  process.exitCode = code;
  // A one-shot command is done: do not let a stray handle keep cron's sendmail alive.
  // (The daemon modes return only when they stop.) A full pipe makes stdout queue what
  // it could not write (mailq | less): that must reach the reader before we exit.
  if (process.stdout.writableLength > 0) await new Promise((r) => process.stdout.once('drain', r));
  process.exit(code);
}
