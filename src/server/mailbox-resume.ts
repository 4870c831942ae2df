// The user's process's half of a handed-on POP3 or IMAP session (see
// mailbox-listen.ts): the socket from the master is the session, the login
// the worker checked is answered here, and everything after runs with the
// user's own identity. This process reads no password: it logs nobody in.

import type net from 'node:net';
import type { Config } from '../config/index.ts';
import { lookupUser } from '../config/users.ts';
import { log } from '../log/index.ts';
import { ImapSession } from './imap-session.ts';
import { MailboxAccess } from './mailbox-access.ts';
import { Conn } from './mailbox-conn.ts';
import type { LoginHandoff } from './mailbox-listen.ts';
import { Pop3Session } from './pop3-session.ts';
import { ManageSieveSession } from './managesieve.ts';

export interface ResumedSession extends LoginHandoff {
  ip: string;
  secure: boolean;
}

/** Something a stopping agent can tell to say goodbye (IMAP BYE, POP3 -ERR) and close. */
export interface Closable {
  shutdown(): void;
}

export async function resumeMailboxSession(config: Config, socket: net.Socket, info: ResumedSession, sessions?: Set<Closable>): Promise<void> {
  const user = lookupUser(config, info.user);
  const conn = new Conn(socket, info.ip, info.secure);
  try {
    if (!user || user.uid !== process.geteuid?.()) {
      log(config, '', `SYSERR: ${info.proto} session for ${info.user} reached the agent of uid ${process.geteuid?.()}; refused`);
      return;
    }
    const ctx = { config, access: new MailboxAccess(config, false), tls: undefined };
    const session = info.proto === 'imap' ? new ImapSession(conn, ctx) : info.proto === 'managesieve' ? new ManageSieveSession(conn, ctx) : new Pop3Session(conn, ctx);
    sessions?.add(session);
    try {
      if (session instanceof ImapSession) await session.resume(user, info.method, info.tag ?? '*');
      else await session.resume(user, info.method);
    } finally {
      sessions?.delete(session);
    }
  } finally {
    conn.close();
  }
}
