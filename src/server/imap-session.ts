// One IMAP4rev1 session (RFC 3501), IMAP4rev2 (RFC 9051) once the client sends
// ENABLE IMAP4rev2 (see `rev2`): reading tagged commands with their
// literals (synchronizing, and LITERAL+ of RFC 7888), the states
// (not authenticated, authenticated, selected, logout), the commands valid in
// any state, STARTTLS, LOGIN and AUTHENTICATE PLAIN/LOGIN, IDLE (RFC 2177), and
// the table that sends every other command to its module: imap-mailboxes.ts
// (LIST, CREATE, APPEND, ...), imap-selected.ts (SELECT, STORE, COPY, ...),
// imap-fetch.ts and imap-search.ts. After each command, before its tagged
// reply, the selected mailbox's news goes out as untagged responses.

import type { User } from '../config/users.ts';
import { log } from '../log/index.ts';
import { SaslExchange } from './auth.ts';
import { UnknownCte } from './imap-binary.ts';
import { isBlocked } from './auth-throttle.ts';
import { fetchCommand } from './imap-fetch.ts';
import { enableCommand, idCommand } from './imap-ext.ts';
import { getQuotaCommand, getQuotaRootCommand, QUOTA_CAPABILITIES, setQuotaCommand } from './imap-quota.ts';
import { listCommand, makeSpecialFolders } from './imap-list.ts';
import { appendCommand, createCommand, deleteCommand, lsubCommand, renameCommand, statusCommand, subscribeCommand } from './imap-mailboxes.ts';
import { searchCommand } from './imap-search.ts';
import { sortCommand, THREAD_ALGORITHMS, threadCommand } from './imap-sort.ts';
import { checkCommand, checkMessageSet, closeCommand, copyCommand, expungeCommand, selectCommand, storeCommand } from './imap-selected.ts';
import type { MailboxView } from './imap-view.ts';
import { astring, type CommandParts, ParseError, type Token, tokenize } from './imap-wire.ts';
import { isLoopback } from './listen.ts';
import type { LoginResult } from './mailbox-access.ts';
import type { Conn } from './mailbox-conn.ts';
import type { SessionContext } from './mailbox-listen.ts';
import { SOFTWARE } from './replies.ts';

export type State = 'nonauth' | 'auth' | 'selected' | 'logout';

export interface Cmd {
  tag: string;
  /** Upper case; "UID FETCH" is name FETCH with uid set. */
  name: string;
  uid: boolean;
  args: Token[];
}

export interface Result {
  status: 'OK' | 'NO' | 'BAD';
  text: string;
  /** The tagged reply has been written already (STARTTLS's comes before the handshake). */
  sent?: boolean;
}

type Handler = (s: ImapSession, c: Cmd) => Promise<Result>;

const MAX_LINE = 64 << 10;
const MAX_LITERAL = 64 << 10; // outside APPEND
const MAX_BAD = 20;
const CRLF = '\r\n';
/** The rest of the event loop (timers, I/O) runs before this resolves. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export const ok = (text: string): Result => ({ status: 'OK', text });
export const no = (text: string): Result => ({ status: 'NO', text });
export const bad = (text: string): Result => ({ status: 'BAD', text });

export class ImapSession {
  state: State = 'nonauth';
  user: User | undefined;
  view: MailboxView | undefined;
  /** Extensions the client turned on with ENABLE (RFC 5161), upper case. */
  readonly enabled = new Set<string>();
  private bads = 0;
  private out: Array<string | Buffer> = [];
  private outBytes = 0;

  constructor(readonly conn: Conn, readonly ctx: SessionContext) {}

  /**
   * The client sent ENABLE IMAP4rev2 (RFC 9051 Appendix A: a server offering both
   * revisions serves IMAP4rev1 until then). The session then sends no RECENT
   * response, no \\Recent flag and no [UNSEEN n] (not in RFC 9051's grammar),
   * answers SEARCH with ESEARCH (6.4.4), sends SELECT's LIST response (6.3.2),
   * refuses STATUS RECENT, and speaks mailbox names in UTF-8 (5.1, imap-names.ts).
   */
  get rev2(): boolean {
    return this.enabled.has('IMAP4REV2');
  }

  async run(): Promise<void> {
    try {
      await this.write(`* OK [CAPABILITY ${this.capabilities()}] ${this.ctx.config.hostname} IMAP4rev1 ${SOFTWARE} ready${CRLF}`);
      await this.loop();
    } finally {
      await this.deselect();
    }
  }

  /** In the user's agent: a login the worker checked, answered here, and the session from there on. */
  async resume(user: User, method: string, tag: string): Promise<void> {
    try {
      const r = this.enterAuth(user, method);
      await this.write(`${tag} ${r.status} ${r.text}${CRLF}`);
      await this.loop();
    } finally {
      await this.deselect();
    }
  }

  private async loop(): Promise<void> {
    while (this.state !== 'logout') {
      this.conn.idle(this.ctx.config.imapTimeoutMs, () => this.autologout());
      const cmd = await this.readCommand();
      if (cmd === undefined) break;
      if (cmd !== null) await this.execute(cmd);
      if (this.bads >= MAX_BAD) {
        await this.write(`* BYE Too many bad commands${CRLF}`);
        break;
      }
    }
  }

  shutdown(): void {
    void this.write(`* BYE ${this.ctx.config.hostname} shutting down${CRLF}`).then(() => this.conn.close());
  }

  private autologout(): void {
    void this.write(`* BYE Autologout; idle for too long${CRLF}`).then(() => this.conn.close());
  }

  // ------------------------------------------------------------ output

  /** Queue an untagged line ("* ..."); sent in batches. */
  async untagged(line: string | Buffer): Promise<void> {
    await this.push(typeof line === 'string' ? `* ${line}${CRLF}` : line);
  }

  /**
   * Queue raw bytes; flushes when the batch is large, waiting for the socket
   * (a promise only then), and then lets the rest of the process have a turn:
   * a socket that keeps up resolves writes at once, and a FETCH 1:* of
   * 100,000 messages ran to its end in microtasks, with no timer firing (the
   * GC pacer, idle limits) and the user's other sessions waiting.
   */
  push(data: string | Buffer): Promise<void> | undefined {
    this.out.push(data);
    this.outBytes += data.length;
    return this.outBytes >= 128 << 10 ? this.flush().then(nextTurn) : undefined;
  }

  async flush(): Promise<void> {
    if (this.out.length === 0) return;
    const parts = this.out.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
    this.out = [];
    this.outBytes = 0;
    await this.conn.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
  }

  async write(text: string): Promise<void> {
    await this.push(text);
    await this.flush();
  }

  // ------------------------------------------------------------ input

  /** The next command; undefined when the client is gone; null after a BAD already sent. */
  private async readCommand(): Promise<Cmd | undefined | null> {
    const parts: CommandParts = [];
    let literalMax = MAX_LITERAL;
    for (;;) {
      const line = await this.conn.line(MAX_LINE);
      if (line === undefined) return undefined;
      if (line === 'too-long') return this.badLine('* BAD line too long');
      const text = line.toString('utf8');
      if (parts.length === 0 && /^\S+ APPEND /i.test(text)) literalMax = this.ctx.config.maxMessageSize;
      const m = /~?\{(\d{1,12})(\+)?\}$/.exec(text); // ~{n}: literal8 (RFC 3516 4.4), read as any literal
      if (!m) {
        parts.push(text);
        break;
      }
      parts.push(text.slice(0, m.index));
      const n = Number(m[1]);
      if (n > literalMax) {
        const tag = /^(\S+)/.exec(parts[0] as string)?.[1] ?? '*';
        // A LITERAL+ literal is on its way regardless: we cannot find the next command after it.
        if (m[2]) return this.badLine(`* BYE literal too large${CRLF}`, true);
        await this.write(`${tag} NO [TOOBIG] literal too large (${literalMax} octets at most)${CRLF}`);
        return null;
      }
      if (!m[2]) await this.write(`+ Ready for literal data${CRLF}`);
      const bytes = await this.conn.bytes(n);
      if (bytes === undefined) return undefined;
      parts.push(bytes);
    }
    return this.parseCommand(parts);
  }

  private async badLine(text: string, close = false): Promise<null> {
    this.bads++;
    await this.write(text.endsWith(CRLF) ? text : text + CRLF);
    if (close) this.state = 'logout';
    return null;
  }

  private async parseCommand(parts: CommandParts): Promise<Cmd | null> {
    const first = parts[0] as string;
    const m = /^([^\s(){%*"\\\]]+) ([A-Za-z]+)(?: (UID )?([A-Za-z]+))?(?: |$)/i.exec(first);
    if (!m) {
      const tag = /^(\S+)/.exec(first)?.[1];
      return this.badLine(tag ? `${tag} BAD missing command` : '* BAD empty command line');
    }
    let name = m[2].toUpperCase();
    let uid = false;
    let rest = first.slice(m[1].length + 1 + m[2].length);
    if (name === 'UID') {
      const sub = /^ ([A-Za-z]+)/.exec(rest);
      if (!sub) return this.badLine(`${m[1]} BAD UID needs a command`);
      name = sub[1].toUpperCase();
      uid = true;
      rest = rest.slice(sub[0].length);
    }
    try {
      return { tag: m[1], name, uid, args: tokenize([rest, ...parts.slice(1)]) };
    } catch (e) {
      return this.badLine(`${m[1]} BAD ${(e as Error).message}`);
    }
  }

  // ------------------------------------------------------------ dispatch

  private async execute(c: Cmd): Promise<void> {
    const entry = COMMANDS[c.name];
    let r: Result;
    if (!entry || (c.uid && !entry.uid)) r = bad(`unknown command ${c.uid ? 'UID ' : ''}${c.name.slice(0, 20)}`);
    else if (!entry.states.includes(this.state)) r = bad(`${c.name} is not allowed ${this.state === 'nonauth' ? 'before login' : this.state === 'auth' ? 'without a selected mailbox' : 'now'}`);
    else {
      try {
        if (this.view && c.name !== 'LOGOUT') await this.view.folder.sync();
        r = (entry.messageSet && checkMessageSet(this, c)) || (await entry.run(this, c));
      } catch (e) {
        r = this.failure(c, e);
      }
    }
    if (r.status === 'BAD') this.bads++;
    if (this.view && this.state === 'selected') {
      const quiet = !c.uid && (c.name === 'FETCH' || c.name === 'STORE' || c.name === 'SEARCH' || c.name === 'SORT' || c.name === 'THREAD');
      for (const line of this.view.updates(!quiet)) await this.untagged(line);
    }
    if (!r.sent) await this.write(`${c.tag} ${r.status} ${r.text}${CRLF}`);
  }

  private failure(c: Cmd, e: unknown): Result {
    if (e instanceof ParseError) return bad(e.message);
    if (e instanceof UnknownCte) return no(`[UNKNOWN-CTE] ${e.message}`); // the message's, not ours
    const msg = (e as Error).message;
    log(this.ctx.config, '', `imap: ${this.user?.name ?? '-'}: ${c.name} failed: ${msg}`);
    if ((e as { failure?: string }).failure === 'mailbox-locked') return no(`[INUSE] mailbox is locked; try again`);
    return no(`[SERVERBUG] ${c.name} failed: ${msg.replace(/[\r\n]/g, ' ').slice(0, 200)}`);
  }

  capabilities(): string {
    const caps = ['IMAP4rev1', 'IMAP4rev2', 'LITERAL+', 'SASL-IR', 'IDLE', 'NAMESPACE', 'UIDPLUS', 'MOVE', 'UNSELECT', 'CHILDREN', 'ID', 'ENABLE', 'SPECIAL-USE', 'LIST-EXTENDED', 'LIST-STATUS', 'ESEARCH', 'SORT', ...THREAD_ALGORITHMS.map((a) => `THREAD=${a}`), 'CONDSTORE', 'QRESYNC', 'BINARY', 'STATUS=SIZE', 'SEARCHRES', ...QUOTA_CAPABILITIES];
    if (this.state === 'nonauth') {
      if (this.ctx.tls && !this.conn.secure) caps.push('STARTTLS');
      caps.push(...(this.plaintextAllowed() ? ['AUTH=PLAIN', 'AUTH=LOGIN'] : ['LOGINDISABLED']));
    }
    return caps.join(' ');
  }

  plaintextAllowed(): boolean {
    return !this.ctx.config.mailboxLoginTls || this.conn.secure || isLoopback(this.conn.remoteAddress);
  }

  /** Leave the selected mailbox (no expunge); the folder is released. */
  async deselect(): Promise<void> {
    const v = this.view;
    this.view = undefined;
    if (this.state === 'selected') this.state = 'auth';
    if (v) await v.folder.release();
  }

  // ------------------------------------------------------------ commands of any state

  async onLogin(c: Cmd): Promise<Result> {
    if (!this.plaintextAllowed()) return no('[PRIVACYREQUIRED] LOGIN is disabled before STARTTLS');
    const name = astring(c.args[0], 'user name');
    const password = astring(c.args[1], 'password');
    return this.loggedIn(c, name, await this.ctx.access.login(name, password, { service: 'imap', client: this.conn.remoteAddress, method: 'LOGIN' }), 'LOGIN');
  }

  async onAuthenticate(c: Cmd): Promise<Result> {
    const mech = astring(c.args[0], 'mechanism').toUpperCase();
    if (mech !== 'PLAIN' && mech !== 'LOGIN') return no('unsupported authentication mechanism');
    if (!this.plaintextAllowed()) return no('[PRIVACYREQUIRED] authentication is disabled before STARTTLS');
    const sasl = new SaslExchange(mech);
    let step = sasl.start(c.args[1] ? astring(c.args[1]) : undefined);
    while ('challenge' in step) {
      await this.write(`+ ${step.challenge}${CRLF}`);
      const line = await this.conn.line(MAX_LINE);
      if (line === undefined || line === 'too-long') return bad('authentication aborted');
      step = sasl.respond(line.toString('latin1'));
    }
    if ('error' in step) return bad(step.error.lines[0]);
    const from = { service: 'imap', client: this.conn.remoteAddress, method: `AUTHENTICATE ${mech}` } as const;
    return this.loggedIn(c, step.user, await this.ctx.access.login(step.user, step.password, from), `AUTHENTICATE ${mech}`);
  }

  private async loggedIn(c: Cmd, name: string, user: LoginResult, method: string): Promise<Result> {
    // Blocked by the login throttle (auth-throttle.ts): temporary, the password was not checked.
    if (isBlocked(user)) return no(`[UNAVAILABLE] ${user.blocked}`);
    if (!user) {
      log(this.ctx.config, '', [['user', name.slice(0, 64)], ['proto', 'imap'], ['method', method], ['relay', `[${this.conn.remoteAddress}]`], ['stat', 'authentication failed']]);
      return no('[AUTHENTICATIONFAILED] Authentication failed');
    }
    if (!this.ctx.handoff) return this.enterAuth(user, method);
    // Root's worker: the rest of the session runs in the user's own process.
    const refused = await this.ctx.handoff(this.conn, { proto: 'imap', user: user.name, method, tag: c.tag });
    if (refused) return no(`[UNAVAILABLE] ${refused}`);
    this.state = 'logout';
    return { status: 'OK', text: '', sent: true };
  }

  private enterAuth(user: User, method: string): Result {
    log(this.ctx.config, '', [['user', user.name], ['proto', 'imap'], ['method', method], ['relay', `[${this.conn.remoteAddress}]`], ['stat', 'Login']]);
    this.user = user;
    this.state = 'auth';
    // RFC 6154: Drafts, Junk, Sent and Trash, made here when missing. Root's
    // worker never gets here for a user: the user's own agent does, as the user.
    makeSpecialFolders(this);
    return ok(`[CAPABILITY ${this.capabilities()}] Logged in`);
  }

  async onStartTls(c: Cmd): Promise<Result> {
    if (this.conn.secure) return bad('TLS is already active');
    if (!this.ctx.tls) return no('TLS is not available');
    await this.write(`${c.tag} OK Begin TLS negotiation now${CRLF}`);
    try {
      await this.conn.startTls(this.ctx.tls);
    } catch {
      this.state = 'logout';
    }
    return { status: 'OK', text: '', sent: true };
  }

  async onIdle(c: Cmd): Promise<Result> {
    await this.write(`+ idling${CRLF}`);
    const view = this.view;
    const tell = async () => {
      if (!view || this.view !== view) return;
      for (const line of view.updates(true)) await this.untagged(line);
      await this.flush();
    };
    const onChange = () => void tell();
    view?.folder.on('change', onChange);
    view?.folder.on('flags', onChange);
    try {
      await tell();
      // Anything but DONE ends the IDLE too (RFC 2177), as a BAD.
      const line = await this.conn.line(MAX_LINE);
      if (line === undefined || (line !== 'too-long' && line.toString('latin1').toUpperCase() === 'DONE')) return ok('IDLE terminated');
      return bad(`expected DONE after ${c.tag} IDLE`);
    } finally {
      view?.folder.off('change', onChange);
      view?.folder.off('flags', onChange);
    }
  }
}

const ANY: State[] = ['nonauth', 'auth', 'selected'];
const NONAUTH: State[] = ['nonauth'];
const AUTH: State[] = ['auth', 'selected'];
const SELECTED: State[] = ['selected'];

interface Entry {
  states: State[];
  uid?: boolean;
  /** The first argument is a message set: numbers beyond the mailbox are BAD (UID sets are exempt). */
  messageSet?: boolean;
  run: Handler;
}

/** Every command: the states it is valid in, whether a UID form exists, and its handler. */
const COMMANDS: Record<string, Entry> = {
  CAPABILITY: { states: ANY, run: async (s) => (await s.untagged(`CAPABILITY ${s.capabilities()}`), ok('CAPABILITY completed')) },
  NOOP: { states: ANY, run: async () => ok('NOOP completed') },
  ID: { states: ANY, run: idCommand },
  ENABLE: { states: ['auth'], run: enableCommand },
  LOGOUT: {
    states: ANY,
    run: async (s) => {
      await s.untagged(`BYE ${s.ctx.config.hostname} IMAP4rev1 server terminating connection`);
      await s.deselect();
      s.state = 'logout';
      return ok('LOGOUT completed');
    },
  },
  STARTTLS: { states: NONAUTH, run: (s, c) => s.onStartTls(c) },
  LOGIN: { states: NONAUTH, run: (s, c) => s.onLogin(c) },
  AUTHENTICATE: { states: NONAUTH, run: (s, c) => s.onAuthenticate(c) },
  SELECT: { states: AUTH, run: (s, c) => selectCommand(s, c, false) },
  EXAMINE: { states: AUTH, run: (s, c) => selectCommand(s, c, true) },
  CREATE: { states: AUTH, run: createCommand },
  DELETE: { states: AUTH, run: deleteCommand },
  RENAME: { states: AUTH, run: renameCommand },
  SUBSCRIBE: { states: AUTH, run: (s, c) => subscribeCommand(s, c, true) },
  UNSUBSCRIBE: { states: AUTH, run: (s, c) => subscribeCommand(s, c, false) },
  LIST: { states: AUTH, run: listCommand },
  LSUB: { states: AUTH, run: lsubCommand },
  STATUS: { states: AUTH, run: statusCommand },
  APPEND: { states: AUTH, run: appendCommand },
  NAMESPACE: { states: AUTH, run: async (s) => (await s.untagged('NAMESPACE (("" "/")) NIL NIL'), ok('NAMESPACE completed')) },
  IDLE: { states: AUTH, run: (s, c) => s.onIdle(c) },
  GETQUOTAROOT: { states: AUTH, run: getQuotaRootCommand },
  GETQUOTA: { states: AUTH, run: getQuotaCommand },
  SETQUOTA: { states: AUTH, run: setQuotaCommand },
  CHECK: { states: SELECTED, run: checkCommand },
  CLOSE: { states: SELECTED, run: (s) => closeCommand(s, true) },
  UNSELECT: { states: SELECTED, run: (s) => closeCommand(s, false) },
  EXPUNGE: { states: SELECTED, uid: true, run: expungeCommand },
  SEARCH: { states: SELECTED, uid: true, run: searchCommand },
  SORT: { states: SELECTED, uid: true, run: sortCommand },
  THREAD: { states: SELECTED, uid: true, run: threadCommand },
  FETCH: { states: SELECTED, uid: true, messageSet: true, run: fetchCommand },
  STORE: { states: SELECTED, uid: true, messageSet: true, run: storeCommand },
  COPY: { states: SELECTED, uid: true, messageSet: true, run: (s, c) => copyCommand(s, c, false) },
  MOVE: { states: SELECTED, uid: true, messageSet: true, run: (s, c) => copyCommand(s, c, true) },
};
