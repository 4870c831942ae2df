// The root master's side of the user agents (agent.ts): per uid, one for deliveries and one for sessions,
// started on the first request for it, as root only long enough to give root
// up (src/cli/agent.ts). The pool forwards the runner's requests to the right
// agent and the replies back, and hands each logged-in POP3/IMAP session to
// its user's agent. It touches no file: everything it moves is bytes in
// messages and descriptors. An agent that says "bye" gets no more requests;
// one that dies fails its requests with a temporary error (the runner
// defers them) and its sessions end with it.

import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { lookupUser, systemUser, type User } from '../config/users.ts';
import { forwardFiles } from '../aliases/index.ts';
import { log } from '../log/index.ts';
import { LogThrottle } from '../server/conn-control.ts';
import type { AgentOp, AgentReply, AgentTarget } from '../deliver/local-agent.ts';
import type { AgentToMaster, MasterToAgent, SessionInfo } from './agent.ts';
import { mailGroupGid } from '../mailbox/index.ts';
import { notStarted } from './child-start.ts';
import { codeDir } from './code-dir.ts';
import type { LogSink } from './log-sink.ts';

/**
 * Deliveries need the mail group (to lock in the spool, as mail.local has it);
 * POP3 and IMAP sessions run with the user's own groups only (they lock
 * through Debian's setgid dotlockfile, as mutt does), so a session's agent is
 * not its delivery agent.
 */
type Role = 'deliver' | 'session';

/**
 * A session agent idles in I/O for hours, one per logged-in user: with one V8
 * worker thread and a small young generation it holds less per user. It keeps
 * V8's optimizing compiler: without it (--no-opt, tried before) an idle user
 * cost about 2 MB less (bench/imap-users.sh, 50 users with 1,000 messages
 * each: 20.6 against 22.8 MB a user on a loaded machine), but opening a
 * 100,000-message INBOX took 1.84x Dovecot's time for the second IMAP open
 * against 1.05x with it, and twice as long for the first (bench/mailbox-open.sh,
 * same day). --expose-gc lets a Folder that a session let go be collected
 * before the next open reads it again (folder.ts's COLLECT_AFTER). A delivery
 * agent formats whole batches.
 */
const AGENT_FLAGS: Record<Role, string[]> = {
  deliver: ['--max-semi-space-size=1'],
  session: ['--max-semi-space-size=1', '--v8-pool-size=1', '--expose-gc'],
};

interface Agent {
  child: ChildProcess;
  key: string;
  uid: number;
  requests: Set<number>;
  /** Sessions' sockets sent to it, in order, that it has not said it took: the master's copies, kept open until then. */
  handedOver: net.Socket[];
}

/** What an agent for uid 0 may do: deliver to root's own mailbox and read root's own .forward, nothing else. */
function rootMay(config: Config, root: User, work: AgentOp): boolean {
  if (work.op === 'mbox') return work.user.uid === 0;
  if (work.op === 'list') return work.kind === 'forward' && forwardFiles(config.forwardPath, root).includes(work.file);
  return false;
}

export class AgentPool {
  private agents = new Map<string, Agent>();
  private replies = new Map<number, (r: AgentReply) => void>();
  private seq = 0;
  private spare?: ChildProcess;
  private stopping = false;
  private readonly spawnLog = new LogThrottle(10_000);

  constructor(private config: Config, private logSink: LogSink | undefined) {
    // Looked up now, while descriptors are plenty: the lookup runs getent, and one that failed
    // (out of descriptors) would be remembered, leaving every delivery agent without the mail group.
    mailGroupGid();
  }

  setConfig(config: Config): void {
    this.config = config;
  }

  /** Forward one request; onReply gets every reply ('placed' before the final one). */
  request(asked: AgentTarget, work: AgentOp, onReply: (r: AgentReply) => void): number {
    const id = ++this.seq;
    const refused = (detail: string) => onReply({ kind: 'failed', error: { failure: 'file-denied', detail } });
    // The runner names the account; its ids and home come from the user database, never from the request.
    const user = lookupUser(this.config, asked.name) ?? systemUser(asked.name); // default_privs is a system account
    if (!user || user.uid !== asked.uid) {
      refused(`no account ${asked.name} with uid ${asked.uid}`);
      return id;
    }
    if (user.uid === 0 && !rootMay(this.config, user, work)) {
      refused(`refusing to ${work.op === 'program' ? 'run a program' : work.op === 'file' ? 'write a file' : `read ${work.op === 'list' ? work.file : 'this'}`} as root (deliver as default_privs)`);
      return id;
    }
    const agent = this.agentFor(user, 'deliver');
    agent.requests.add(id);
    this.replies.set(id, (r) => {
      if (r.kind !== 'placed') {
        this.replies.delete(id);
        agent.requests.delete(id);
      }
      onReply(r);
    });
    this.send(agent, { type: 'request', id, work });
    return id;
  }

  /** The runner's answer to a 'placed' reply. */
  continue(id: number, go: boolean): void {
    for (const a of this.agents.values()) if (a.requests.has(id)) this.send(a, { type: 'continue', id, go });
  }

  /** Give a logged-in session (its end of a socket pair) to the user's agent. */
  session(user: User, info: SessionInfo, socket: net.Socket): Promise<void> {
    if (user.uid === 0) throw new Error('root may not log in to POP3 or IMAP');
    const agent = this.agentFor(user, 'session');
    // Not started (out of descriptors, say) or on its way out: the caller refuses the login instead of handing over a socket nobody reads.
    if (!agent.child.connected) throw new Error(`the session agent of ${user.name} is not running`);
    // The master keeps its copy of the socket until the agent says it took its own (Node would
    // close it only on an acknowledgement that an agent dying first never sends, and the client
    // would wait forever for its login's answer); the agent's exit closes what it never took.
    agent.handedOver.push(socket);
    return new Promise((resolve, reject) => {
      agent.child.send({ type: 'session', info } satisfies MasterToAgent, socket, { keepOpen: true }, (e) => {
        if (!e) return resolve();
        agent.handedOver = agent.handedOver.filter((s) => s !== socket);
        reject(e);
      });
    });
  }

  private agentFor(target: User, role: Role): Agent {
    const key = `${role}:${target.uid}`;
    const have = this.agents.get(key);
    if (have) return have;
    const extraGid = role === 'deliver' ? (mailGroupGid() ?? target.gid) : target.gid;
    let child: ChildProcess;
    if (role === 'session' && this.spare?.connected) {
      // A login: the spare becomes this user's, and another spare is started for the next one.
      child = this.spare;
      this.spare = undefined;
      child.send({ type: 'become', name: target.name, uid: target.uid, gid: target.gid, extraGid, home: target.home });
      setImmediate(() => this.prepareSessions());
    } else {
      child = this.spawnAgent(role, [target.name, String(target.uid), String(target.gid), String(extraGid)], target.home, target.name);
    }
    const agent: Agent = { child, key, uid: target.uid, requests: new Set(), handedOver: [] };
    this.agents.set(key, agent);
    // Its requests fail with a temporary error: the runner defers them, and the next request starts another agent.
    const gone = (how: string) => {
      if (this.agents.get(key) === agent) this.agents.delete(key);
      for (const s of agent.handedOver.splice(0)) s.destroy();
      for (const id of agent.requests) {
        const r = this.replies.get(id);
        this.replies.delete(id);
        r?.({ kind: 'failed', error: { failure: 'internal', detail: `the delivery agent for ${target.name} ${how}` } });
      }
    };
    if (notStarted(child, (e) => {
      this.spawnLog.note(role, (more) => log(this.config, '', `SYSERR: cannot start a user agent for ${target.name} (uid ${target.uid}): ${e.message}; its work is deferred${more}`));
      gone(`could not be started: ${e.message}`);
    })) return agent;
    child.on('message', (m: AgentToMaster) => {
      if (m?.type === 'reply') this.replies.get(m.id)?.(m.reply);
      else if (m?.type === 'taken') agent.handedOver.shift()?.destroy();
      else if (m?.type === 'bye') {
        if (this.agents.get(key) === agent) this.agents.delete(key);
        this.send(agent, { type: 'bye-ok' });
      }
    });
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal !== 'SIGTERM') log(this.config, '', `SYSERR: user agent for ${target.name} (uid ${target.uid}) exited ${signal ?? code}`);
      gone(`exited ${signal ?? code}`);
    });
    child.on('error', () => undefined);
    this.send(agent, { type: 'hello', config: this.config });
    return agent;
  }

  private spawnAgent(role: Role, args: string[], home: string, name: string): ChildProcess {
    const child = spawn(process.execPath, [...AGENT_FLAGS[role], agentEntry(), ...args], {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc', ...(this.logSink ? [this.logSink.stdio] : [])],
      serialization: 'advanced',
      cwd: '/',
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        HOME: home,
        USER: name,
        LOGNAME: name,
        ...(this.logSink ? { MAILTK_LOG_FD: '4' } : {}),
      },
    });
    this.logSink?.attach(child);
    return child;
  }

  /** Keep one session agent started ahead (the daemon with POP3 or IMAP listeners calls this). */
  prepareSessions(): void {
    if (this.stopping || this.spare) return;
    const spare = this.spawnAgent('session', ['--spare'], '/', 'root');
    // None this time (out of descriptors): the next login starts its agent itself, and leaves a spare again.
    if (notStarted(spare, () => undefined)) return;
    spare.on('error', () => undefined);
    spare.on('exit', () => {
      if (this.spare === spare) this.spare = undefined;
    });
    this.spare = spare;
  }

  private send(agent: Agent, m: MasterToAgent): void {
    if (agent.child.connected) agent.child.send(m, (e) => e && undefined);
  }

  /** The daemon is stopping: session agents say goodbye to their sessions and exit (deliveries go on). */
  stopSessions(): void {
    this.spare?.kill('SIGTERM');
    this.spare = undefined;
    for (const [key, a] of this.agents) if (key.startsWith('session:')) this.send(a, { type: 'stop' });
  }

  /** Ask every agent to finish what it has and exit; wait for them (at most timeoutMs). */
  async stopAll(timeoutMs = 10_000): Promise<void> {
    this.stopping = true;
    this.spare?.kill('SIGTERM');
    const all = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(
      all.map(
        (a) =>
          new Promise<void>((resolve) => {
            if (a.child.exitCode !== null || a.child.signalCode !== null) return resolve();
            const t = setTimeout(() => a.child.kill('SIGKILL'), timeoutMs);
            a.child.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            this.send(a, { type: 'stop' });
          }),
      ),
    );
  }

  /** The pids of the agents alive now, by uid (tests and `mailtk status`). */
  pids(): Array<{ uid: number; pid: number }> {
    return [...this.agents.values()].map((a) => ({ uid: a.uid, pid: a.child.pid ?? 0 }));
  }
}

/** dist/agent.js, where agents can read it. */
function agentEntry(): string {
  return path.join(codeDir(), 'dist', 'agent.js');
}
