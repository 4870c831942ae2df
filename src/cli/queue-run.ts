// sendmail -q: one queue run in the foreground, then exit (cron's way).
// A plain -q takes the entries that are due; -qf, and -qI, -qR, -qS (which
// name what to run), take every matching entry whatever its next-try time.
// As root the run is made as mail_owner by the runner (dist/runner.js), with
// this process as its master. -v prints each delivery as it happens; at a
// terminal a long run shows an ora spinner on stderr with the count done.

import type { Config } from '../config/index.ts';
import { type LocalAgent, inProcessAgent, runQueue } from '../deliver/index.ts';
import { listQueueIds } from '../queue/index.ts';
import type { SendmailOptions } from './sendmail-args.ts';

const SPINNER_THRESHOLD = 20;

export async function runQueueCommand(config: Config, o: SendmailOptions, _prog: string): Promise<number> {
  if (process.geteuid?.() === 0) {
    // As root: the run happens as mail_owner, with this process as its master (sendmail(8), SECURITY).
    const { runQueueAsRoot } = await import('../daemon/master.ts');
    return runQueueAsRoot(config, process.argv.slice(2));
  }
  return runOnce(config, o, inProcessAgent);
}

/** One run as the command line asks, with -v's lines and, at a terminal, a spinner. */
export async function runOnce(config: Config, o: SendmailOptions, agent: LocalAgent): Promise<number> {
  let say: ((line: string) => void) | undefined;
  let stop = () => {};
  if (o.verbose && process.stderr.isTTY && listQueueIds(config).length > SPINNER_THRESHOLD) {
    const { default: ora } = await import('ora');
    const spinner = ora({ text: 'running the queue', stream: process.stderr }).start();
    let n = 0;
    say = (line) => {
      n++;
      spinner.clear();
      process.stdout.write(line + '\n');
      spinner.text = `running the queue: ${n} deliveries`;
      spinner.render();
    };
    stop = () => spinner.stop();
  }
  try {
    const s = await runQueue(config, { filters: o.queueFilters, force: o.queueForce, verbose: o.verbose, say, agent });
    stop();
    if (o.verbose) process.stdout.write(`Queue run: ${s.tried} entries, ${s.delivered} delivered, ${s.deferred} deferred, ${s.bounced} bounced\n`);
  } finally {
    stop();
  }
  return 0;
}
