// @entry
// mailtk: the administrator's command, with subcommands (yargs; the only
// command that loads it, so no other start-up pays for it):
//
//   mailtk queue list [--json]        what mailq shows ('*' active, '!' held)
//   mailtk queue show ID              envelope, then the message
//   mailtk queue flush [ID...]        a queue run now, every entry due (postqueue -f / -i),
//                                     made by the running daemon when there is one
//   mailtk queue hold|release|delete|requeue ID...|ALL   (postsuper -h, -H, -d, -r)
//   mailtk status [--json]            daemon, listeners, queue counts, mailboxes
//   mailtk list create|set|del|show|add|remove|members LIST@DOMAIN   mailing lists (mailtk-list.ts)
//   mailtk sieve set|list|show|off USER@DOMAIN   a virtual user's Sieve scripts (mailtk-sieve.ts)
//   mailtk domain|user|alias|quota|admin ...  virtual domains, users, virtusertable, quotas,
//                                     domain administrators (mailtk-virtual.ts); with
//                                     --login USER@DOMAIN, a domain administrator's
//                                     change, made by the daemon
//
// Listings print text for people, or with --json the same rows as JSON.
// Colour and spinners only at a terminal. Exit codes are sysexits
// (src/message/status.ts). The work itself is in src/admin and src/queue;
// this file parses, checks who may, and prints.

import readline from 'node:readline/promises';
import yargs, { type Argv, type CommandModule } from 'yargs';
import { virtualCommands } from './mailtk-virtual.ts';
import { type Config, loadConfig } from '../config/index.ts';
import { listCommand } from './mailtk-list.ts';
import { sieveCommand } from './mailtk-sieve.ts';
import { setProgramName } from '../log/index.ts';
import { EX, MailError } from '../message/status.ts';
import { errorExit } from './error-exit.ts';
import type { QueueFilter } from './sendmail-args.ts';

const PROG = 'mailtk';

interface Common {
  config?: string;
  option?: string[];
  json?: boolean;
  login?: string;
}

/** The commands --login serves: a domain administrator's. */
const LOGIN_COMMANDS = ['domain', 'user', 'alias', 'quota', 'admin'];

function configOf(a: Common): Config {
  const overrides: Record<string, string> = {};
  for (const o of a.option ?? []) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new MailError('usage', `-O ${o}: expected key=value (see mailtk.conf(5))`);
    overrides[o.slice(0, eq).trim()] = o.slice(eq + 1).trim();
  }
  return loadConfig({ file: a.config, overrides });
}

/** stdout, waiting for a pipe to take it all before the process exits. */
function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

async function paint(): Promise<{ ok(s: string): string; bad(s: string): string; dim(s: string): string; bold(s: string): string }> {
  const id = (s: string) => s;
  if (!process.stdout.isTTY || process.env.NO_COLOR) return { ok: id, bad: id, dim: id, bold: id };
  const { default: chalk } = await import('chalk');
  return { ok: chalk.green, bad: chalk.red, dim: chalk.dim, bold: chalk.bold };
}

// ---- queue ---------------------------------------------------------------

async function queueList(a: Common & { sender?: string[]; recipient?: string[]; id?: string[] }): Promise<number> {
  const config = configOf(a);
  const filters: QueueFilter[] = [
    ...(a.id ?? []).map((substr) => ({ kind: 'I' as const, negate: false, substr })),
    ...(a.sender ?? []).map((substr) => ({ kind: 'S' as const, negate: false, substr })),
    ...(a.recipient ?? []).map((substr) => ({ kind: 'R' as const, negate: false, substr })),
  ];
  const { printQueue } = await import('./mailq.ts');
  return printQueue(config, filters, a.json ? 'json' : 'text');
}

async function queueShow(a: Common & { id: string; headers?: boolean }): Promise<number> {
  const config = configOf(a);
  const { showEntry } = await import('./mailtk-show.ts');
  return showEntry(config, a.id, { json: Boolean(a.json), headersOnly: Boolean(a.headers) });
}

/**
 * postqueue -f: the running daemon is asked for the run (anyone may ask), as
 * Postfix's flush service is; without one, this process makes it when it may
 * (root, the queue's owner). -v, which shows each delivery here, makes it
 * here when this process may.
 */
async function queueFlush(a: Common & { ids?: string[]; verbose?: boolean }): Promise<number> {
  const config = configOf(a);
  const { resolveIds } = await import('../admin/queue.ts');
  const { askForRun, flushQueue } = await import('./mailtk-flush.ts');
  const { mayWriteQueue } = await import('../queue/index.ts');
  const ids = a.ids?.length ? resolveIds(config, 'requeue', a.ids) : [];
  const mayRun = mayWriteQueue(config);
  if (!(a.verbose && mayRun)) {
    const code = await askForRun(config, PROG, ids, Boolean(a.verbose), mayRun);
    if (code !== undefined) return code;
  }
  return flushQueue(config, ids, Boolean(a.verbose));
}

async function queueAction(action: 'hold' | 'release' | 'delete' | 'requeue', a: Common & { ids?: string[]; yes?: boolean }): Promise<number> {
  const config = configOf(a);
  const admin = await import('../admin/queue.ts');
  // A command line that names no ID right is a usage error whatever the queue's state.
  if (!(a.ids ?? []).includes('ALL')) admin.resolveIds(config, action, a.ids ?? []);
  admin.mayChangeQueue(config, action);
  const ids = admin.resolveIds(config, action, a.ids ?? []);
  if (action === 'delete' && !a.yes) await confirmDelete(ids);
  // chalk is loaded before root acts as the queue's owner, who may not read a checkout under /root.
  const p = a.json ? undefined : await paint();
  const who = admin.becomeQueueOwner(config);
  const results = admin.applyAction(config, action, ids, who);
  if (!p) print(JSON.stringify({ action, results }));
  else {
    for (const r of results) {
      const line = admin.describe(action, r);
      if (r.result === 'done') print(line);
      else process.stderr.write(`${PROG}: ${p.bad(line)}\n`);
    }
    if (ids.length === 0) print(`no entries to ${action}`);
  }
  return admin.exitFor(results);
}

/** delete without -y: asked at a terminal, refused elsewhere (nothing is deleted unasked). */
async function confirmDelete(ids: string[]): Promise<void> {
  if (ids.length === 0) return;
  if (!process.stdin.isTTY || !process.stderr.isTTY) {
    throw new MailError('usage', `queue delete: not at a terminal, so not asking: nothing deleted; add -y to delete ${ids.length} entr${ids.length === 1 ? 'y' : 'ies'} without asking`);
  }
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const shown = ids.length <= 5 ? ids.join(' ') : `${ids.slice(0, 5).join(' ')} and ${ids.length - 5} more`;
  const answer = await rl.question(`Delete ${ids.length} queue entr${ids.length === 1 ? 'y' : 'ies'} (${shown})? This cannot be undone [y/N] `);
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new MailError('usage', 'queue delete: not confirmed; nothing deleted');
}

// ---- status --------------------------------------------------------------

async function status(a: Common): Promise<number> {
  const config = configOf(a);
  const { openSpinner } = await import('./progress.ts');
  const spinner = a.json ? undefined : await openSpinner('reading the queue');
  const { readStatus, formatUptime } = await import('../admin/status.ts');
  let s;
  try {
    s = readStatus(config);
  } finally {
    spinner?.stop();
  }
  if (a.json) {
    print(JSON.stringify(s, null, 2));
    return EX.OK;
  }
  const p = await paint();
  const d = s.daemon;
  const lines: string[] = [];
  if (d.running) {
    lines.push(`daemon:     ${p.ok('running')}, pid ${d.pid}${d.started ? `, up ${formatUptime(Date.now() - d.started)} (since ${new Date(d.started).toISOString()})` : ''}`);
    if (!d.listeners) lines.push(`listeners:  unknown (no start line of pid ${d.pid} in ${config.logFile}: rotated since?)`);
    else if (d.listeners.length === 0) lines.push('listeners:  none (queue runs only)');
    else for (const [i, l] of d.listeners.entries()) lines.push(`${i ? '            ' : 'listeners:  '}${l.kind.padEnd(10)} ${l.address}`);
  } else {
    const why = d.pid ? `pid file ${d.pidFile} names ${d.pid}, which is gone` : d.pidFileExists ? `no pid in ${d.pidFile}` : `no pid file ${d.pidFile}`;
    lines.push(`daemon:     ${p.bad('not running')} (${why}; start it with sendmail -bd -q20m)`);
  }
  const q = s.queue;
  const total = q.queued + q.deferred + q.active + q.held;
  lines.push(`queue:      ${total} in ${q.dir}: ${q.active} active, ${q.queued} queued, ${q.deferred} deferred, ${q.held} held; ${q.maildrop} in the maildrop, ${q.corrupt} corrupt`);
  const m = s.mailboxes;
  lines.push(`mailboxes:  ${m.mailboxes} in ${m.dir}, ${formatBytes(m.bytes)}`);
  print(lines.join('\n'));
  return EX.OK;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

// ---- the command line ----------------------------------------------------

const IDS_HELP = 'queue IDs as mailq shows them, or ALL';

function withIds(y: Argv<Common>, needed: boolean): Argv<Common & { ids?: string[] }> {
  return y.positional('ids', { describe: needed ? IDS_HELP : 'only these entries (queue IDs)', type: 'string', array: true });
}

function parser(argv: string[], done: (p: Promise<number>) => void): Argv<Common> {
  const run = <T>(f: (a: T) => Promise<number>) => (a: T) => done(f(a));
  return yargs(argv)
    .scriptName(PROG)
    .usage('$0 <command> [options]\n\nThe mailtk administrator\'s command; see mailtk(8).')
    .option('config', { alias: 'C', type: 'string', describe: 'configuration file (default /etc/mail/mailtk.conf, or MAILTK_CONFIG)', global: true })
    .option('option', { alias: 'O', type: 'string', array: true, describe: 'override a setting: key=value', global: true })
    .option('login', { alias: 'L', type: 'string', describe: "act as a domain administrator (user@domain, with that user's mail password), through the daemon", global: true })
    .middleware((a) => {
      if (a.login !== undefined && !LOGIN_COMMANDS.includes(String(a._[0]))) throw new MailError('usage', `--login is for the ${LOGIN_COMMANDS.join(', ')} commands`);
      if (a.login === '') throw new MailError('usage', '--login needs user@domain, the domain administrator');
    })
    .command('queue', 'look at and change the mail queue (as mailq, postqueue, postsuper)', (y) =>
      y
        .usage('$0 queue <list|show|flush|hold|release|delete|requeue> ...')
        .command('list', 'list the queue as mailq does (* being delivered, ! held)', (y2) =>
          y2
            .option('json', { type: 'boolean', describe: 'the same rows as JSON' })
            .option('id', { alias: 'I', type: 'string', array: true, describe: 'only entries whose ID contains this' })
            .option('sender', { alias: 'S', type: 'string', array: true, describe: 'only entries whose sender contains this' })
            .option('recipient', { alias: 'R', type: 'string', array: true, describe: 'only entries with a recipient containing this' }),
          run(queueList))
        .command('show <id>', "an entry's envelope, then its message", (y2) =>
          y2
            .positional('id', { type: 'string', describe: 'the queue ID', demandOption: true })
            .option('headers', { type: 'boolean', describe: "the message's header only" })
            .option('json', { type: 'boolean', describe: 'as JSON' }),
          run((a) => queueShow(a as Common & { id: string; headers?: boolean })))
        .command('flush [ids..]', 'deliver now: every entry, or these, whatever their next-try time (sendmail -qf)', (y2) =>
          withIds(y2, false).option('verbose', { alias: 'v', type: 'boolean', describe: 'show each delivery' }),
          run(queueFlush))
        .command('hold <ids..>', 'keep entries out of every queue run, forced ones too, until released', (y2) => withIds(y2, true).option('json', { type: 'boolean', describe: 'results as JSON' }), run((a) => queueAction('hold', a)))
        .command('release <ids..>', 'put held entries back in the queue', (y2) => withIds(y2, true).option('json', { type: 'boolean', describe: 'results as JSON' }), run((a) => queueAction('release', a)))
        .command('delete <ids..>', 'remove entries for good (logged with who did it)', (y2) =>
          withIds(y2, true)
            .option('yes', { alias: 'y', type: 'boolean', describe: 'ask nothing (needed when not at a terminal)' })
            .option('json', { type: 'boolean', describe: 'results as JSON' }),
          run((a) => queueAction('delete', a)))
        .command('requeue <ids..>', 'make deferred entries due now (the next run takes them)', (y2) => withIds(y2, true).option('json', { type: 'boolean', describe: 'results as JSON' }), run((a) => queueAction('requeue', a)))
        .demandCommand(1, 'name a queue command: list, show, flush, hold, release, delete or requeue'),
    )
    .command('status', 'the daemon, its listeners, the queue by state, the mailboxes', (y) => y.option('json', { type: 'boolean', describe: 'as JSON' }), run(status))
    .command(listCommand(run, configOf))
    .command(sieveCommand(run, configOf))
    .command(virtualCommands(run, configOf) as unknown as CommandModule<Common, Common>[])
    .demandCommand(1, 'name a command: queue, status, list, domain, user, alias, quota or admin (mailtk --help)')
    .strict()
    .help()
    .alias('help', 'h')
    .version(false)
    .wrap(process.stdout.isTTY ? Math.min(100, process.stdout.columns || 80) : null)
    .fail((msg, err) => {
      if (err) throw err;
      const e = new MailError('usage', msg);
      commandLineErrors.add(e);
      throw e;
    });
}

/** Errors in the command line itself (yargs's), which a pointer to --help may help. */
const commandLineErrors = new WeakSet<Error>();

export async function main(argv: string[]): Promise<void> {
  setProgramName(PROG);
  let work: Promise<number> | undefined;
  let code: number;
  try {
    await parser(argv, (p) => (work = p)).parseAsync();
    code = work ? await work : EX.OK; // --help prints and runs nothing
  } catch (err) {
    code = errorExit(PROG, err, (e) => (commandLineErrors.has(e) ? `${PROG}: see ${PROG} --help` : undefined));
  }
  if (process.stdout.writableLength > 0) await new Promise((r) => process.stdout.once('drain', r));
  process.exit(code);
}
