// mailtk's mailing list commands (registered by mailtk.ts; mailtk-list(5)):
//
//   mailtk list create LIST@DOMAIN --owner ADDRESS... [--policy members|anyone|moderated]
//                      [--nonmember hold|refuse] [--description TEXT] [--archive] [--verp]
//   mailtk list set LIST@DOMAIN [the options of create, each optional]
//   mailtk list del LIST@DOMAIN
//   mailtk list show LIST@DOMAIN
//   mailtk list add|remove LIST@DOMAIN ADDRESS...
//   mailtk list members LIST@DOMAIN
//
// The work is in src/admin/lists.ts; members also come and go by mail.

import type { Argv, CommandModule } from 'yargs';
import type { Config } from '../config/index.ts';
import { EX } from '../message/status.ts';
import { changeMembers, createList, deleteList, listMembers, setList, showList } from '../admin/lists.ts';

interface Common {
  config?: string;
  option?: string[];
}

type Run = <T>(f: (a: T) => Promise<number>) => (a: T) => void;
type Named = Common & { list: string };
type Settings = { owner?: string[]; policy?: 'members' | 'anyone' | 'moderated'; nonmember?: 'hold' | 'refuse'; description?: string; archive?: boolean; verp?: boolean };

function print(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

export function listCommand(run: Run, configOf: (a: Common) => Config): CommandModule<Common, Common> {
  const named = (y: Argv<Common>) => y.positional('list', { type: 'string', describe: 'the list, LIST@DOMAIN', demandOption: true }) as Argv<Named>;
  const addresses = (y: Argv<Common>) => named(y).positional('addresses', { type: 'string', array: true, describe: 'member addresses', demandOption: true });
  return {
    command: 'list',
    describe: 'mailing lists: create, delete, show, and their members (mailtk-list(5))',
    builder: (y) =>
      y
        .usage('$0 list <create|set|del|show|add|remove|members> LIST@DOMAIN ...')
        .command('create <list>', 'a new list (its addresses: LIST, LIST-request, LIST-owner, LIST-bounces)', (y2) =>
          named(y2)
            .option('owner', { type: 'string', array: true, demandOption: true, describe: 'an owner address (repeat for more)' })
            .option('policy', { choices: ['members', 'anyone', 'moderated'] as const, default: 'members' as const, describe: 'who may post' })
            .option('nonmember', { choices: ['hold', 'refuse'] as const, default: 'hold' as const, describe: "a non-member's post on a members list" })
            .option('description', { type: 'string', describe: "the list's name in List-Id" })
            .option('archive', { type: 'boolean', describe: 'keep every post in an mbox (mail -f)' })
            .option('verp', { type: 'boolean', describe: "each member's copy from LIST-bounces+MEMBER=DOMAIN (one queue entry each)" }),
          run(async (a: Named & Settings & { owner: string[] }) => {
            const s = await createList(configOf(a), a.list, { owners: a.owner, policy: a.policy, nonmember: a.nonmember, description: a.description, archive: a.archive, verp: a.verp });
            print(`created ${s.name}`);
            return EX.OK;
          }))
        .command('set <list>', "change a list's settings (only those given)", (y2) =>
          named(y2)
            .option('owner', { type: 'string', array: true, describe: 'the owner addresses (all of them; repeat for more)' })
            .option('policy', { choices: ['members', 'anyone', 'moderated'] as const, describe: 'who may post' })
            .option('nonmember', { choices: ['hold', 'refuse'] as const, describe: "a non-member's post on a members list" })
            .option('description', { type: 'string', describe: "the list's name in List-Id" })
            .option('archive', { type: 'boolean', describe: 'keep every post in an mbox (--no-archive: stop)' })
            .option('verp', { type: 'boolean', describe: 'VERP envelope senders (--no-verp: one entry for all members)' }),
          run(async (a: Named & Settings) => {
            const s = await setList(configOf(a), a.list, { owners: a.owner, policy: a.policy, nonmember: a.nonmember, description: a.description, archive: a.archive, verp: a.verp });
            print(`changed ${s.name}`);
            return EX.OK;
          }))
        .command('del <list>', 'delete a list with its members, held posts and archive', named, run(async (a: Named) => {
          deleteList(configOf(a), a.list);
          print(`deleted ${a.list}`);
          return EX.OK;
        }))
        .command('show <list>', "a list's settings and counts", named, run(async (a: Named) => {
          print(showList(configOf(a), a.list));
          return EX.OK;
        }))
        .command('members <list>', 'the members, one a line ("(disabled)" after three bounces)', named, run(async (a: Named) => {
          print(listMembers(configOf(a), a.list));
          return EX.OK;
        }))
        .command('add <list> <addresses..>', 'add members (or enable disabled ones), with no confirmation', addresses, run(async (a: Named & { addresses: string[] }) => {
          const n = await changeMembers(configOf(a), a.list, 'add', a.addresses);
          print(`${n} added to ${a.list}`);
          return EX.OK;
        }))
        .command('remove <list> <addresses..>', 'remove members', addresses, run(async (a: Named & { addresses: string[] }) => {
          const n = await changeMembers(configOf(a), a.list, 'remove', a.addresses);
          print(`${n} removed from ${a.list}`);
          return EX.OK;
        }))
        .demandCommand(1, 'name a list command: create, set, del, show, add, remove or members'),
    handler: () => undefined,
  };
}
