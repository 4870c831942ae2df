// sendmail -q: one queue run in the foreground, then exit (cron's way).
// A plain -q takes the entries that are due; -qf, and -qI, -qR, -qS (which
// name what to run), take every matching entry whatever its next-try time.
// As root the run is made as mail_owner by the runner (dist/runner.js), with
// this process as its master. -v prints each delivery as it happens; at a
// terminal of sensible width (progress.ts) a run of more than
// SPINNER_THRESHOLD entries shows a spinner on stderr with the count done.
// Anyone else (not root, not the queue's owner) asks the running daemon for
// the run, as Postfix's sendmail -q asks its flush service: every entry is
// tried, as with -qf.

import type { Config } from '../config/index.ts';
import { type LocalAgent, inProcessAgent, runQueue } from '../deliver/index.ts';
import { EX, MailError } from '../message/status.ts';
import { listQueueIds, mayWriteQueue } from '../queue/index.ts';
import { openSpinner, spinnerAllowed } from './progress.ts';
import type { SendmailOptions } from './sendmail-args.ts';

const SPINNER_THRESHOLD = 20;

export async function runQueueCommand(config: Config, o: SendmailOptions, prog: string): Promise<number> {
  if (process.geteuid?.() === 0) {
    // As root: the run happens as mail_owner, with this process as its master (sendmail(8), SECURITY).
    const { runQueueAsRoot } = await import('../daemon/master.ts');
    return runQueueAsRoot(config, process.argv.slice(2));
  }
  // The queue's writer (its owner, or whoever would create it) runs it; anyone else asks the daemon.
  if (!mayWriteQueue(config)) {
    const { askForRun } = await import('./mailtk-flush.ts');
    if (o.queueFilters.length > 0) {
      throw new MailError('not-allowed', `only root or the queue's owner may run part of the queue (-qI, -qR, -qS); run it as root, or without a filter to have the daemon run it all`);
    }
    return (await askForRun(config, prog, [], o.verbose, false)) ?? EX.OK;
  }
  return runOnce(config, o, inProcessAgent);
}

/** One run as the command line asks, with -v's lines and, at a terminal, a spinner. */
export async function runOnce(config: Config, o: SendmailOptions, agent: LocalAgent): Promise<number> {
  let say: ((line: string) => void) | undefined;
  const spinner = o.verbose && spinnerAllowed() && listQueueIds(config).length > SPINNER_THRESHOLD ? await openSpinner('running the queue') : undefined;
  if (spinner) {
    let n = 0;
    say = (line) => {
      spinner.line(line);
      spinner.say(`running the queue: ${++n} deliveries`);
    };
  }
  try {
    const s = await runQueue(config, { filters: o.queueFilters, force: o.queueForce, verbose: o.verbose, say, agent });
    spinner?.stop(); // before the summary, so that no spinner line is left beside it
    if (o.verbose) process.stdout.write(`Queue run: ${s.tried} entries, ${s.delivered} delivered, ${s.deferred} deferred, ${s.bounced} bounced\n`);
  } finally {
    spinner?.stop();
  }
  return 0;
}
