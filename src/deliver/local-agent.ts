// The local delivery agent as the queue runner sees it: the three things it
// does with someone's identity (append to a user's mbox, run a |program, append
// to a /file) and the reading of ~/.forward and :include: files. Started by an
// ordinary user, mailtk does them in-process (everything is that user's
// anyway). Started as root, the runner is mail_owner and may do none of them:
// it asks, over its IPC channel, the root master, which hands the request to a
// process running as the identity concerned (src/daemon/agent.ts), as
// Postfix's qmgr hands recipients to local(8). One request, one reply; the
// mbox append has a middle step, so that the runner records where each copy
// will land before it is written (see appendToMbox's beforeWrite).

import type { User } from '../config/users.ts';
import type { Config } from '../config/index.ts';
import { type ListFile, type ListReader, inProcessLists } from '../aliases/index.ts';
import { appendToFile, type MboxMessage, type PlacedMessage } from '../mailbox/index.ts';
import { type Failure, MailError } from '../message/status.ts';
import { type ProgramJob, runProgram } from './program.ts';
import { deliverFiltered, type Verdict } from '../sieve/index.ts';

export interface LocalAgent {
  /** Through the user's Sieve script when there is one: a Verdict per message for the runner (src/sieve). */
  appendToMbox(config: Config, user: User, messages: MboxMessage[], beforeWrite: (placed: PlacedMessage[]) => void): Promise<Array<Verdict | undefined>>;
  runProgram(job: ProgramJob): Promise<void>;
  appendToFile(file: string, runAs: User, message: MboxMessage): Promise<void>;
  lists: ListReader;
}

export const inProcessAgent: LocalAgent = {
  appendToMbox: (config, user, messages, beforeWrite) => deliverFiltered(config, user, messages, beforeWrite),
  runProgram,
  appendToFile,
  lists: inProcessLists,
};

// ------------------------------------------------------------------ over IPC

/** Who a request is for: the account whose agent does it (the master looks its ids up itself). */
export interface AgentTarget {
  name: string;
  uid: number;
}

/** The work an agent does; `list` reads a .forward or :include: file. */
export type AgentOp =
  | { op: 'mbox'; user: User; messages: MboxMessage[] }
  | { op: 'program'; job: ProgramJob }
  | { op: 'file'; file: string; runAs: User; message: MboxMessage }
  | { op: 'list'; kind: 'forward' | 'include'; file: string; as: User }
  /** An empty spool mailbox for a user who has none, before the user's first session (mailbox/append.ts ensureInbox). */
  | { op: 'inbox'; user: User };

/** A MailError as it crosses a process boundary. */
export interface WireError {
  failure: Failure;
  detail: string;
  file?: string;
  line?: number;
  reply?: number;
  status?: string;
}

export type AgentReply =
  | { kind: 'placed'; placed: PlacedMessage[] }
  | { kind: 'done'; list?: ListFile; verdicts?: Array<Verdict | undefined> }
  | { kind: 'failed'; error: WireError };

export function toWire(e: unknown): WireError {
  if (e instanceof MailError) {
    return { failure: e.failure, detail: e.detail, file: e.where?.file, line: e.where?.line, reply: e.reply, status: e.status };
  }
  return { failure: 'internal', detail: (e as Error)?.message ?? String(e) };
}

export function fromWire(w: WireError): MailError {
  return new MailError(w.failure, w.detail, w.file ? { file: w.file, line: w.line } : undefined, { reply: w.reply, status: w.status });
}

/** Messages between the runner and the master (which forwards them to and from agents). */
export type RunnerToMaster =
  | { type: 'agent-request'; req: number; target: AgentTarget; work: AgentOp }
  | { type: 'agent-continue'; req: number; go: boolean };
export type MasterToRunner = { type: 'agent-reply'; req: number; reply: AgentReply };

function targetOf(u: User): AgentTarget {
  return { name: u.name, uid: u.uid };
}

/** The agent of a runner whose parent is mailtk's root master. */
export function ipcAgent(): LocalAgent {
  let seq = 0;
  const waiting = new Map<number, (r: AgentReply) => void>();
  const send = (m: RunnerToMaster) => process.send!(m);
  process.on('message', (m: MasterToRunner) => {
    if (m?.type === 'agent-reply') waiting.get(m.req)?.(m.reply);
  });
  process.on('disconnect', () => {
    for (const [, w] of waiting) w({ kind: 'failed', error: { failure: 'internal', detail: 'the master went away during a delivery' } });
    waiting.clear();
  });

  function request(target: User, work: AgentOp, onPlaced?: (p: PlacedMessage[]) => void): Promise<Extract<AgentReply, { kind: 'done' }>> {
    const req = ++seq;
    return new Promise((resolve, reject) => {
      waiting.set(req, (r) => {
        if (r.kind === 'placed') {
          let go = true;
          try {
            onPlaced?.(r.placed);
          } catch (e) {
            go = false;
            waiting.delete(req);
            reject(e);
          }
          send({ type: 'agent-continue', req, go });
          return;
        }
        waiting.delete(req);
        if (r.kind === 'done') resolve(r);
        else reject(fromWire(r.error));
      });
      if (!process.connected) {
        waiting.delete(req);
        reject(new MailError('internal', 'no master to hand the delivery to'));
        return;
      }
      send({ type: 'agent-request', req, target: targetOf(target), work });
    });
  }

  return {
    async appendToMbox(_config, user, messages, beforeWrite) {
      return (await request(user, { op: 'mbox', user, messages }, beforeWrite)).verdicts ?? messages.map(() => undefined);
    },
    async runProgram(job) {
      await request(job.runAs, { op: 'program', job });
    },
    async appendToFile(file, runAs, message) {
      await request(runAs, { op: 'file', file, runAs, message });
    },
    lists: {
      forward: async (user, file) => (await request(user, { op: 'list', kind: 'forward', file, as: user })).list!,
      // The system alias file's includes, and root's, are read by the runner itself (mail_owner): root's agent reads nothing but root's .forward.
      include: async (file, as) => (as && as.uid !== 0 ? (await request(as, { op: 'list', kind: 'include', file, as })).list! : inProcessLists.include(file, as)),
    },
  };
}
