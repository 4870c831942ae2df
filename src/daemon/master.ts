// The root master of `sendmail -bd` (and the short-lived one of a root
// `sendmail -q`): the only process that keeps root. It reads the
// configuration, makes mail_owner's queue and secrets ready, claims the pid
// file, binds the listeners, and starts and supervises the others:
//
//   master (root) ── worker (mail_owner): SMTP and submission sessions, POP3
//                 │   and IMAP up to login, the commit log, the run schedule
//                 ├─ runner (mail_owner): pickup, queue runs, remote delivery
//                 └─ agents (one per user): local delivery, |program, /file,
//                     .forward and :include: reading, POP3/IMAP after login
//
// It touches nothing a user controls: it passes descriptors (listening
// sockets, accepted connections, socket pairs) and messages between its
// children. A child that dies is started again; SIGHUP reloads everything;
// SIGTERM lets the worker drain its sessions, then stops the rest.

import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { type Config, type ListenAddress, childArgs, childEnv, loadConfig } from '../config/index.ts';
import { lookupUser, type User } from '../config/users.ts';
import { log, logStartup } from '../log/index.ts';
import type { AgentReply, MasterToRunner, RunnerToMaster } from '../deliver/local-agent.ts';
import { bindServer } from '../server/bind.ts';
import { LogThrottle, refusalLine, refuseSocket } from '../server/conn-control.ts';
import { openFileLimit } from '../server/fd-budget.ts';
import { AgentPool } from './agents.ts';
import { notStarted } from './child-start.ts';
import { type AdminSocket, serveAdminSocket } from './admin-socket.ts';
import type { SessionInfo } from './agent.ts';
import { claimPidFile } from './pidfile.ts';
import { giveQueueTo, mailOwnerAccount, prepareSpool, shareSecrets, spawnIdentity } from './privs.ts';
import { LogSink } from './log-sink.ts';
import { ensureSpoolDir, mboxPath } from '../mailbox/index.ts';
import { DAEMON_NODE_FLAGS, QueueRunner, runnerEntry, sendmailBin } from './runner.ts';
import { SocketPairs, stopReading } from './socket-pair.ts';

export interface MasterOptions {
  listen: boolean;
  /** The daemon's own argv (after the program name), given to its worker. */
  argv: string[];
  configFile?: string;
  overrides: Record<string, string>;
}

/** Messages from the worker to the master, and back. */
export type WorkerToMaster =
  | { type: 'ready' }
  | { type: 'run'; n: number }
  | { type: 'session'; n: number; info: SessionInfo };
export type MasterToWorker =
  | { type: 'listener'; kind: string; host: string; port: number }
  | { type: 'listeners-done' }
  | { type: 'conn'; kind: string; host: string; port: number }
  | { type: 'run-done'; n: number; error?: string }
  | { type: 'session-ok'; n: number }
  | { type: 'session-refused'; n: number; why: string }
  | { type: 'reload' }
  | { type: 'stop' };

const LISTEN_KINDS = [
  ['smtp', 'smtpListen'],
  ['submission', 'submissionListen'],
  ['pop3', 'pop3Listen'],
  ['imap', 'imapListen'],
  ['pop3s', 'pop3sListen'],
  ['imaps', 'imapsListen'],
  ['managesieve', 'managesieveListen'],
] as const;

/** A worker that died is started again after this long. */
const RESTART_DELAY_MS = 1000;

interface Bound {
  kind: string;
  a: ListenAddress;
  server: net.Server;
}

export class Master {
  private owner: User;
  private logSink: LogSink;
  private bound: Bound[] = [];
  private worker?: ChildProcess;
  private runner: QueueRunner;
  private agents: AgentPool;
  private pairs?: SocketPairs;
  /** Connections sent to the worker and not yet taken by it. */
  private passing = new Map<net.Socket, string>();
  /** At most this many on their way: a quarter of the master's descriptors, and 100 at most. */
  private maxPassing = Math.min(100, Math.floor((openFileLimit() ?? 1024) / 4));
  private refusedLog = new LogThrottle(10_000);
  private releasePid?: () => Promise<void>;
  private stopping = false;
  private adminSocket?: AdminSocket;

  constructor(private config: Config, private opts: MasterOptions) {
    this.owner = mailOwnerAccount(config);
    this.logSink = new LogSink(config);
    this.agents = new AgentPool(config, this.logSink);
    this.runner = this.makeRunner(config);
  }

  private makeRunner(config: Config): QueueRunner {
    return new QueueRunner(config, {
      identity: spawnIdentity(this.owner),
      log: this.logSink,
      onSpawn: (child) => serveRunner(child, this.agents),
    });
  }

  async start(): Promise<void> {
    giveQueueTo(this.config, this.owner);
    prepareSpool(this.config, ensureSpoolDir);
    this.releasePid = await claimPidFile(this.config.pidFile);
    try {
      if (this.opts.listen) {
        const { ensureCertificate } = await import('../server/tls.ts');
        ensureCertificate(this.config);
        await this.bindAll();
        this.pairs = await SocketPairs.open();
        if (this.bound.some((b) => /^(pop3|imap)/.test(b.kind))) this.agents.prepareSessions();
      }
      shareSecrets(this.config, this.owner);
      logStartup(this.config, `master (pid ${process.pid}, root): workers run as ${this.owner.name} (uid ${this.owner.uid}); mailboxes are read as their users`);
      this.watchLostHandles();
      this.startWorker();
      // mailtk queue flush and domain administrators' changes, asked by ordinary users.
      this.adminSocket = await serveAdminSocket(() => this.config, (argv) => runQueueAsRoot(this.config, argv));
    } catch (e) {
      for (const b of this.bound) b.server.close();
      await this.releasePid();
      throw e;
    }
  }

  private async bindAll(): Promise<void> {
    for (const [kind, key] of LISTEN_KINDS) {
      for (const a of this.config[key]) {
        // Connections the master happens to accept are passed on unread.
        const server = net.createServer({ pauseOnConnect: true }, (s) => this.passConnection(kind, a, s));
        // Announced by the worker once it serves them (after its commit log's recovery).
        const port = await bindServer(this.config, server, kind, a, false);
        if (port !== undefined) this.bound.push({ kind, a, server });
      }
    }
  }

  /**
   * A connection the master accepted goes to the worker, unless the worker
   * is not there (restarting) or has not taken the last maxPassing yet (too
   * busy): then the client is told 421 here. Each one on its way holds one
   * of the master's descriptors, so a flood cannot exhaust them.
   */
  private passConnection(kind: string, a: ListenAddress, s: net.Socket): void {
    const w = this.worker;
    if (!w?.connected || this.passing.size >= this.maxPassing) {
      const why = w?.connected ? `${this.passing.size} connections waiting for the worker` : 'no worker running';
      this.refusedLog.note(why, (more) => log(this.config, '', `master: refusing connections (${why})${more}`));
      return refuseSocket(s, refusalLine(kind, this.config.hostname, 'Service not available, try again later'));
    }
    this.passing.set(s, kind);
    w.send({ type: 'conn', kind, host: a.host, port: a.port } satisfies MasterToWorker, s, (e) => {
      this.passing.delete(s);
      if (e) s.destroy();
    });
  }

  private startWorker(): void {
    const argv = this.opts.argv.filter((x) => x !== '-bd').concat(this.opts.argv.includes('-bd') ? ['-bD'] : []);
    const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, sendmailBin(), ...argv], {
      ...spawnIdentity(this.owner),
      // stdout: a foreground master's terminal, where the worker shows its listeners (-bD).
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', this.logSink.stdio],
      serialization: 'advanced',
      cwd: '/',
      env: { ...childEnv(this.config), UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '16', MAILTK_ROLE: 'worker', MAILTK_LOG_FD: '4', MAILTK_FOREGROUND: '1' },
    });
    const failed = notStarted(child, (e) => {
      this.refusedLog.note('spawn', (more) => log(this.config, '', `SYSERR: cannot start the worker: ${e.message}; trying again every ${RESTART_DELAY_MS / 1000}s${more}`));
      this.restartWorker();
    });
    if (failed) return;
    this.logSink.attach(child);
    this.worker = child;
    this.passing.clear();
    for (const b of this.bound) child.send({ type: 'listener', kind: b.kind, host: b.a.host, port: b.a.port } satisfies MasterToWorker, b.server);
    child.send({ type: 'listeners-done' } satisfies MasterToWorker);
    child.on('message', (m: WorkerToMaster) => this.fromWorker(child, m));
    child.on('error', () => undefined);
    child.on('exit', (code, signal) => {
      if (this.worker !== child) return;
      this.worker = undefined;
      // Those still queued for it are the master's again (Node keeps them when the channel closes): told 421.
      for (const [s, kind] of this.passing) refuseSocket(s, refusalLine(kind, this.config.hostname, 'Service not available, try again later'));
      this.passing.clear();
      if (this.stopping) return;
      log(this.config, '', `SYSERR: worker exited ${signal ?? code}; starting another`);
      this.restartWorker();
    });
  }

  /**
   * A connection the worker could not take in (out of descriptors: the
   * kernel drops what it cannot install, and Node closes the master's copy
   * after three tries) is closed without a reply; Node only warns on stderr,
   * which a detached daemon does not have. The listeners' descriptor reserve
   * (fd-budget.ts) is there so that this does not happen; when it does, the
   * log says so.
   */
  private watchLostHandles(): void {
    process.on('warning', (w) => {
      if (w.name !== 'SentHandleNotReceivedWarning') return;
      this.refusedLog.note('lost', (more) => log(this.config, '', `SYSERR: a connection passed to the worker did not reach it and was closed (the worker is out of file descriptors?); raise the daemon's open-file limit${more}`));
    });
  }

  private restartWorker(): void {
    setTimeout(() => !this.stopping && !this.worker && this.startWorker(), RESTART_DELAY_MS).unref();
  }

  private fromWorker(child: ChildProcess, m: WorkerToMaster): void {
    // A socket that does not reach the worker is closed here, not left open with nobody reading it.
    const reply = (r: MasterToWorker, h?: net.Socket) => {
      if (!child.connected) return void h?.destroy();
      child.send(r, h as net.Socket, (e) => e && h?.destroy());
    };
    switch (m?.type) {
      case 'run':
        this.runner.run().then(
          () => reply({ type: 'run-done', n: m.n }),
          (e: Error) => reply({ type: 'run-done', n: m.n, error: e.message }),
        );
        break;
      case 'session':
        void this.startSession(m.n, m.info, reply);
        break;
    }
  }

  /** A login the worker checked: a socket pair between the worker and the user's agent. */
  private async startSession(n: number, info: SessionInfo, reply: (r: MasterToWorker, h?: net.Socket) => void): Promise<void> {
    const user = lookupUser(this.config, info.user);
    if (!user || user.uid === 0 || !this.pairs) {
      reply({ type: 'session-refused', n, why: !user ? 'no such user' : 'root may not log in to POP3 or IMAP' });
      return;
    }
    await this.ensureInbox(user);
    let pair: net.Socket[] = [];
    try {
      pair = await this.pairs.pair();
      const [forWorker, forAgent] = pair;
      stopReading(forAgent);
      await this.agents.session(user, info, forAgent);
      reply({ type: 'session-ok', n }, forWorker);
    } catch (e) {
      for (const s of pair) s.destroy();
      log(this.config, '', `SYSERR: cannot hand the session of ${info.user} to its agent: ${(e as Error).message}`);
      reply({ type: 'session-refused', n, why: 'internal error' });
    }
  }

  /**
   * A user who has never had mail has no spool mailbox, and the session,
   * running as the user without the mail group, can neither create one in a
   * 2775 root:mail spool nor lock a missing one with dotlockfile(1): a first
   * APPEND or COPY to INBOX failed. The user's delivery agent makes it, as a
   * first delivery would (Dovecot does it with mail_privileged_group). Root
   * only looks whether the name exists; whatever is there is the session's to
   * judge. The session goes on either way.
   */
  private async ensureInbox(user: User): Promise<void> {
    if (user.name.includes('@') || fs.lstatSync(mboxPath(this.config, user.name), { throwIfNoEntry: false })) return;
    const r = await new Promise<AgentReply>((resolve) => this.agents.request({ name: user.name, uid: user.uid }, { op: 'inbox', user }, (a) => a.kind !== 'placed' && resolve(a)));
    if (r.kind === 'failed') log(this.config, '', `cannot make the mailbox of ${user.name}: ${r.error.detail}`);
  }

  reload(): void {
    try {
      const config = loadConfig({ file: this.opts.configFile, overrides: this.opts.overrides });
      this.config = config;
      // First: logrotate moved the file away before sending SIGHUP; every child's next line goes to the new one.
      this.logSink.reopen(config);
      shareSecrets(config, this.owner);
      this.agents.setConfig(config);
      void this.runner.stop(config);
      if (this.worker?.connected) this.worker.send({ type: 'reload' } satisfies MasterToWorker);
      log(config, '', 'master: configuration reloaded on SIGHUP');
    } catch (e) {
      log(this.config, '', `SIGHUP: configuration not reloaded: ${(e as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.adminSocket?.close();
    for (const b of this.bound) b.server.close();
    const w = this.worker;
    if (w && w.pid !== undefined && w.exitCode === null && w.signalCode === null) {
      const exited = new Promise((r) => w.once('exit', r));
      if (w.connected) w.send({ type: 'stop' } satisfies MasterToWorker);
      else w.kill('SIGTERM');
      // Meanwhile the users' sessions say goodbye, which ends the worker's relays for them.
      this.agents.stopSessions();
      await exited;
    }
    this.pairs?.close();
    await this.runner.stop();
    await this.agents.stopAll();
    log(this.config, '', 'master: stopped');
    this.logSink.close();
    await this.releasePid?.();
  }
}

/** `sendmail -bd` as root: the master until SIGTERM. */
export async function runMaster(config: Config, opts: MasterOptions): Promise<number> {
  const m = new Master(config, opts);
  await m.start();
  return new Promise((resolve) => {
    const stop = () => void m.stop().then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    process.on('SIGHUP', () => m.reload());
  });
}

/**
 * A root `sendmail -q` (cron's), `-qI` (a root submission's background
 * delivery) or `-odi`: the runner (dist/runner.js) makes the run as
 * mail_owner, with this process as its master for the deliveries that need
 * a user's identity.
 */
export async function runQueueAsRoot(config: Config, argv: string[]): Promise<number> {
  const owner = mailOwnerAccount(config);
  giveQueueTo(config, owner);
  prepareSpool(config, ensureSpoolDir);
  const sink = new LogSink(config);
  const agents = new AgentPool(config, sink);
  const child = spawn(process.execPath, [runnerEntry(), '--agents=ipc', '--log-fd=4', ...argv, ...childArgs(config)], {
    ...spawnIdentity(owner),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', sink.stdio],
    serialization: 'advanced',
    cwd: '/',
    env: childEnv(config),
  });
  sink.attach(child);
  serveRunner(child, agents);
  const code = await new Promise<number>((resolve) => {
    child.on('error', (e) => {
      log(config, '', `SYSERR: cannot start the queue run as ${owner.name}: ${e.message}`);
      resolve(71);
    });
    // 'close': after the log pipe's last line too.
    child.on('close', (c, s) => resolve(c ?? (s ? 75 : 0)));
  });
  await agents.stopAll();
  sink.close();
  return code;
}

/** Carry a runner's requests to the agents and their replies back. */
function serveRunner(child: ChildProcess, agents: AgentPool): void {
  const ids = new Map<number, number>();
  child.on('message', (m: RunnerToMaster) => {
    if (m?.type === 'agent-request') {
      const id = agents.request(m.target, m.work, (reply) => {
        if (reply.kind !== 'placed') ids.delete(m.req);
        if (child.connected) child.send({ type: 'agent-reply', req: m.req, reply } satisfies MasterToRunner);
      });
      ids.set(m.req, id);
    } else if (m?.type === 'agent-continue') {
      const id = ids.get(m.req);
      if (id !== undefined) agents.continue(id, m.go);
    }
  });
}
