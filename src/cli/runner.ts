// @entry: dist/runner.js, the queue runner as a process of its own.
//
//   node dist/runner.js --serve [--agents=ipc] [--log-fd=N] [-C file] [-O k=v]...
//       the daemon's runner: a run for each request on its IPC channel
//       (src/deliver/serve-runs.ts), next-try times honoured
//   node dist/runner.js [--agents=ipc] [--log-fd=N] -q[...] [-v] [-C file] [-O k=v]...
//       one run, as `sendmail -q...` asks, for a root master (runQueueAsRoot)
//
// --agents=ipc: deliveries that need a user's identity are asked of the
// master over the IPC channel (src/deliver/local-agent.ts); without it they
// are made in this process. --log-fd: the log, opened by the master.

import { loadConfig } from '../config/index.ts';
import { inProcessAgent, ipcAgent } from '../deliver/index.ts';
import { serveRuns } from '../deliver/serve-runs.ts';
import { log, setProgramName, useLogFd } from '../log/index.ts';
import { EX, MailError } from '../message/status.ts';
import { runOnce } from './queue-run.ts';
import { parseSendmailArgs } from './sendmail-args.ts';

async function main(argv: string[]): Promise<number> {
  setProgramName('sendmail');
  const own = new Map<string, string>();
  const rest = argv.filter((a) => {
    const m = /^--(serve|agents|log-fd)(?:=(.*))?$/.exec(a);
    if (m) own.set(m[1], m[2] ?? '');
    return !m;
  });
  if (own.has('log-fd')) useLogFd(Number(own.get('log-fd')));
  const o = parseSendmailArgs(rest);
  const config = loadConfig({ file: o.configFile, overrides: o.overrides });
  let agent = inProcessAgent;
  if (own.get('agents') === 'ipc') {
    if (!process.send) throw new MailError('usage', 'runner: --agents=ipc needs an IPC channel (started by the master)');
    agent = ipcAgent();
    // The master is gone (killed, crashed): its agents' replies will never come. Stop now, as a
    // crash would: the journal holds what was done, and the locks of a process that is gone are stale at once.
    process.once('disconnect', () => {
      log(config, '', 'queue runner: the master is gone; stopping');
      process.exit(EX.TEMPFAIL);
    });
  }
  if (own.has('serve')) {
    if (!process.send) throw new MailError('usage', 'runner: --serve needs an IPC channel (started by the daemon)');
    return serveRuns(config, agent);
  }
  return runOnce(config, o, agent);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`sendmail: ${e instanceof MailError ? e.message : `internal error: ${(e as Error)?.stack ?? e}`}\n`);
    process.exit(e instanceof MailError ? e.exit : EX.SOFTWARE);
  },
);
