// One ManageSieve session (RFC 5804) on managesieve_listen: the capability
// greeting, STARTTLS, AUTHENTICATE PLAIN (and LOGIN) with the same logins as
// IMAP (mailbox-access.ts, the same throttle), then PUTSCRIPT, CHECKSCRIPT,
// LISTSCRIPTS, SETACTIVE, GETSCRIPT, DELETESCRIPT, RENAMESCRIPT, HAVESPACE,
// CAPABILITY, NOOP and LOGOUT on the user's scripts (src/sieve store.ts:
// ~/sieve/NAME.sieve, ~/.sieve the link to the active one). A script is
// checked (src/sieve compileScript) before it is stored or activated; the
// error names its line. As root, the login is checked in the unprivileged
// worker and the session is handed to the user's session agent, which
// answers the AUTHENTICATE and does every file operation as the user, as
// for IMAP. Strings are quoted or literals ({n} and {n+}: a server sends no
// continuation in ManageSieve). Known limits: no SCRAM, no UNAUTHENTICATE.

import type { User } from '../config/users.ts';
import { log } from '../log/index.ts';
import { EXTENSIONS, MAX_SCRIPT_BYTES, ScriptStore, SieveError, StoreError, compileScript } from '../sieve/index.ts';
import { SaslExchange } from './auth.ts';
import { isBlocked } from './auth-throttle.ts';
import type { Conn } from './mailbox-conn.ts';
import type { SessionContext } from './mailbox-listen.ts';
import type { LoginResult } from './mailbox-access.ts';
import { isLoopback } from './listen.ts';

const CRLF = '\r\n';
const MAX_LINE = 8192;
const MAX_ERRORS = 20;

type Word = { atom: string } | { str: string };

export class ManageSieveSession {
  state: 'nonauth' | 'auth' = 'nonauth';
  private store: ScriptStore | undefined;
  private done = false;
  private errors = 0;

  constructor(
    readonly conn: Conn,
    readonly ctx: SessionContext,
  ) {}

  async run(): Promise<void> {
    await this.capabilities();
    await this.loop();
  }

  /** In the user's agent: the login the worker checked; answer it, then serve. */
  async resume(user: User, method: string): Promise<void> {
    this.enter(user, method);
    await this.ok('Logged in');
    await this.loop();
  }

  shutdown(): void {
    void this.conn.write(`BYE "Server shutting down"${CRLF}`).then(() => this.conn.close());
  }

  private async loop(): Promise<void> {
    while (!this.done) {
      this.conn.idle(this.ctx.config.imapTimeoutMs, () => this.shutdown());
      let words: Word[] | undefined;
      try {
        words = await this.readCommand();
      } catch (e) {
        await this.no((e as Error).message);
        continue;
      }
      if (!words) break;
      if (words.length === 0) continue;
      try {
        await this.dispatch(words);
      } catch (e) {
        if (e instanceof StoreError) await this.no(e.message, e.code);
        else {
          log(this.ctx.config, '', `SYSERR: managesieve: ${(e as Error).message}`);
          await this.no('internal error', 'TRYLATER');
        }
      }
      if (this.errors >= MAX_ERRORS) {
        await this.conn.write(`BYE "Too many errors"${CRLF}`);
        break;
      }
    }
  }

  /** One command: its words, literals read in. Undefined at the end of input. */
  private async readCommand(): Promise<Word[] | undefined> {
    const words: Word[] = [];
    for (;;) {
      const raw = await this.conn.line(MAX_LINE);
      if (raw === undefined) return undefined;
      if (raw === 'too-long') throw new Error('line too long');
      let line = raw.toString('utf8').replace(/\r?\n$/, '');
      for (;;) {
        line = line.replace(/^[ \t]+/, '');
        if (line === '') return words;
        const lit = /^\{(\d+)\+?\}$/.exec(line);
        if (lit) {
          const n = Number(lit[1]);
          if (n > MAX_SCRIPT_BYTES + 4096) throw new Error('literal too large');
          const bytes = await this.conn.bytes(n);
          if (!bytes) return undefined;
          words.push({ str: bytes.toString('utf8') });
          break; // the command goes on in the next line
        }
        if (line[0] === '"') {
          let v = '';
          let i = 1;
          for (; i < line.length && line[i] !== '"'; i++) v += line[i] === '\\' ? line[++i] : line[i];
          if (i >= line.length) throw new Error('unterminated string');
          words.push({ str: v });
          line = line.slice(i + 1);
          continue;
        }
        const m = /^[^\s"{]+/.exec(line);
        if (!m) throw new Error('syntax error');
        words.push({ atom: m[0] });
        line = line.slice(m[0].length);
      }
    }
  }

  private async dispatch(words: Word[]): Promise<void> {
    const first = words[0];
    const verb = 'atom' in first ? first.atom.toUpperCase() : '';
    const args = words.slice(1).map((w) => ('str' in w ? w.str : w.atom));
    const strs = (n: number) => {
      if (args.length !== n) throw new StoreError('', `${verb} takes ${n} argument${n === 1 ? '' : 's'}`);
      return args;
    };
    if (verb === 'LOGOUT') {
      await this.ok('Logout completed');
      this.done = true;
      return;
    }
    if (verb === 'CAPABILITY') return this.capabilities();
    // RFC 5804 2.14: a NOOP's argument comes back as a TAG (clients resync with it after STARTTLS).
    if (verb === 'NOOP') return this.conn.write(`OK ${args.length ? `(TAG ${quote(args[0])}) ` : ''}"Done"${CRLF}`);
    if (this.state === 'nonauth') {
      if (verb === 'STARTTLS') return this.startTls();
      if (verb === 'AUTHENTICATE') return this.authenticate(args);
      return this.no(verb ? `${verb} needs a login first` : 'bad command');
    }
    const store = this.store!;
    switch (verb) {
      case 'LISTSCRIPTS': {
        const lines = store.list().map((s) => `${quote(s.name)}${s.active ? ' ACTIVE' : ''}${CRLF}`);
        await this.conn.write(lines.join(''));
        return this.ok('Listscripts completed');
      }
      case 'GETSCRIPT': {
        const text = Buffer.from(store.get(strs(1)[0]));
        await this.conn.write(Buffer.concat([Buffer.from(`{${text.length}}${CRLF}`), text, Buffer.from(CRLF)]));
        return this.ok('Getscript completed');
      }
      case 'PUTSCRIPT': {
        const [name, content] = strs(2);
        if (!ScriptStore.validName(name)) return this.no('bad script name');
        if (!(await this.checked(content))) return;
        store.put(name, content);
        return this.ok('Putscript completed');
      }
      case 'CHECKSCRIPT':
        if (await this.checked(strs(1)[0])) return this.ok('Script is valid');
        return;
      case 'SETACTIVE': {
        const [name] = strs(1);
        if (name !== '' && !(await this.checked(store.get(name)))) return;
        store.setActive(name);
        return this.ok(name ? `Script "${name}" is active` : 'No script is active');
      }
      case 'DELETESCRIPT':
        store.delete(strs(1)[0]);
        return this.ok('Deletescript completed');
      case 'RENAMESCRIPT': {
        const [from, to] = strs(2);
        store.rename(from, to);
        return this.ok('Renamescript completed');
      }
      case 'HAVESPACE': {
        const [name, size] = strs(2);
        if (!/^\d+$/.test(size)) return this.no('HAVESPACE needs a size');
        store.haveSpace(name, Number(size));
        return this.ok('Putscript would succeed');
      }
      default:
        return this.no(`unknown command "${verb.slice(0, 40)}"`);
    }
  }

  /** Compile the script; NO with its line when it fails. */
  private async checked(content: string): Promise<boolean> {
    try {
      compileScript(content);
      return true;
    } catch (e) {
      if (!(e instanceof SieveError)) throw e;
      await this.no(e.message);
      return false;
    }
  }

  private async capabilities(): Promise<void> {
    const lines = [
      `"IMPLEMENTATION" "mailtk"`,
      `"SIEVE" ${quote(EXTENSIONS.join(' '))}`,
      this.state === 'nonauth' && (!this.ctx.config.mailboxLoginTls || this.conn.secure || isLoopback(this.conn.remoteAddress)) ? `"SASL" "PLAIN LOGIN"` : `"SASL" ""`,
      ...(this.ctx.tls && !this.conn.secure ? ['"STARTTLS"'] : []),
      `"VERSION" "1.0"`,
    ];
    await this.conn.write(lines.join(CRLF) + CRLF);
    await this.ok(`${this.ctx.config.hostname} ManageSieve ready`);
  }

  private async startTls(): Promise<void> {
    if (this.conn.secure || !this.ctx.tls) return this.no('TLS not available');
    await this.ok('Begin TLS negotiation now');
    try {
      await this.conn.startTls(this.ctx.tls);
    } catch {
      this.done = true;
      return;
    }
    // RFC 5804 2.2: the capabilities again, now over TLS.
    await this.capabilities();
  }

  private async authenticate(args: string[]): Promise<void> {
    const mech = (args[0] ?? '').toUpperCase();
    if (mech !== 'PLAIN' && mech !== 'LOGIN') return this.no('unsupported authentication mechanism');
    if (this.ctx.config.mailboxLoginTls && !this.conn.secure && !isLoopback(this.conn.remoteAddress)) return this.no('use STARTTLS first', 'ENCRYPT-NEEDED');
    const sasl = new SaslExchange(mech);
    let step = sasl.start(args[1]);
    while ('challenge' in step) {
      await this.conn.write(`${quote(step.challenge)}${CRLF}`);
      const reply = await this.readCommand();
      if (!reply || reply.length !== 1) return this.no('authentication aborted');
      step = sasl.respond('str' in reply[0] ? reply[0].str : reply[0].atom);
    }
    if ('error' in step) return this.no(step.error.lines[0]);
    const method = `AUTHENTICATE ${mech}`;
    const user: LoginResult = await this.ctx.access.login(step.user, step.password, { service: 'imap', client: this.conn.remoteAddress, method });
    if (isBlocked(user)) return this.no(user.blocked, 'TRYLATER');
    if (!user) {
      log(this.ctx.config, '', [['user', step.user.slice(0, 64)], ['proto', 'managesieve'], ['method', method], ['relay', `[${this.conn.remoteAddress}]`], ['stat', 'authentication failed']]);
      return this.no('Authentication failed');
    }
    if (this.ctx.handoff) {
      // Root's worker: the rest of the session runs in the user's own process, which answers OK.
      const refused = await this.ctx.handoff(this.conn, { proto: 'managesieve', user: user.name, method });
      if (refused) return this.no(refused, 'TRYLATER');
      this.done = true;
      return;
    }
    this.enter(user, method);
    await this.ok('Logged in');
  }

  private enter(user: User, method: string): void {
    this.store = new ScriptStore(this.ctx.config, user);
    this.state = 'auth';
    log(this.ctx.config, '', [['user', user.name], ['proto', 'managesieve'], ['method', method], ['relay', `[${this.conn.remoteAddress}]`], ['stat', 'Login']]);
  }

  private ok(text: string): Promise<void> {
    return this.conn.write(`OK ${quote(text)}${CRLF}`);
  }

  private no(text: string, code = ''): Promise<void> {
    this.errors++;
    return this.conn.write(`NO ${code ? `(${code}) ` : ''}${quote(text)}${CRLF}`);
  }
}

/** A quoted string, or a literal when the text cannot be quoted. */
function quote(s: string): string {
  if (/[\r\n\0]/.test(s) || s.length > 1024) return `{${Buffer.byteLength(s)}}${CRLF}${s}`;
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
