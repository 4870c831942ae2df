// `mailtk queue flush [ID...]`: a queue run now, taking every entry (or the
// ones named) whatever its next-try time, on sendmail -qf's path: as root the
// run is made as mail_owner by the runner (dist/runner.js) with this process
// as its master; as the queue's owner, in this process. A daemon's own runs
// meanwhile skip what this run holds (entry locks), and the reverse.

import type { Config } from '../config/index.ts';
import { EX } from '../message/status.ts';
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
