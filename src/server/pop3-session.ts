// One POP3 session (RFC 1939, with RFC 2449 CAPA and response codes, RFC 2595
// STLS, RFC 5034 AUTH): the AUTHORIZATION and TRANSACTION states and the
// UPDATE state entered only by QUIT. The maildrop is the user's INBOX, locked
// for the session against other POP3 sessions (pop3-lock.ts) but not against
// delivery; its messages are numbered once at login, and mail arriving later
// waits for the next session. RETR and TOP copy the message out under the
// mailbox dotlock and send it after (copy-out.ts), so that deliveries never
// wait on a slow client. DELE only marks; QUIT removes the marked
// messages in one rewrite that keeps what arrived meanwhile. A dropped
// connection or the autologout removes nothing. Replies are worded as RFC
// 1939's examples, so the seed's transcript reads the same. The greeting
// offers APOP (its <timestamp>) only when apop_secrets_file can serve it.

import fs from 'node:fs';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { CopiedBytes, DotStuffer, FLAG, type Folder, type MessageRecord, openFolder, ServedConverter, toServed, visibleHeader } from '../mailbox/index.ts';
import type { User } from '../config/users.ts';
import { SaslExchange } from './auth.ts';
import type { Conn } from './mailbox-conn.ts';
import { isBlocked } from './auth-throttle.ts';
import { type LoginFrom, type LoginResult, apopFilePrivate } from './mailbox-access.ts';
import type { SessionContext } from './mailbox-listen.ts';
import { isLoopback } from './listen.ts';
import { lockMaildrop, type MaildropLock } from './pop3-lock.ts';
import { SOFTWARE } from './replies.ts';

/** RFC 2449 4: command lines up to 255 octets; SASL responses may be longer. */
const MAX_LINE = 8192;
const MAX_ERRORS = 20;
const CRLF = '\r\n';

type State = 'authorization' | 'transaction';

interface Command {
  states: State[];
  run(s: Pop3Session, arg: string): Promise<void>;
}

let greetings = 0;

export class Pop3Session {
  state: State = 'authorization';
  private userName: string | undefined;
  private user: User | undefined;
  private folder: Folder | undefined;
  private lock: MaildropLock | undefined;
  /** The maildrop as at login (RFC 1939 numbers), and which of them DELE marked: no object a message. */
  private messages: MessageRecord[] = [];
  private deleted = new Uint8Array(0);
  private readonly timestamp: string;
  /** The greeting offered APOP (carried the timestamp). */
  private apopOffered = false;
  private errors = 0;
  private done = false;
  private retrieved = 0;

  constructor(readonly conn: Conn, readonly ctx: SessionContext) {
    this.timestamp = `<${process.pid}.${Date.now()}${String(greetings++ % 1000).padStart(3, '0')}@${ctx.config.hostname}>`;
  }

  async run(): Promise<void> {
    try {
      this.apopOffered = apopAvailable(this.ctx.config);
      await this.reply(`+OK POP3 server ready${this.apopOffered ? ` ${this.timestamp}` : ''}`);
      await this.loop();
    } finally {
      await this.end(false);
    }
  }

  /** In the user's agent: a login the worker checked; the maildrop is opened here. */
  async resume(user: User, method: string): Promise<void> {
    try {
      if (await this.enterTransaction(user, method)) await this.loop();
    } finally {
      await this.end(false);
    }
  }

  private async loop(): Promise<void> {
    while (!this.done) {
      this.conn.idle(this.ctx.config.pop3TimeoutMs, () => this.autologout());
      const line = await this.conn.line(MAX_LINE);
      if (line === undefined) break;
      if (line === 'too-long') await this.err('line too long');
      else await this.dispatch(line.toString('utf8'));
      if (this.errors >= MAX_ERRORS) {
        await this.err('too many errors; closing');
        break;
      }
    }
  }

  /** The daemon is stopping: say so and close without UPDATE. */
  shutdown(): void {
    void this.conn.write(`-ERR [SYS/TEMP] ${this.ctx.config.hostname} POP3 server shutting down${CRLF}`).then(() => this.conn.close());
  }

  private autologout(): void {
    // RFC 1939 3: on timeout the server closes WITHOUT entering the UPDATE state.
    void this.conn.write(`-ERR autologout: idle for too long${CRLF}`).then(() => this.conn.close());
  }

  private async dispatch(line: string): Promise<void> {
    const m = /^(\S+)(?: (.*))?$/.exec(line.trimEnd());
    const verb = m?.[1].toUpperCase() ?? '';
    const cmd = COMMANDS[verb];
    if (!cmd) return this.err(verb ? `unknown command "${verb.slice(0, 40)}"` : 'empty command');
    if (!cmd.states.includes(this.state)) return this.err(`${verb} is not allowed in the ${this.state.toUpperCase()} state`);
    await cmd.run(this, m?.[2] ?? '');
  }

  reply(text: string): Promise<void> {
    return this.conn.write(text + CRLF);
  }

  err(text: string): Promise<void> {
    this.errors++;
    return this.reply(`-ERR ${text}`);
  }

  // ------------------------------------------------------------ AUTHORIZATION

  /** True when passwords may be sent now (mailbox_login_tls). */
  plaintextAllowed(): boolean {
    return !this.ctx.config.mailboxLoginTls || this.conn.secure || isLoopback(this.conn.remoteAddress);
  }

  async onUser(arg: string): Promise<void> {
    if (!this.plaintextAllowed()) return this.err('[AUTH] plaintext authentication disallowed on non-secure connections; use STLS');
    if (!arg || arg.length > 255) return this.err('USER needs a name');
    this.userName = arg;
    await this.reply('+OK User name accepted, password please');
  }

  async onPass(arg: string): Promise<void> {
    const name = this.userName;
    this.userName = undefined;
    if (name === undefined) return this.err('USER first');
    await this.loggedIn(name, await this.ctx.access.login(name, arg, this.from('USER')), 'USER');
  }

  async onApop(arg: string): Promise<void> {
    if (!this.apopOffered) return this.err('[AUTH] APOP is not available here (no timestamp in the greeting)');
    const m = /^(\S+) ([0-9A-Fa-f]{32})$/.exec(arg);
    if (!m) return this.err('APOP needs a name and an MD5 digest');
    await this.loggedIn(m[1], await this.ctx.access.apop(m[1], this.timestamp, m[2].toLowerCase(), this.from('APOP')), 'APOP');
  }

  async onAuth(arg: string): Promise<void> {
    if (arg === '') return this.reply(`+OK${CRLF}PLAIN${CRLF}LOGIN${CRLF}.`);
    if (!this.plaintextAllowed()) return this.err('[AUTH] plaintext authentication disallowed on non-secure connections; use STLS');
    const [mech, initial] = arg.split(' ');
    if (mech.toUpperCase() !== 'PLAIN' && mech.toUpperCase() !== 'LOGIN') return this.err('unsupported authentication mechanism');
    const sasl = new SaslExchange(mech.toUpperCase() as 'PLAIN' | 'LOGIN');
    let step = sasl.start(initial);
    while ('challenge' in step) {
      await this.reply(`+ ${step.challenge}`);
      const line = await this.conn.line(MAX_LINE);
      if (line === undefined || line === 'too-long') return this.err('authentication aborted');
      step = sasl.respond(line.toString('latin1'));
    }
    if ('error' in step) return this.err(step.error.lines[0]);
    await this.loggedIn(step.user, await this.ctx.access.login(step.user, step.password, this.from(`AUTH ${mech.toUpperCase()}`)), `AUTH ${mech.toUpperCase()}`);
  }

  private from(method: string): LoginFrom {
    return { service: 'pop3', client: this.conn.remoteAddress, method };
  }

  private async loggedIn(name: string, user: LoginResult, method: string): Promise<void> {
    const relay = `[${this.conn.remoteAddress}]`;
    // Blocked by the login throttle: a temporary refusal, so that the client does not ask for a new password.
    if (isBlocked(user)) return this.err(`[SYS/TEMP] ${user.blocked}`);
    if (!user) {
      log(this.ctx.config, '', [['user', name.slice(0, 64)], ['proto', 'pop3'], ['method', method], ['relay', relay], ['stat', 'authentication failed']]);
      return this.err('[AUTH] authentication failed');
    }
    if (!this.ctx.handoff) {
      await this.enterTransaction(user, method);
      return;
    }
    // Root's worker: the rest of the session runs in the user's own process.
    const refused = await this.ctx.handoff(this.conn, { proto: 'pop3', user: user.name, method });
    if (refused) return this.err(`[SYS/TEMP] ${refused}`);
    this.done = true;
  }

  /** Lock and open the maildrop, then +OK; false (after -ERR) when it cannot be. */
  private async enterTransaction(user: User, method: string): Promise<boolean> {
    const relay = `[${this.conn.remoteAddress}]`;
    const spec = this.ctx.access.inbox(user);
    const lock = lockMaildrop(spec.mbox, spec.indexDir, spec.owner, spec.beneath?.index);
    if (!lock) {
      await this.err('[IN-USE] maildrop already locked');
      return false;
    }
    try {
      this.folder = await openFolder(spec);
      await this.folder.sync();
    } catch (e) {
      lock.release();
      await this.folder?.release();
      this.folder = undefined;
      log(this.ctx.config, '', `pop3: cannot open maildrop of ${user.name}: ${(e as Error).message}`);
      await this.err('[SYS/TEMP] cannot open the maildrop');
      return false;
    }
    this.lock = lock;
    this.user = user;
    this.messages = this.folder.records.slice();
    this.deleted = new Uint8Array(this.messages.length);
    this.state = 'transaction';
    log(this.ctx.config, '', [['user', user.name], ['proto', 'pop3'], ['method', method], ['relay', relay], ['msgs', this.messages.length], ['stat', 'Login']]);
    const { count, octets } = this.totals();
    await this.reply(`+OK ${user.name}'s maildrop has ${plural(count, 'message')} (${octets} octets)`);
    return true;
  }

  async onStls(): Promise<void> {
    if (this.conn.secure) return this.err('already using TLS');
    if (!this.ctx.tls) return this.err('[SYS/TEMP] TLS not available');
    await this.reply('+OK Begin TLS negotiation now');
    try {
      await this.conn.startTls(this.ctx.tls);
    } catch {
      this.done = true;
    }
  }

  async onCapa(): Promise<void> {
    const caps = ['TOP', 'UIDL', 'RESP-CODES', 'AUTH-RESP-CODE', 'PIPELINING', 'EXPIRE NEVER'];
    if (this.state === 'authorization' && this.plaintextAllowed()) caps.push('USER', 'SASL PLAIN LOGIN');
    if (this.state === 'authorization' && this.ctx.tls && !this.conn.secure) caps.push('STLS');
    caps.push(`IMPLEMENTATION ${SOFTWARE.replace(' ', '-')}`);
    await this.reply(['+OK Capability list follows', ...caps, '.'].join(CRLF));
  }

  // ------------------------------------------------------------ TRANSACTION

  private totals(): { count: number; octets: number } {
    let count = 0;
    let octets = 0;
    for (let i = 0; i < this.messages.length; i++) {
      if (this.deleted[i]) continue;
      count++;
      octets += this.messages[i].size;
    }
    return { count, octets };
  }

  /** Message n (1-based, not deleted), or undefined after an -ERR has been sent. */
  private async pick(arg: string): Promise<{ n: number; rec: MessageRecord } | undefined> {
    const n = /^\d{1,10}$/.test(arg) ? Number(arg) : NaN;
    const rec = this.messages[n - 1];
    if (!rec) {
      await this.err(Number.isNaN(n) ? 'message number required' : `no such message, only ${plural(this.messages.length, 'message')} in maildrop`);
      return undefined;
    }
    if (this.deleted[n - 1]) {
      await this.err(`message ${n} already deleted`);
      return undefined;
    }
    return { n, rec };
  }

  async onStat(): Promise<void> {
    const { count, octets } = this.totals();
    await this.reply(`+OK ${count} ${octets}`);
  }

  async onList(arg: string): Promise<void> {
    if (arg) {
      const p = await this.pick(arg);
      if (p) await this.reply(`+OK ${p.n} ${p.rec.size}`);
      return;
    }
    const { count, octets } = this.totals();
    await this.listing(`+OK ${plural(count, 'message')} (${octets} octets)`, (r) => String(r.size));
  }

  /**
   * A multi-line listing, a line per message not deleted ("n what"), written
   * in pieces of about 64 KiB: 100,000 messages' lines are never held at once.
   */
  private async listing(first: string, what: (r: MessageRecord) => string): Promise<void> {
    let out = first + CRLF;
    for (let i = 0; i < this.messages.length; i++) {
      if (this.deleted[i]) continue;
      out += `${i + 1} ${what(this.messages[i])}${CRLF}`;
      if (out.length < 65536) continue;
      await this.conn.write(out);
      out = '';
    }
    await this.conn.write(`${out}.${CRLF}`);
  }

  async onUidl(arg: string): Promise<void> {
    const id = (r: MessageRecord) => uidl(r.uid, this.folder!.uidValidity);
    if (arg) {
      const p = await this.pick(arg);
      if (p) await this.reply(`+OK ${p.n} ${id(p.rec)}`);
      return;
    }
    await this.listing('+OK unique-id listing follows', id);
  }

  async onRetr(arg: string): Promise<void> {
    const p = await this.pick(arg);
    if (!p) return;
    if (!(await this.send(p.rec, `+OK ${p.rec.size} octets`, Infinity))) return;
    this.retrieved++;
    this.folder!.setFlags([p.rec.uid], 'add', FLAG.seen, 0);
  }

  async onTop(arg: string): Promise<void> {
    const m = /^(\S+) (\d{1,10})$/.exec(arg);
    if (!m) return this.err('TOP needs a message number and a line count');
    const p = await this.pick(m[1]);
    if (p) await this.send(p.rec, '+OK top of message follows', Number(m[2]));
  }

  /**
   * The message (headers, then at most `lines` body lines), byte-stuffed,
   * ending in CRLF.CRLF. Its bytes are copied out under the mailbox lock and
   * sent after it is released: a client that reads slowly, or stops, holds
   * no lock that deliveries wait for.
   */
  private async send(snapshot: MessageRecord, first: string, lines: number): Promise<boolean> {
    let copy: { header: Buffer; body: CopiedBytes } | undefined;
    try {
      copy = await this.copyMessage(snapshot.uid, lines);
    } catch (e) {
      log(this.ctx.config, '', `pop3: cannot read message ${snapshot.uid} of ${this.user?.name}: ${(e as Error).message}`);
      await this.err('[SYS/TEMP] cannot read the message now');
      return false;
    }
    if (!copy) {
      await this.err('message was removed by another session');
      return false;
    }
    try {
      await this.reply(first);
      const dots = new DotStuffer();
      await this.conn.write(dots.push(toServed(copy.header)));
      const conv = new ServedConverter();
      let left = lines;
      for await (const chunk of copy.body.chunks()) {
        if (left <= 0) break;
        let out = conv.push(chunk);
        if (left !== Infinity) [out, left] = firstLines(out, left);
        await this.conn.write(dots.push(out));
      }
      const tail = left > 0 ? conv.end() : Buffer.alloc(0);
      if (tail.length) await this.conn.write(dots.push(tail));
      await this.conn.write(dots.atLineStart ? `.${CRLF}` : `${CRLF}.${CRLF}`);
      return true;
    } finally {
      await copy.body.close();
    }
  }

  /** Under the lock: the visible header and the stored body up to `lines` lines; undefined when the message is gone. */
  private copyMessage(uid: number, lines: number): Promise<{ header: Buffer; body: CopiedBytes } | undefined> {
    const folder = this.folder!;
    return folder.read(async (reader) => {
      // The record as of now, under the lock: a rewrite by others may have moved the message.
      const rec = folder.byUidGet(uid);
      if (!rec) return undefined;
      const header = visibleHeader(await reader.header(rec));
      const body = new CopiedBytes();
      try {
        // Stored lines are served lines (unquoting and CRLF keep the count), so TOP copies only what it sends.
        let seen = 0;
        if (lines > 0) {
          for await (const chunk of reader.chunks(rec, rec.headerLength, rec.length - rec.fromLen, body.scratch)) {
            await body.add(chunk);
            if (lines !== Infinity && (seen += countLines(chunk)) >= lines) break;
          }
        }
      } catch (e) {
        await body.close();
        throw e;
      }
      return { header, body };
    });
  }

  async onDele(arg: string): Promise<void> {
    const p = await this.pick(arg);
    if (!p) return;
    this.deleted[p.n - 1] = 1;
    await this.reply(`+OK message ${p.n} deleted`);
  }

  async onNoop(): Promise<void> {
    await this.reply('+OK');
  }

  async onRset(): Promise<void> {
    this.deleted.fill(0);
    const { count, octets } = this.totals();
    await this.reply(`+OK maildrop has ${plural(count, 'message')} (${octets} octets)`);
  }

  async onQuit(): Promise<void> {
    this.done = true;
    if (this.state === 'authorization') return this.reply(`+OK ${this.ctx.config.hostname} POP3 server signing off`);
    const left = this.totals().count;
    try {
      await this.end(true);
    } catch (e) {
      log(this.ctx.config, '', `pop3: UPDATE for ${this.user?.name} failed: ${(e as Error).message}`);
      return this.err('[SYS/TEMP] some deleted messages not removed');
    }
    await this.reply(`+OK ${this.ctx.config.hostname} POP3 server signing off (${left ? `${plural(left, 'message')} left` : 'maildrop empty'})`);
  }

  /** Leave the session: with update, remove what DELE marked. Safe to call twice. */
  private async end(update: boolean): Promise<void> {
    const folder = this.folder;
    if (!folder) return;
    this.folder = undefined;
    const deleted = this.messages.filter((_, i) => this.deleted[i]).map((r) => r.uid);
    try {
      if (update && deleted.length) await folder.expunge(deleted);
      log(this.ctx.config, '', [['user', this.user?.name], ['proto', 'pop3'], ['retr', this.retrieved], ['del', update ? deleted.length : 0], ['stat', update ? 'Logout' : 'Disconnected']]);
    } finally {
      // The records go with the folder: this session object outlives its socket a while (its listeners), and a
      // login right after would otherwise find a 100,000-message maildrop's records held twice.
      this.messages = [];
      this.deleted = new Uint8Array(0);
      this.lock?.release();
      await folder.release();
    }
  }
}

let apopCache: { key: string; ok: boolean } | undefined;

/**
 * Whether APOP can work (RFC 1939 7), and so whether the greeting carries the
 * timestamp that offers it: clients that see one (s-nail, fetchmail) try
 * APOP first, and with no secret for the user that login fails where
 * USER/PASS would have worked. It can when apop_secrets_file is a regular
 * file we can read, private by MailboxAccess's rule (apopFilePrivate),
 * holding at least one "name:secret" line. Looked at on each
 * greeting (a stat), read again only when the file changed.
 */
export function apopAvailable(config: Config): boolean {
  const file = config.apopSecretsFile;
  if (!file) return false;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return false;
  }
  if (!st.isFile() || st.size === 0 || !apopFilePrivate(st)) return false;
  const key = `${file}\0${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.mode}`;
  if (apopCache?.key === key) return apopCache.ok;
  let ok = false;
  try {
    ok = fs.readFileSync(file, 'utf8').split('\n').some((line) => !line.startsWith('#') && line.indexOf(':') > 0);
  } catch {
    ok = false;
  }
  apopCache = { key, ok };
  return ok;
}

/** RFC 1939's UIDL: unique and stable as long as UIDVALIDITY holds (Dovecot's %08Xu%08Xv). */
export function uidl(uid: number, uidValidity: number): string {
  const hex = (n: number) => n.toString(16).toUpperCase().padStart(8, '0');
  return hex(uid) + hex(uidValidity);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** How many line ends a chunk holds. */
function countLines(chunk: Buffer): number {
  let n = 0;
  for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) n++;
  return n;
}

/** The first `n` CRLF lines of a served chunk, and how many lines are still wanted. */
function firstLines(chunk: Buffer, n: number): [Buffer, number] {
  let pos = 0;
  while (n > 0) {
    const nl = chunk.indexOf(0x0a, pos);
    if (nl < 0) return [chunk, n];
    pos = nl + 1;
    n--;
  }
  return [chunk.subarray(0, pos), 0];
}

const A: State[] = ['authorization'];
const T: State[] = ['transaction'];
const BOTH: State[] = ['authorization', 'transaction'];

/** The commands, by name: the states they are allowed in, and their handler. */
const COMMANDS: Record<string, Command> = {
  USER: { states: A, run: (s, a) => s.onUser(a) },
  PASS: { states: A, run: (s, a) => s.onPass(a) },
  APOP: { states: A, run: (s, a) => s.onApop(a) },
  AUTH: { states: A, run: (s, a) => s.onAuth(a) },
  STLS: { states: A, run: (s) => s.onStls() },
  CAPA: { states: BOTH, run: (s) => s.onCapa() },
  QUIT: { states: BOTH, run: (s) => s.onQuit() },
  STAT: { states: T, run: (s) => s.onStat() },
  LIST: { states: T, run: (s, a) => s.onList(a) },
  UIDL: { states: T, run: (s, a) => s.onUidl(a) },
  RETR: { states: T, run: (s, a) => s.onRetr(a) },
  TOP: { states: T, run: (s, a) => s.onTop(a) },
  DELE: { states: T, run: (s, a) => s.onDele(a) },
  NOOP: { states: T, run: (s) => s.onNoop() },
  RSET: { states: T, run: (s) => s.onRset() },
};
