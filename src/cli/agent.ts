// @entry: dist/agent.js, a user agent (src/daemon/agent.ts) as the root master
// starts it: `node dist/agent.js NAME UID GID EXTRA_GID`, with an IPC channel.
// Root is given up before anything else is loaded; only root's own agent
// (deliveries to root's mailbox, reading root's .forward) keeps it, and the
// master sends it nothing else.
// `node dist/agent.js --spare`: a session agent started ahead of the login
// it will serve (a login then costs no Node start-up). It loads mailtk's own
// code as root, reads nothing else, and gives root up when the master tells
// it whose it is.

import { dropPrivileges } from '../daemon/drop.ts';

interface Become {
  type: 'become';
  name: string;
  uid: number;
  gid: number;
  extraGid: number;
  home: string;
}

const [name, uid, gid, extra] = process.argv.slice(2);
if (name === '--spare') {
  const [{ runAgent }] = await Promise.all([import('../daemon/agent.ts'), import('../server/mailbox-resume.ts')]);
  // Idle, a spare has nothing to finish when the master goes; once it serves a
  // user, runAgent's own handler finishes work under way first, so this one goes.
  const masterGone = () => process.exit(0);
  process.on('disconnect', masterGone);
  process.once('message', (m: Become) => {
    if (m?.type !== 'become' || !(m.uid > 0)) process.exit(64);
    process.off('disconnect', masterGone);
    Object.assign(process.env, { HOME: m.home, USER: m.name, LOGNAME: m.name });
    dropPrivileges(m.name, m.uid, m.gid, m.extraGid);
    void runAgent();
  });
} else {
  if (process.geteuid?.() === 0 && Number(uid) !== 0) dropPrivileges(name, Number(uid), Number(gid), Number(extra));
  const { runAgent } = await import('../daemon/agent.ts');
  await runAgent();
}
