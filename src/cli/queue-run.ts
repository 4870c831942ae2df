// sendmail -q: one queue run in the foreground, then exit (cron's way); or,
// started by the daemon with an IPC channel, a run for each of its requests.
// -v prints each delivery as it happens; at a terminal a long run shows an
// ora spinner on stderr with the count done.

import type { Config } from '../config/index.ts';
import { type LocalAgent, inProcessAgent, ipcAgent, runQueue } from '../deliver/index.ts';
import { listQueueIds } from '../queue/index.ts';
import type { SendmailOptions } from './sendmail-args.ts';

const SPINNER_THRESHOLD = 20;

export async function runQueueCommand(config: Config, o: SendmailOptions, _prog: string): Promise<number> {
  if (process.geteuid?.() === 0 && !process.send) {
    // As root: the run happens as mail_owner, with this process as its master (sendmail(8), SECURITY).
    const { runQueueAsRoot } = await import('../daemon/master.ts');
    return runQueueAsRoot(config, process.argv.slice(2));
  }
  const agent = process.env.MAILTK_AGENTS === 'ipc' && process.send ? ipcAgent() : inProcessAgent;
  if (process.env.MAILTK_RUN_DUE && process.send) return serveRuns(config, agent);
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
    // The daemon's runs (MAILTK_RUN_DUE) honour next-try times; a run from the command line tries everything.
    const s = await runQueue(config, { filters: o.queueFilters, force: !process.env.MAILTK_RUN_DUE, verbose: o.verbose, say, agent });
    if (o.verbose) process.stdout.write(`Queue run: ${s.tried} entries, ${s.delivered} delivered, ${s.deferred} deferred, ${s.bounced} bounced\n`);
  } finally {
    stop();
  }
  return 0;
}

/**
 * The daemon's runner (daemon/runner.ts): a run for each request on the IPC
 * channel, one at a time, until the daemon lets go of the channel.
 */
function serveRuns(config: Config, agent: LocalAgent): Promise<number> {
  return new Promise((resolve) => {
    let busy = Promise.resolve();
    process.on('message', (m: { run?: number }) => {
      if (typeof m?.run !== 'number') return;
      busy = busy.then(async () => {
        let error: string | undefined;
        try {
          await runQueue(config, { force: false, verbose: false, agent });
        } catch (e) {
          error = (e as Error).message;
        }
        if (process.connected) process.send?.({ done: m.run, error });
      });
    });
    process.once('disconnect', () => void busy.then(() => resolve(0)));
  });
}
