// @entry: dist/agent.js, a user agent (src/daemon/agent.ts) as the root master
// starts it: `node dist/agent.js NAME UID GID EXTRA_GID`, with an IPC channel.
// Root is given up before anything else is loaded; only root's own agent
// (deliveries to root's mailbox, reading root's .forward) keeps it, and the
// master sends it nothing else.

import { dropPrivileges } from '../daemon/drop.ts';

const [name, uid, gid, extra] = process.argv.slice(2);
if (process.geteuid?.() === 0 && Number(uid) !== 0) dropPrivileges(name, Number(uid), Number(gid), Number(extra));
const { runAgent } = await import('../daemon/agent.ts');
await runAgent();
