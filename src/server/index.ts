// The SMTP server's public face: the daemon's listeners (smtp_listen,
// submission_listen) and one session on stdin/stdout for `sendmail -bs`
// (inetd style), plus the password file functions mailpasswd(8) uses.
// Every path into the system through here ends in the queue, and a 250
// to DATA is only ever said after the queue's commit point.

import type { Readable, Writable } from 'node:stream';
import type { Config } from '../config/index.ts';
import { invokingUser } from '../config/users.ts';
import type { QueueId } from '../queue/index.ts';
import { Policy } from './policy.ts';
import { SmtpSession } from './smtp-connection.ts';

export { startSmtpListeners, type SmtpListeners, type BoundAddress, type ListenOptions } from './listen.ts';
export { setPassword, hashPassword } from './passwd.ts';
export { AuthThrottle } from './auth-throttle.ts';

/**
 * `sendmail -bs`: SMTP on a pair of streams, for the user who ran it (who
 * may relay, as `sendmail address` may). Resolves when the session ends.
 */
export async function runSmtpSession(
  config: Config,
  input: Readable,
  output: Writable,
  opts: { onAccepted?(id: QueueId): void; login?: string } = {},
): Promise<void> {
  const policy = new Policy(config, { network: false });
  const session = new SmtpSession(
    {
      kind: 'stdio',
      policy: () => policy,
      client: { address: undefined, name: undefined, localAddress: undefined },
      login: opts.login ?? invokingUser(config).name,
      loopback: true,
      onAccepted: opts.onAccepted,
    },
    input,
    output,
  );
  try {
    await session.start();
    await session.finished;
  } finally {
    policy.close();
  }
}
// The mailbox listeners (POP3 and IMAP over the spool and ~/mail), for the daemon.
export { startMailboxListeners, type MailboxListeners, type MailboxAddress } from './mailbox-listen.ts';
