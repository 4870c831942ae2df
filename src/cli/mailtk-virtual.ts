// mailtk's virtual domain commands (registered by mailtk.ts):
//
//   mailtk domain add|del DOMAIN, domain list [--json]
//   mailtk user add|del|passwd USER@DOMAIN, user list [DOMAIN] [--json]
//   mailtk alias add ADDRESS TARGET..., alias del ADDRESS, alias list [DOMAIN] [--json]
//   mailtk quota set USER@DOMAIN|@DOMAIN SIZE [MESSAGES], quota show USER@DOMAIN [--json]
//   mailtk admin add|del USER@DOMAIN --domain DOMAIN, admin list [--domain DOMAIN] [--json]
//
// Each command is an AdminRequest (src/admin/requests.ts), done here, or
// with --login USER@DOMAIN sent to the daemon (src/admin/daemon-client.ts),
// which makes it for a domain administrator within their domains.
// Passwords come from stdin when it is not a terminal (a line each: with
// --login, the administrator's first), else are asked without echo. --json
// prints the same rows as the text.

import type { Argv, CommandModule } from 'yargs';
import type { AdminRow } from '../admin/admins.ts';
import type { AliasRow, DomainRow } from '../admin/domains.ts';
import type { QuotaRow } from '../admin/quota.ts';
import type { AdminAnswer, AdminRequest } from '../admin/requests.ts';
import type { UserRow } from '../admin/users.ts';
import type { Config } from '../config/index.ts';
import { EX } from '../message/status.ts';
import { loginPassword, newPassword } from './mailtk-input.ts';

interface Common {
  config?: string;
  option?: string[];
  json?: boolean;
  login?: string;
}

/** A domain administrator's change waits for the daemon's password check, the edit and a welcome message. */
const ADMIN_TIMEOUT_MS = 120_000;

type Run = <T>(f: (a: T) => Promise<number>) => (a: T) => void;

/** mailtk.ts's reading of -C and -O. */
let configOf: (a: Common) => Config;

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** Rows as JSON, or as aligned columns under a header (nothing but the header when empty). */
function table<T extends object>(rows: Iterable<T>, json: boolean | undefined, columns: Array<[string, (r: T) => string]>): number {
  if (json) {
    printJson(rows);
    return EX.OK;
  }
  const cells = [columns.map(([h]) => h), ...Array.from(rows, (r) => columns.map(([, f]) => f(r)))];
  const widths = columns.map((_, i) => cells.reduce((w, c) => Math.max(w, c[i].length), 0));
  print(cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n'));
  return EX.OK;
}

/**
 * A JSON array, compact, for scripts, written as the rows come in pieces of
 * about 64 KiB (stdout to a file or pipe is written at once): at 100,000
 * users, rows that are printed and dropped cost the garbage collector little,
 * where one array and one 15 MB string of them were most of the time.
 */
function printJson(rows: Iterable<object>): void {
  let out = '[';
  let sep = '';
  for (const r of rows) {
    out += sep + JSON.stringify(r);
    sep = ',';
    if (out.length >= 65536) {
      process.stdout.write(out);
      out = '';
    }
  }
  process.stdout.write(out + ']\n');
}

const size = (n: number) => (n === 0 ? '-' : String(n));

/** The request made here, or with --login by the daemon for a domain administrator; `build` may read a new password (after the login's). */
async function perform(a: Common, build: () => AdminRequest | Promise<AdminRequest>): Promise<AdminAnswer> {
  const config = configOf(a);
  if (a.login) {
    const password = await loginPassword(a.login);
    const { askDaemon } = await import('../admin/daemon-client.ts');
    return (await askDaemon(config, { kind: 'admin', login: a.login, password, request: await build() }, ADMIN_TIMEOUT_MS)).answer ?? {};
  }
  const { performRequest } = await import('../admin/requests.ts');
  return performRequest(config, await build());
}

/** A change's answer: its line of text. */
async function change(a: Common, build: () => AdminRequest | Promise<AdminRequest>): Promise<number> {
  print((await perform(a, build)).text ?? '');
  return EX.OK;
}

/** A listing's answer: its rows. */
async function rows<T extends object>(a: Common, r: AdminRequest): Promise<Iterable<T>> {
  return ((await perform(a, () => r)).rows ?? []) as Iterable<T>;
}

function domainCommand(run: Run): CommandModule<Common, Common> {
  return {
    command: 'domain',
    describe: 'virtual domains: their users have no Unix account',
    builder: (y: Argv<Common>) =>
      y
        .command('add <domain>', 'receive mail for a virtual domain', (y2) => y2.positional('domain', { type: 'string', demandOption: true }), run((a: Common & { domain: string }) => change(a, () => ({ op: 'domain-add', domain: a.domain }))))
        .command('del <domain>', 'stop receiving mail for it (its users must be deleted first; mailboxes are kept)', (y2) => y2.positional('domain', { type: 'string', demandOption: true }), run((a: Common & { domain: string }) => change(a, () => ({ op: 'domain-del', domain: a.domain }))))
        .command('list', 'the virtual domains', (y2) => y2.option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common) => {
          return table(await rows<DomainRow>(a, { op: 'domain-list' }), a.json, [['DOMAIN', (r) => r.domain], ['USERS', (r) => String(r.users)], ['ALIASES', (r) => String(r.aliases)], ['MAILBOXES', (r) => r.mailboxes]]);
        }))
        .demandCommand(1, 'name a domain command: add, del or list'),
    handler: () => undefined,
  };
}

function userCommand(run: Run): CommandModule<Common, Common> {
  const who = (y2: Argv<Common>) => y2.positional('user', { type: 'string', demandOption: true, describe: 'user@domain' });
  return {
    command: 'user',
    describe: 'users of the virtual domains (they log in as user@domain)',
    builder: (y: Argv<Common>) =>
      y
        .command('add <user>', 'add a user; the password from stdin, or asked at a terminal', who, run((a: Common & { user: string }) => change(a, async () => ({ op: 'user-add', user: a.user, password: await newPassword() }))))
        .command('del <user>', 'delete a user and the password (the mailbox is kept)', who, run((a: Common & { user: string }) => change(a, () => ({ op: 'user-del', user: a.user }))))
        .command('passwd <user>', 'change the password (from stdin, or asked at a terminal)', who, run((a: Common & { user: string }) => change(a, async () => ({ op: 'user-passwd', user: a.user, password: await newPassword() }))))
        .command('list [domain]', 'the users, with their usage and quota', (y2) => y2.positional('domain', { type: 'string' }).option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common & { domain?: string }) => {
          return table(await rows<UserRow>(a, { op: 'user-list', ...(a.domain ? { domain: a.domain } : {}) }), a.json, [
            ['USER', (r) => r.user], ['BYTES', (r) => String(r.bytes)], ['MESSAGES', (r) => String(r.messages)],
            ['QUOTA', (r) => size(r.quotaBytes)], ['MAX MESSAGES', (r) => size(r.quotaMessages)],
          ]);
        }))
        .demandCommand(1, 'name a user command: add, del, passwd or list'),
    handler: () => undefined,
  };
}

function aliasCommand(run: Run): CommandModule<Common, Common> {
  return {
    command: 'alias',
    describe: "the virtual domains' alias table (virtusertable): user@domain or @domain (catch-all) to targets",
    builder: (y: Argv<Common>) =>
      y
        .command('add <address> <targets..>', 'map an address to users, addresses, or "error:5.1.1 text"', (y2) =>
          y2.positional('address', { type: 'string', demandOption: true }).positional('targets', { type: 'string', array: true, demandOption: true }),
          run((a: Common & { address: string; targets: string[] }) => change(a, () => ({ op: 'alias-add', address: a.address, targets: a.targets.map(String) }))))
        .command('del <address>', 'remove an entry', (y2) => y2.positional('address', { type: 'string', demandOption: true }), run((a: Common & { address: string }) => change(a, () => ({ op: 'alias-del', address: a.address }))))
        .command('list [domain]', 'the entries', (y2) => y2.positional('domain', { type: 'string' }).option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common & { domain?: string }) => {
          return table(await rows<AliasRow>(a, { op: 'alias-list', ...(a.domain ? { domain: a.domain } : {}) }), a.json, [['ADDRESS', (r) => r.address], ['TARGET', (r) => r.target]]);
        }))
        .demandCommand(1, 'name an alias command: add, del or list'),
    handler: () => undefined,
  };
}

function quotaCommand(run: Run): CommandModule<Common, Common> {
  return {
    command: 'quota',
    describe: 'mailbox quotas of virtual users: bytes and messages',
    builder: (y: Argv<Common>) =>
      y
        .command('set <user> <size> [messages]', 'set a limit (SIZE as 10M, 512k or bytes; 0 = none) for user@domain, or @domain as its default', (y2) =>
          y2.positional('user', { type: 'string', demandOption: true }).positional('size', { type: 'string', demandOption: true }).positional('messages', { type: 'string' }),
          run((a: Common & { user: string; size: string; messages?: string }) =>
            change(a, () => ({ op: 'quota-set', user: a.user, size: String(a.size), ...(a.messages === undefined ? {} : { messages: String(a.messages) }) }))))
        .command('show <user>', 'the limits and what the mailbox uses now', (y2) => y2.positional('user', { type: 'string', demandOption: true }).option('json', { type: 'boolean', describe: 'the same row as JSON' }), run(async (a: Common & { user: string }) => {
          const r = (await perform(a, () => ({ op: 'quota-show', user: a.user }))).row as QuotaRow;
          if (a.json) {
            print(JSON.stringify(r, null, 2));
            return EX.OK;
          }
          return table([r], false, [
            ['USER', (x) => x.user], ['BYTES', (x) => String(x.bytes)], ['QUOTA', (x) => size(x.quotaBytes)],
            ['MESSAGES', (x) => String(x.messages)], ['MAX MESSAGES', (x) => size(x.quotaMessages)], ['USED', (x) => `${x.percent}%`], ['FROM', (x) => x.from],
          ]);
        }))
        .demandCommand(1, 'name a quota command: set or show'),
    handler: () => undefined,
  };
}

function adminCommand(run: Run): CommandModule<Common, Common> {
  const who = (y2: Argv<Common>) => y2.positional('user', { type: 'string', demandOption: true, describe: 'user@domain: a virtual user, who logs in with their mail password' });
  return {
    command: 'admin',
    describe: 'domain administrators: virtual users who may change the users, aliases and quotas of their domains (mailtk --login)',
    builder: (y: Argv<Common>) =>
      y
        .command('add <user>', 'let a user administer a domain', (y2) => who(y2).option('domain', { type: 'string', demandOption: true, describe: 'the virtual domain' }), run((a: Common & { user: string; domain: string }) =>
          change(a, () => ({ op: 'admin-add', user: a.user, domain: a.domain }))))
        .command('del <user>', "take away a user's right over a domain, or over every domain", (y2) => who(y2).option('domain', { type: 'string', describe: 'only this domain' }), run((a: Common & { user: string; domain?: string }) =>
          change(a, () => ({ op: 'admin-del', user: a.user, ...(a.domain ? { domain: a.domain } : {}) }))))
        .command('list', 'the domain administrators and their domains', (y2) => y2.option('domain', { type: 'string', describe: 'only those of this domain' }).option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common & { domain?: string }) =>
          table(await rows<AdminRow>(a, { op: 'admin-list', ...(a.domain ? { domain: a.domain } : {}) }), a.json, [['ADMIN', (r) => r.admin], ['DOMAINS', (r) => r.domains.join(' ')]])))
        .demandCommand(1, 'name an admin command: add, del or list'),
    handler: () => undefined,
  };
}

/** The commands, for mailtk.ts's parser; `run` hands each handler's work to its main(). */
export function virtualCommands(run: Run, readConfig: (a: Common) => Config): Array<CommandModule<Common, Common>> {
  configOf = readConfig;
  return [domainCommand(run), userCommand(run), aliasCommand(run), quotaCommand(run), adminCommand(run)];
}
