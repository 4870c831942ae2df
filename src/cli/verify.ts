// sendmail -bv: say what would happen to each address, without sending.
// Prints sendmail's lines ("bob... deliverable: mailer local, user bob") and
// exits 67 (EX_NOUSER) when any address cannot be delivered.

import { type Config, localDomains } from '../config/index.ts';
import { expandRecipient, inProcessLists, openAliases } from '../aliases/index.ts';
import { qualify } from '../message/index.ts';
import { EX, MailError } from '../message/status.ts';

export async function verifyAddresses(config: Config, addresses: string[]): Promise<number> {
  if (addresses.length === 0) throw new MailError('usage', 'Recipient names must be specified');
  const aliases = openAliases(config);
  const domains = localDomains(config);
  let code: number = EX.OK;
  try {
    for (const addr of addresses) {
      const dests = await expandRecipient({ config, aliases, localDomains: domains, lists: inProcessLists }, qualify(addr, config.hostname));
      for (const d of dests) {
        switch (d.kind) {
          case 'local':
            // With mailbox_transport the mailbox is the LMTP server's ("lmtp:[10.0.0.5]:24" → host [10.0.0.5]:24).
            if (config.mailboxTransport) {
              process.stdout.write(`${d.address}... deliverable: mailer lmtp, host ${config.mailboxTransport.slice(5)}, user ${d.user.name}\n`);
            } else process.stdout.write(`${d.address}... deliverable: mailer local, user ${d.user.name}\n`);
            break;
          case 'program':
            process.stdout.write(`"|${d.command}"... deliverable: mailer prog, user ${d.runAs.name}\n`);
            break;
          case 'file':
            process.stdout.write(`${d.path}... deliverable: mailer *file*, user ${d.runAs.name}\n`);
            break;
          case 'remote':
            process.stdout.write(`${d.address}... deliverable: mailer esmtp, host ${d.address.split('@').pop()}\n`);
            break;
          case 'error':
            process.stdout.write(`${d.address}... ${d.status.text}\n`);
            code = d.status.status === '5.1.1' ? EX.NOUSER : EX.UNAVAILABLE;
            break;
        }
      }
    }
  } finally {
    aliases.close();
  }
  return code;
}
