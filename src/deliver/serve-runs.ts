// The daemon's queue runner, as a process: one run for each request on its
// IPC channel, one at a time, until the daemon lets go of the channel. Its
// entry point is src/cli/runner.ts (dist/runner.js); the daemon's side is
// src/daemon/runner.ts. A daemon's run honours next-try times.

import type { Config } from '../config/index.ts';
import type { LocalAgent } from './local-agent.ts';
import { runQueue } from './queue-run.ts';

export function serveRuns(config: Config, agent: LocalAgent): Promise<number> {
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
