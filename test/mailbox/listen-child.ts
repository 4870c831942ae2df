// A process that runs only the mailbox listeners for a config (argv[2]) and
// prints "ports pop3 imap" once listening: the large-message test measures
// this process's memory, apart from the test's own.

import { loadConfig } from '../../src/config/index.ts';
import { startMailboxListeners } from '../../src/server/index.ts';

const listeners = await startMailboxListeners(loadConfig({ file: process.argv[2] }));
const port = (kind: string) => listeners.addresses.find((a) => a.kind === kind)?.port;
process.stdout.write(`ports ${port('pop3')} ${port('imap')}\n`);
process.on('SIGTERM', () => void listeners.close(1000).then(() => process.exit(0)));
