// Test fixture: the real daemon (`sendmail -bD` with -C) serving IMAP and POP3
// on loopback ports for one user with a password, its INBOX filled by
// sendmail -odi with one message per subject; for tests of client libraries
// (imapflow, mutt, Mail::IMAPClient) against the binaries.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setPassword } from '../src/server/index.ts';
import { makeSandbox, type RunningDaemon, run, type Sandbox, startDaemon } from './helpers.ts';
import { PASSWORD } from './mailbox/harness.ts';
import { serverConf } from './transcripts/harness.ts';

export interface ImapDaemon {
  sb: Sandbox;
  d: RunningDaemon;
  stop(): Promise<void>;
}

/** `others`: more users, with the same password and an empty INBOX. */
export async function startImapDaemon(user: string, subjects: string[], others: string[] = []): Promise<ImapDaemon> {
  const sb = makeSandbox({ users: [user, ...others] });
  fs.appendFileSync(sb.conf, [serverConf(sb), 'pop3_listen = 127.0.0.1:0', 'imap_listen = 127.0.0.1:0', 'delivery_mode = interactive', ''].join('\n'));
  for (const u of [user, ...others]) await setPassword(path.join(sb.dir, 'etc/smtp-passwd'), u, PASSWORD);
  for (const x of subjects) assert.equal(run(sb, 'sendmail', ['-odi', '-i', user], `Subject: ${x}\n\nbody ${x}\n`).status, 0);
  const d = await startDaemon(sb, ['-bD', '-q1h'], ['smtp', 'pop3', 'imap']);
  return {
    sb,
    d,
    async stop() {
      await d.stop();
      sb.cleanup();
    },
  };
}
