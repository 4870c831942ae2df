// mailtk's virtual domain commands (registered by mailtk.ts):
//
//   mailtk domain add|del DOMAIN, domain list [--json]
//   mailtk user add|del|passwd USER@DOMAIN, user list [DOMAIN] [--json]
//   mailtk alias add ADDRESS TARGET..., alias del ADDRESS, alias list [DOMAIN] [--json]
//   mailtk quota set USER@DOMAIN|@DOMAIN SIZE [MESSAGES], quota show USER@DOMAIN [--json]
//
// Passwords come from stdin when it is not a terminal (its first line), else
// are asked twice without echo. --json prints the same rows as the text.
// The work is in src/admin (domains.ts, users.ts, quota.ts).

import type { Argv, CommandModule } from 'yargs';
import type { Config } from '../config/index.ts';
import { EX, MailError } from '../message/status.ts';

interface Common {
  config?: string;
  option?: string[];
  json?: boolean;
}

type Run = <T>(f: (a: T) => Promise<number>) => (a: T) => void;

/** mailtk.ts's reading of -C and -O. */
let configOf: (a: Common) => Config;

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** Rows as JSON, or as aligned columns under a header (nothing but the header when empty). */
function table<T extends object>(rows: T[], json: boolean | undefined, columns: Array<[string, (r: T) => string]>): number {
  if (json) {
    print(JSON.stringify(rows, null, 2));
    return EX.OK;
  }
  const cells = [columns.map(([h]) => h), ...rows.map((r) => columns.map(([, f]) => f(r)))];
  const widths = columns.map((_, i) => Math.max(...cells.map((c) => c[i].length)));
  print(cells.map((c) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i]))).join('  ')).join('\n'));
  return EX.OK;
}

const size = (n: number) => (n === 0 ? '-' : String(n));

async function password(): Promise<string> {
  const { readPassword } = await import('./mailpasswd.ts');
  return readPassword();
}

function domainCommand(run: Run): CommandModule<Common, Common> {
  return {
    command: 'domain',
    describe: 'virtual domains: their users have no Unix account',
    builder: (y: Argv<Common>) =>
      y
        .command('add <domain>', 'receive mail for a virtual domain', (y2) => y2.positional('domain', { type: 'string', demandOption: true }), run(async (a: Common & { domain: string }) => {
          const { addDomain } = await import('../admin/domains.ts');
          const r = await addDomain(configOf(a), a.domain);
          print(r === 'added' ? `domain ${a.domain} added` : `domain ${a.domain} exists already`);
          return EX.OK;
        }))
        .command('del <domain>', 'stop receiving mail for it (its users must be deleted first; mailboxes are kept)', (y2) => y2.positional('domain', { type: 'string', demandOption: true }), run(async (a: Common & { domain: string }) => {
          const { deleteDomain } = await import('../admin/domains.ts');
          const r = await deleteDomain(configOf(a), a.domain);
          if (r === 'absent') throw new MailError('user-unknown', `${a.domain}: no such virtual domain`);
          print(`domain ${a.domain} deleted`);
          return EX.OK;
        }))
        .command('list', 'the virtual domains', (y2) => y2.option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common) => {
          const { listDomains } = await import('../admin/domains.ts');
          return table(listDomains(configOf(a)), a.json, [['DOMAIN', (r) => r.domain], ['USERS', (r) => String(r.users)], ['ALIASES', (r) => String(r.aliases)], ['MAILBOXES', (r) => r.mailboxes]]);
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
        .command('add <user>', 'add a user; the password from stdin, or asked at a terminal', who, run(async (a: Common & { user: string }) => {
          const { addUser } = await import('../admin/users.ts');
          const config = configOf(a);
          const r = await addUser(config, a.user, await password());
          if (r === 'exists') throw new MailError('usage', `${a.user} exists already (mailtk user passwd to change the password)`);
          print(`user ${a.user.toLowerCase()} added`);
          return EX.OK;
        }))
        .command('del <user>', 'delete a user and the password (the mailbox is kept)', who, run(async (a: Common & { user: string }) => {
          const { deleteUser } = await import('../admin/users.ts');
          if ((await deleteUser(configOf(a), a.user)) === 'absent') throw new MailError('user-unknown', `${a.user}: no such virtual user`);
          print(`user ${a.user.toLowerCase()} deleted`);
          return EX.OK;
        }))
        .command('passwd <user>', 'change the password (from stdin, or asked at a terminal)', who, run(async (a: Common & { user: string }) => {
          const { changePassword } = await import('../admin/users.ts');
          const config = configOf(a);
          await changePassword(config, a.user, await password());
          print(`password of ${a.user.toLowerCase()} changed`);
          return EX.OK;
        }))
        .command('list [domain]', 'the users, with their usage and quota', (y2) => y2.positional('domain', { type: 'string' }).option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common & { domain?: string }) => {
          const { listUsers } = await import('../admin/users.ts');
          return table(listUsers(configOf(a), a.domain), a.json, [
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
          run(async (a: Common & { address: string; targets: string[] }) => {
            const { addAlias } = await import('../admin/domains.ts');
            const r = await addAlias(configOf(a), a.address, a.targets.map(String));
            print(`alias ${a.address.toLowerCase()} ${r}`);
            return EX.OK;
          }))
        .command('del <address>', 'remove an entry', (y2) => y2.positional('address', { type: 'string', demandOption: true }), run(async (a: Common & { address: string }) => {
          const { deleteAlias } = await import('../admin/domains.ts');
          if ((await deleteAlias(configOf(a), a.address)) === 'absent') throw new MailError('user-unknown', `${a.address}: no such alias`);
          print(`alias ${a.address.toLowerCase()} deleted`);
          return EX.OK;
        }))
        .command('list [domain]', 'the entries', (y2) => y2.positional('domain', { type: 'string' }).option('json', { type: 'boolean', describe: 'the same rows as JSON' }), run(async (a: Common & { domain?: string }) => {
          const { listAliases } = await import('../admin/domains.ts');
          return table(listAliases(configOf(a), a.domain), a.json, [['ADDRESS', (r) => r.address], ['TARGET', (r) => r.target]]);
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
          run(async (a: Common & { user: string; size: string; messages?: string }) => {
            const { setQuota } = await import('../admin/quota.ts');
            await setQuota(configOf(a), a.user, String(a.size), a.messages === undefined ? undefined : String(a.messages));
            print(`quota of ${a.user.toLowerCase()}: ${a.size}${a.messages ? `, ${a.messages} messages` : ''}`);
            return EX.OK;
          }))
        .command('show <user>', 'the limits and what the mailbox uses now', (y2) => y2.positional('user', { type: 'string', demandOption: true }).option('json', { type: 'boolean', describe: 'the same row as JSON' }), run(async (a: Common & { user: string }) => {
          const { showQuota } = await import('../admin/quota.ts');
          const r = showQuota(configOf(a), a.user);
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

/** The four commands, for mailtk.ts's parser; `run` hands each handler's work to its main(). */
export function virtualCommands(run: Run, readConfig: (a: Common) => Config): Array<CommandModule<Common, Common>> {
  configOf = readConfig;
  return [domainCommand(run), userCommand(run), aliasCommand(run), quotaCommand(run)];
}
