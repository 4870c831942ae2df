// mailtk's Sieve commands for virtual users (registered by mailtk.ts;
// mailtk-sieve(7)):
//
//   mailtk sieve set USER@DOMAIN [FILE|-] [--name NAME]  check, store and activate (stdin without FILE)
//   mailtk sieve list USER@DOMAIN                        the scripts, the active one marked
//   mailtk sieve show USER@DOMAIN [NAME]                 the active (or named) script
//   mailtk sieve off USER@DOMAIN                         no active script
//
// The work is in src/admin/sieve.ts.

import fs from 'node:fs';
import type { Argv, CommandModule } from 'yargs';
import { ADMIN_SCRIPT, listScripts, scriptsOff, setScript, showScript } from '../admin/sieve.ts';
import type { Config } from '../config/index.ts';
import { EX, MailError } from '../message/status.ts';

interface Common {
  config?: string;
  option?: string[];
}

type Run = <T>(f: (a: T) => Promise<number>) => (a: T) => void;
type Named = Common & { user: string };

function print(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

/** The script from FILE, or from stdin for "-" or none (yargs gives "-" as ""). */
function readScript(file: string | undefined): string {
  const stdin = !file || file === '-';
  try {
    return fs.readFileSync(stdin ? 0 : file, 'utf8');
  } catch (e) {
    throw new MailError('no-input', `cannot read ${stdin ? 'stdin' : file}: ${(e as Error).message}`);
  }
}

export function sieveCommand(run: Run, configOf: (a: Common) => Config): CommandModule<Common, Common> {
  const named = (y: Argv<Common>) => y.positional('user', { type: 'string', describe: 'the virtual user, USER@DOMAIN', demandOption: true }) as Argv<Named>;
  return {
    command: 'sieve',
    describe: "a virtual user's Sieve scripts: set, list, show, off (mailtk-sieve(7))",
    builder: (y) =>
      y
        .usage('$0 sieve <set|list|show|off> USER@DOMAIN ...')
        .command('set <user> [file]', 'check a script (FILE, or stdin), store it and make it active', (y2) =>
          named(y2)
            .positional('file', { type: 'string', describe: 'the script; - or none: stdin' })
            .option('name', { type: 'string', default: ADMIN_SCRIPT, describe: 'the name to store it under' }),
          run(async (a: Named & { file?: string; name: string }) => {
            const who = setScript(configOf(a), a.user, readScript(a.file), a.name, !a.file || a.file === '-' ? 'stdin' : a.file);
            print(`script "${a.name}" is active for ${who}`);
            return EX.OK;
          }))
        .command('list <user>', 'the scripts, the active one marked', named, run(async (a: Named) => {
          print(listScripts(configOf(a), a.user));
          return EX.OK;
        }))
        .command('show <user> [name]', 'the active script, or the one named', (y2) => named(y2).positional('name', { type: 'string' }), run(async (a: Named & { name?: string }) => {
          process.stdout.write(showScript(configOf(a), a.user, a.name));
          return EX.OK;
        }))
        .command('off <user>', 'no active script (mail is not filtered; scripts are kept)', named, run(async (a: Named) => {
          scriptsOff(configOf(a), a.user);
          print(`no active script for ${a.user.toLowerCase()}`);
          return EX.OK;
        }))
        .demandCommand(1, 'name a sieve command: set, list, show or off'),
    handler: () => undefined,
  };
}
