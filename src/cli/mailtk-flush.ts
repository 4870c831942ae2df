// `mailtk queue flush [ID...]`: a queue run now, taking every entry (or the
// ones named) whatever its next-try time, on sendmail -qf's path: as root the
// run is made as mail_owner by the runner (dist/runner.js) with this process
// as its master; as the queue's owner, in this process. A daemon's own runs
// meanwhile skip what this run holds (entry locks), and the reverse.
// Anyone else asks the running daemon for the run (askForRun), as Postfix's
// postqueue -f and sendmail -q ask its flush service.

import type { Config } from '../config/index.ts';
import { EX, MailError } from '../message/status.ts';
import type { QueueId } from '../queue/index.ts';
import { parseSendmailArgs } from './sendmail-args.ts';

export async function flushQueue(config: Config, ids: QueueId[], verbose: boolean): Promise<number> {
  // One run for the whole queue; one per named entry (-qI matches one substring).
  const runs = ids.length ? ids.map((id) => [`-qI${id}`]) : [['-qf']];
  let worst = EX.OK as number;
  for (const args of runs) {
    const argv = [...args, ...(verbose ? ['-v'] : [])];
    let code: number;
    if (process.geteuid?.() === 0) {
      const { runQueueAsRoot } = await import('../daemon/master.ts');
      code = await runQueueAsRoot(config, argv);
    } else {
      const { runOnce } = await import('./queue-run.ts');
      const { inProcessAgent } = await import('../deliver/index.ts');
      code = await runOnce(config, parseSendmailArgs(argv), inProcessAgent);
    }
    if (code !== EX.OK) worst = code;
  }
  return worst;
}

/** A run the daemon makes may take long on a big queue; past this the command stops waiting (the run goes on). */
const FLUSH_TIMEOUT_MS = 30 * 60_000;

/**
 * The running daemon is asked for the run (anyone may ask); its exit code, or
 * undefined when no daemon answers and this process may make the run itself
 * (refused otherwise, saying so).
 */
export async function askForRun(config: Config, prog: string, ids: QueueId[], verbose: boolean, mayRun: boolean): Promise<number | undefined> {
  const { askDaemon, NoDaemon } = await import('../admin/daemon-client.ts');
  try {
    const { code } = await askDaemon(config, { kind: 'flush', ids }, FLUSH_TIMEOUT_MS);
    process.stderr.write(`${prog}: queue run made by the daemon${verbose ? ` (its deliveries are in ${config.logFile})` : ''}\n`);
    return code ?? EX.OK;
  } catch (e) {
    if (!(e instanceof NoDaemon)) throw e;
    if (!mayRun) throw new MailError('not-allowed', `${e.message}; without a daemon only root or the queue's owner may run the queue`);
    return undefined;
  }
}
