// A user agent: a process started by the root master and running with one
// user's identity only (it dropped root before loading this; see
// src/cli/agent.ts). It does what needs the identity: a delivery agent (the
// user's groups plus mail) appends to the user's mbox, runs |program and
// /file deliveries and reads .forward and :include: files; a session agent
// (the user's groups only) serves the user's POP3 and IMAP sessions after
// login (several sessions of one user share it, as Dovecot's imap processes
// can). It exits
// when it has had nothing to do for IDLE_EXIT_MS, after telling the master,
// so that no request is ever sent to a process on its way out.

import type net from 'node:net';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { GcPacer } from './gc-pacer.ts';
import { type AgentOp, type AgentReply, inProcessAgent, toWire } from '../deliver/local-agent.ts';
import { ensureInbox, type PlacedMessage } from '../mailbox/index.ts';
import type { Closable, ResumedSession } from '../server/mailbox-resume.ts';

/** How long an agent with no session and no request stays for the next one. */
const IDLE_EXIT_MS = 30_000;

/** Messages from the master to an agent. */
export type MasterToAgent =
  | { type: 'hello'; config: Config }
  | { type: 'request'; id: number; work: AgentOp }
  | { type: 'continue'; id: number; go: boolean }
  | { type: 'session'; info: SessionInfo }
  | { type: 'bye-ok' }
  | { type: 'stop' };

/** 'taken': a session's socket arrived here, so the master may close its own copy. */
export type AgentToMaster = { type: 'reply'; id: number; reply: AgentReply } | { type: 'bye' } | { type: 'taken' };

/** A POP3 or IMAP session whose login the worker checked, resumed here. */
export type SessionInfo = ResumedSession;

export async function runAgent(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) new GcPacer(gc).start();
  let config: Config | undefined;
  let busy = 0;
  let leaving = false;
  let timer: NodeJS.Timeout | undefined;
  const continues = new Map<number, (go: boolean) => void>();
  const sessions = new Set<Closable>();
  // With a callback, a send that fails because the master has just died is
  // reported to it instead of thrown as an 'error' event nobody handles: that
  // killed the agent between taking USER.lock and releasing it.
  const send = (m: AgentToMaster) => {
    if (process.connected) process.send!(m, undefined, {}, () => undefined);
  };

  const idle = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (busy > 0) return;
    timer = setTimeout(() => {
      if (busy > 0) return;
      leaving = true;
      send({ type: 'bye' });
    }, IDLE_EXIT_MS);
  };
  const track = async (work: () => Promise<void>) => {
    busy++;
    if (timer) clearTimeout(timer);
    try {
      await work();
    } finally {
      busy--;
      if (leaving && busy === 0) process.exit(0);
      idle();
    }
  };

  process.on('message', (m: MasterToAgent, handle?: net.Socket) => {
    switch (m?.type) {
      case 'hello':
        config = m.config;
        idle();
        break;
      case 'request':
        void track(() => serve(config!, m.id, m.work, send, continues));
        break;
      case 'continue':
        continues.get(m.id)?.(m.go);
        break;
      case 'session':
        send({ type: 'taken' });
        if (handle) void track(() => resume(config!, handle, m.info, sessions));
        break;
      case 'stop':
        // The daemon is stopping: sessions say goodbye, deliveries under way finish.
        for (const s of sessions) s.shutdown();
      // falls through
      case 'bye-ok':
        leaving = true;
        if (busy === 0) process.exit(0);
        break;
    }
  });
  // The master is gone (killed, crashed). A delivery waiting for the runner's go-ahead is
  // abandoned (nothing written: the mailbox lock is released and the file left as it was);
  // work under way finishes; then exit. Exiting at once would leave USER.lock behind, and
  // every delivery to that mailbox would wait for it to go stale (5 minutes).
  process.on('disconnect', () => {
    leaving = true;
    for (const go of [...continues.values()]) go(false);
    for (const s of sessions) s.shutdown();
    if (busy === 0) process.exit(0);
  });
}

/** An agent touches only its own user's spool mailbox, whatever a request says. */
function mustBeOwn(user: { name: string; uid: number }, what: string): void {
  if (user.uid !== process.geteuid?.()) throw new Error(`the agent of uid ${process.geteuid?.()} does not ${what} ${user.name}'s mailbox`);
}

async function serve(
  config: Config,
  id: number,
  work: AgentOp,
  send: (m: AgentToMaster) => void,
  continues: Map<number, (go: boolean) => void>,
): Promise<void> {
  const reply = (r: AgentReply) => send({ type: 'reply', id, reply: r });
  try {
    switch (work.op) {
      case 'mbox': {
        mustBeOwn(work.user, 'deliver to');
        // The runner records each copy's place in its queue entry before the write.
        const beforeWrite = (placed: PlacedMessage[]) =>
          new Promise<void>((resolve, reject) => {
            // The master went away before the lock was ours: no go-ahead can come.
            if (!process.connected) return reject(new Error('the master is gone; nothing written'));
            continues.set(id, (go) => {
              continues.delete(id);
              if (go) resolve();
              else reject(new Error('the queue runner could not record the delivery; nothing written'));
            });
            reply({ kind: 'placed', placed });
          });
        const verdicts = await inProcessAgent.appendToMbox(config, work.user, work.messages.map(withBuffer), beforeWrite);
        return reply({ kind: 'done', verdicts });
      }
      case 'program':
        await inProcessAgent.runProgram({ ...work.job, input: Buffer.from(work.job.input) });
        return reply({ kind: 'done' });
      case 'file':
        await inProcessAgent.appendToFile(work.file, work.runAs, withBuffer(work.message));
        return reply({ kind: 'done' });
      case 'list': {
        const list = work.kind === 'forward' ? await inProcessAgent.lists.forward(work.as, work.file) : await inProcessAgent.lists.include(work.file, work.as);
        return reply({ kind: 'done', list });
      }
      case 'inbox':
        mustBeOwn(work.user, 'make');
        ensureInbox(config, work.user);
        return reply({ kind: 'done' });
    }
  } catch (e) {
    reply({ kind: 'failed', error: toWire(e) });
  }
}

/** Structured clone brings a Buffer back as a Uint8Array. */
function withBuffer<T extends { data: Uint8Array }>(m: T): T & { data: Buffer } {
  return { ...m, data: Buffer.isBuffer(m.data) ? m.data : Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength) };
}

async function resume(config: Config, socket: net.Socket, info: SessionInfo, sessions: Set<Closable>): Promise<void> {
  const { resumeMailboxSession } = await import('../server/mailbox-resume.ts');
  try {
    await resumeMailboxSession(config, socket, info, sessions);
  } catch (e) {
    log(config, '', `SYSERR: ${info.proto} session of ${info.user}: ${(e as Error).message}`);
    socket.destroy();
  }
}
