// One SMTP session (RFC 5321) over a socket, or over stdin/stdout for
// `sendmail -bs`: input, the command table (onHelo, onMail, ... as in
// smtp-server), the transaction and the replies. Each command finishes
// before the next line is read, so PIPELINING (RFC 2920) works and replies
// go out one write per batch. Overlong lines get 500 5.5.2, plaintext after
// STARTTLS is dropped (CVE-2011-0411), idle clients 421 4.4.2, too many
// errors 421 4.7.0; "250 ... Message accepted" comes only after the queue's
// commit point. DATA is read by data-reader.ts.

import type net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import tls from 'node:tls';
import { TextDecoder } from 'node:util';
import { log } from '../log/index.ts';
import { qualify, rfc5322Date, splitAddress } from '../message/index.ts';
import { type QueueId, type Recipient, dropMessage, enqueue, mayWriteQueue, newQueueId } from '../queue/index.ts';
import { MailError } from '../message/status.ts';
import { MECHANISMS, type Mechanism, SaslExchange } from './auth.ts';
import { isBlocked } from './auth-throttle.ts';
import { type MailParams, isError, mailParams, parseCommand, parsePathArg, rcptParams } from './command.ts';
import { DataReader, type DataFault } from './data-reader.ts';
import type { AccessRule } from './access.ts';
import type { BlockLists } from './dnsbl.ts';
import type { Client, Decision, Policy } from './policy.ts';
import { prepareForQueue } from './received.ts';
import { OK, type Reply, SOFTWARE, fail, formatReply, printable, reply } from './replies.ts';

export type ListenerKind = 'smtp' | 'submission' | 'stdio';

export interface SessionEnv {
  kind: ListenerKind;
  /** The policy in force now (SIGHUP may replace it between commands). */
  policy(): Policy;
  client: Client;
  /** `sendmail -bs`: the user who ran it. */
  login: string;
  /** The client is on this host (127/8, ::1): AUTH without TLS is allowed. */
  loopback: boolean;
  /** Resolves the client's confirmed reverse name before the greeting. */
  reverse?(ip: string): Promise<string | undefined>;
  /** The listener is nearly full: idle clients get the short timeout. */
  stressed?(): boolean;
  /** Rate limits per client (anvil.ts): count one MAIL or RCPT; the refusal past the limit. */
  limit?(event: 'message' | 'recipient', id: string): Reply | undefined;
  onAccepted?(id: QueueId): void;
}

interface Transaction {
  id: QueueId;
  sender: string;
  params: MailParams;
  recipients: Recipient[];
  /** Relaying granted by the sender (From: RELAY). */
  relay?: string;
  discard: boolean;
}

type Mode = 'command' | 'data' | 'auth' | 'handshake' | 'closed';

const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
/** RFC 5321 4.5.3.1.4: 512 with CRLF; MAIL/RCPT grow by their extensions' parameters (RFC 3461, 4954). */
const LIMIT = { command: 512, path: 2048, auth: 12288 };
/** Unread input held while a command runs, and unsent replies, before we stop reading. */
const MAX_BUFFERED = 64 * 1024;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const HELP_TOPICS: Record<string, string> = {
  HELO: 'HELO <hostname>', EHLO: 'EHLO <hostname>', MAIL: 'MAIL FROM: <sender> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8] [RET=FULL|HDRS] [ENVID=id]',
  RCPT: 'RCPT TO: <recipient> [NOTIFY=NEVER|SUCCESS,FAILURE,DELAY] [ORCPT=rfc822;addr]', DATA: 'DATA: then the message, ending with "." on a line by itself',
  RSET: 'RSET: forget the current transaction', NOOP: 'NOOP: do nothing', QUIT: 'QUIT: end the session', HELP: 'HELP [topic]',
  VRFY: 'VRFY <recipient>', EXPN: 'EXPN <alias>', DSN: 'DSN: NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL (RFC 3461)',
  AUTH: 'AUTH PLAIN|LOGIN [initial-response]', STARTTLS: 'STARTTLS: begin TLS',
};

export class SmtpSession {
  private mode: Mode = 'command';
  private pending: Buffer = EMPTY;
  private overlong = false;
  private busy = false;
  private out = '';
  private timer: NodeJS.Timeout | undefined;
  /** When the last line came (or the greeting went): how long the session has been idle. */
  private lastActive = Date.now();
  /** smtpd_data_timeout: the deadline of the whole message. */
  private dataTimer: NodeJS.Timeout | undefined;
  private errors = 0;
  private helo: string | undefined;
  private esmtp = false;
  private tx: Transaction | undefined;
  private data: DataReader | undefined;
  private sasl: SaslExchange | undefined;
  private authUser: string | undefined;
  private tlsInfo: { version: string; cipher: string; bits: number } | undefined;
  private connectRule: AccessRule | undefined;
  /** The DNS block list lookups begun at connection (dnsbl.ts), awaited at RCPT. */
  private blockLists: BlockLists | undefined;
  private stopping = false;
  private inputEnded = false;
  private done!: () => void;
  readonly finished: Promise<void>;

  constructor(
    private readonly env: SessionEnv,
    private input: Readable,
    private output: Writable,
  ) {
    this.finished = new Promise((resolve) => (this.done = resolve));
  }

  private get config() {
    return this.env.policy().config;
  }

  private get host(): string {
    return this.config.hostname;
  }

  /** Greet and serve until QUIT, EOF, timeout or shutdown; `finished` resolves then. */
  async start(): Promise<void> {
    this.attach();
    this.input.pause();
    const ip = this.env.client.address;
    if (ip !== undefined && this.env.reverse) this.env.client.name = await this.env.reverse(ip).catch(() => undefined);
    if (this.mode === 'closed') return;
    this.connectRule = this.env.policy().connectRule(this.env.client);
    // Not on submission: only authenticated and relay_networks clients may send there, and lists spare both.
    if (this.env.kind === 'smtp') this.blockLists = this.env.policy().blockLists(this.env.client, this.connectRule);
    this.send(reply(220, '', `${this.host} ESMTP ${SOFTWARE}; ${rfc5322Date(new Date())}`));
    this.flush();
    this.armTimer();
    this.input.resume();
  }

  /** Stop at the next point where no reply is owed: 421 and close (the daemon's SIGTERM). */
  shutdown(): void {
    this.stopping = true;
    if (!this.busy) this.closeWith(fail('shutting-down', `${this.host} Service shutting down`));
  }

  // ---- input ------------------------------------------------------------

  private readonly onInput = (chunk: Buffer): void => {
    // The deadline is per line, not per read (Postfix's smtpd_per_record_deadline):
    // a client that drips bytes without ever ending a line cannot hold its slot.
    if (this.mode === 'data' && chunk.includes(LF)) this.armTimer();
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    if (this.busy && this.pending.length > MAX_BUFFERED) this.input.pause();
    void this.pump();
  };

  private readonly onEnd = (): void => {
    this.inputEnded = true;
    void this.pump();
  };

  /** A reset or a broken pipe: nobody is left to answer. */
  private readonly onError = (): void => this.close();

  private attach(): void {
    this.input.on('data', this.onInput);
    this.input.on('end', this.onEnd);
    this.input.on('close', this.onEnd);
    this.input.on('error', this.onError);
  }

  private detach(): void {
    this.input.off('data', this.onInput);
    this.input.off('end', this.onEnd);
    this.input.off('close', this.onEnd);
    this.input.off('error', this.onError);
  }

  /** Handle everything complete in the input, one command at a time. */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      while (await this.step());
      if (this.stopping && this.mode === 'command') this.closeWith(fail('shutting-down', `${this.host} Service shutting down`));
      // The client has finished sending: what it sent is answered first (printf ... | sendmail -bs).
      else if (this.inputEnded) this.close();
    } catch (e) {
      log(this.config, this.tx?.id ?? '', `SYSERR: SMTP session: ${(e as Error).stack ?? e}`);
      this.closeWith(fail('internal', `${this.host} Internal error, closing connection`));
    } finally {
      this.busy = false;
      this.flush();
      if (this.mode !== 'closed' && this.input.isPaused() && this.mode !== 'handshake') this.input.resume();
    }
  }

  /** One command, or one chunk of DATA; false when nothing complete is left to act on. */
  private async step(): Promise<boolean> {
    if (this.stopping && this.mode === 'command') return false;
    if (this.mode === 'data') return this.pumpData();
    if (this.mode !== 'command' && this.mode !== 'auth') return false;
    const line = this.takeLine();
    if (line === undefined) return false;
    this.armTimer();
    await (this.mode === 'auth' ? this.onAuthLine(line) : this.onLine(line));
    const after = this.mode as Mode; // the command may have closed the session or begun TLS
    if (after !== 'closed' && after !== 'handshake') this.armTimer(); // the wait for the next step
    return true;
  }

  /** Feed DATA input; true when the message ended and its reply was given. */
  private async pumpData(): Promise<boolean> {
    if (this.pending.length === 0) return false;
    const chunk = this.pending;
    this.pending = EMPTY;
    const rest = (this.data as DataReader).push(chunk);
    if (rest === undefined) return false;
    this.pending = rest;
    this.mode = 'command';
    await this.onDataEnd();
    return true;
  }

  /** The next line without its line end; 'too-long' for one past every limit; undefined until one is complete. */
  private takeLine(): string | 'too-long' | undefined {
    const lf = this.pending.indexOf(LF);
    if (lf < 0) {
      if (this.pending.length > LIMIT.auth) {
        this.overlong = true;
        this.pending = EMPTY;
      }
      return undefined;
    }
    const end = lf > 0 && this.pending[lf - 1] === 0x0d ? lf - 1 : lf;
    const raw = this.pending.subarray(0, end);
    this.pending = this.pending.subarray(lf + 1);
    if (this.overlong) {
      this.overlong = false;
      return 'too-long';
    }
    try {
      return utf8.decode(raw);
    } catch {
      return raw.toString('latin1');
    }
  }

  /** Start the idle deadline again, at the length that now applies (stress may have begun). */
  rearmTimer(): void {
    if (this.mode !== 'closed') this.armTimer();
  }

  private armTimer(): void {
    const step = this.stepTimeout();
    const ms = this.env.stressed?.() ? Math.min(step, this.config.smtpStressTimeoutMs) : step;
    this.lastActive = Date.now();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.onTimeout(), ms);
    this.timer.unref();
  }

  /** The wait for what comes next (smtpd_*_timeout): HELO, MAIL, RCPT/DATA or the next line of the message. */
  private stepTimeout(): number {
    const t = this.config.smtpdTimeouts;
    if (this.mode === 'data') return t.dataBlock;
    if (this.mode !== 'command') return this.config.smtpTimeoutMs;
    return this.helo === undefined ? t.helo : this.tx ? t.rcpt : t.mail;
  }

  /** When it has been idle since, for a session holding nothing (no transaction, no login); else undefined. */
  idleSince(): number | undefined {
    const idle = (this.mode === 'command' || this.mode === 'handshake') && !this.busy && !this.tx && this.authUser === undefined;
    return idle ? this.lastActive : undefined;
  }

  /** The listener is full and a newcomer takes this idle session's place (conn-control.ts). */
  displace(): void {
    this.closeWith(fail('server-busy', `${this.host} Too many open connections, closing an idle session`));
  }

  private onTimeout(): void {
    if (this.busy) return this.armTimer();
    log(this.config, this.tx?.id ?? '', `timeout waiting for input from ${this.relayName()} during ${this.mode === 'data' ? 'message collect' : 'server cmd read'}`);
    this.closeWith(fail('timeout', `${this.host} Error: timeout exceeded`));
  }

  // ---- output -----------------------------------------------------------

  private send(r: Reply): void {
    this.out += formatReply(r);
    if (r.code >= 400 && r.code !== 421) this.errors++;
  }

  private flush(): void {
    if (!this.out || this.mode === 'closed') return;
    const ok = this.output.write(this.out);
    this.out = '';
    if (!ok && this.output.writableLength > MAX_BUFFERED) {
      // A client that pipelines without reading its replies waits for them.
      this.input.pause();
      this.output.once('drain', () => this.mode !== 'closed' && this.input.resume());
    }
  }

  private closeWith(r: Reply): void {
    if (this.mode === 'closed') return;
    this.send(r);
    this.close();
  }

  private close(): void {
    if (this.mode === 'closed') return;
    this.flush();
    this.mode = 'closed';
    clearTimeout(this.timer);
    clearTimeout(this.dataTimer);
    this.detach();
    this.input.resume(); // drain whatever else comes, so the peer is not stuck
    this.output.end();
    const socket = this.output as net.Socket;
    if (typeof socket.destroySoon === 'function') setTimeout(() => socket.destroy(), 5000).unref();
    this.done();
  }

  // ---- commands -----------------------------------------------------------

  private readonly handlers: Record<string, (arg: string) => void | Promise<void>> = {
    HELO: (a) => this.onHelo(a, false),
    EHLO: (a) => this.onHelo(a, true),
    MAIL: (a) => this.onMail(a),
    RCPT: (a) => this.onRcpt(a),
    DATA: () => this.onData(),
    RSET: () => this.onRset(),
    NOOP: () => this.send(OK.noop()),
    QUIT: () => this.onQuit(),
    HELP: (a) => this.onHelp(a),
    VRFY: (a) => this.onVrfy(a),
    EXPN: (a) => this.onExpn(a),
    STARTTLS: (a) => this.onStartTls(a),
    AUTH: (a) => this.onAuth(a),
  };

  private async onLine(line: string | 'too-long'): Promise<void> {
    const cmd = line === 'too-long' ? undefined : parseCommand(line);
    const limit = cmd?.verb === 'AUTH' ? LIMIT.auth : cmd?.verb === 'MAIL' || cmd?.verb === 'RCPT' ? LIMIT.path : LIMIT.command;
    if (!cmd || Buffer.byteLength(line) + 2 > limit) this.send(fail('line-too-long', 'Line too long'));
    else if (/[\x00-\x08\x0a-\x1f\x7f]/.test(line)) this.send(fail('unknown-command', 'Syntax error: control character in command'));
    else {
      const handler = Object.hasOwn(this.handlers, cmd.verb) ? this.handlers[cmd.verb] : undefined;
      if (handler) await handler(cmd.arg);
      else this.send(fail('unknown-command', `Command unrecognized: "${printable(line.slice(0, 40))}"`));
    }
    if (this.errors >= this.config.smtpMaxErrors && this.mode !== 'closed') {
      log(this.config, this.tx?.id ?? '', `${this.relayName()}: too many errors (${this.errors}), closing`);
      this.closeWith(fail('too-many-errors', `${this.host} Error: too many errors`));
    }
  }

  private onHelo(arg: string, extended: boolean): void {
    if (arg === '') return this.send(fail('bad-arguments', `${extended ? 'EHLO' : 'HELO'} requires domain address`));
    this.helo = arg.split(/\s/)[0];
    this.esmtp = extended;
    this.tx = undefined;
    const greeting = `${this.host} Hello ${this.clientDescription()}`;
    if (!extended) return this.send(reply(250, '', greeting));
    this.send(reply(250, '', greeting, ...this.extensions()));
  }

  private extensions(): string[] {
    const ext = ['ENHANCEDSTATUSCODES', 'PIPELINING', '8BITMIME', `SIZE ${this.config.maxMessageSize}`, 'DSN', 'SMTPUTF8'];
    if (this.authAllowed() && this.authUser === undefined) ext.push(`AUTH ${MECHANISMS.join(' ')}`);
    if (this.env.policy().tls && !this.tlsInfo && this.env.kind !== 'stdio') ext.push('STARTTLS');
    ext.push('HELP');
    return ext;
  }

  private clientDescription(): string {
    const c = this.env.client;
    if (c.address === undefined) return `${this.env.login}@localhost`;
    return c.name ? `${c.name} [${c.address}]` : `[${c.address}]`;
  }

  /** "name [ip]" as sendmail's relay= shows a client. */
  private relayName(): string {
    const c = this.env.client;
    return c.address === undefined ? `${this.env.login}@localhost` : `${c.name ?? ''} [${c.address}]`.trim();
  }

  private onMail(arg: string): void {
    if (this.tx) return this.send(fail('bad-sequence', 'Sender already specified'));
    const policy = this.env.policy();
    if (this.env.kind === 'submission' && this.authUser === undefined && !policy.inRelayNetworks(this.env.client.address)) {
      return this.send(fail('auth-required'));
    }
    const path = parsePathArg(arg, 'FROM');
    if (isError(path)) return this.send(path.error);
    const limited = this.env.limit?.('message', '');
    if (limited) return this.send(limited);
    const params = this.esmtpOnly(path.params) ?? mailParams(path.params, this.config.maxMessageSize);
    if (isError(params)) return this.send(params.error);
    if (this.needsUtf8(path, params.smtputf8)) return;
    const sender = this.qualifySender(path.address, path.given);
    if (typeof sender !== 'string') return this.send(sender);
    const id = newQueueId();
    const d = policy.checkSender(this.connectRule, sender, path.given);
    if (d.refuse) return this.refuse(id, 'check_mail', path.given, d);
    this.tx = { id, sender, params, recipients: [], relay: d.relay, discard: d.discard ?? false };
    this.send(OK.sender(path.given));
  }

  /** RFC 6531 3.4: an address past ASCII only in a transaction that said SMTPUTF8; true when refused. */
  private needsUtf8(path: { address: string; given: string }, smtputf8: boolean): boolean {
    if (smtputf8 || !/[^\x00-\x7f]/.test(path.address)) return false;
    this.send(fail('non-ascii-address', `${printable(path.given)}... A non-ASCII address needs SMTPUTF8`));
    return true;
  }

  /** ESMTP parameters only after EHLO; undefined when there is nothing to object to. */
  private esmtpOnly(params: Map<string, string | true>): { error: Reply } | undefined {
    if (this.esmtp || params.size === 0) return undefined;
    return { error: fail('unknown-parameter', `${[...params.keys()][0]} parameter needs EHLO`) };
  }

  /** A sender without a domain: qualified for trusted clients (sendmail), refused for others. */
  private qualifySender(address: string, given: string): string | Reply {
    if (address === '' || splitAddress(address).domain !== '') return address;
    if (this.env.client.address === undefined || this.env.policy().inRelayNetworks(this.env.client.address)) {
      return qualify(address, this.host);
    }
    return fail('bad-sender', `${printable(given)}... Domain name required for sender address ${printable(address)}`);
  }

  private async onRcpt(arg: string): Promise<void> {
    const tx = this.tx;
    if (!tx) return this.send(fail('bad-sequence', 'Need MAIL before RCPT'));
    if (tx.recipients.length >= this.config.maxRecipients) return this.send(fail('too-many-recipients'));
    const limited = this.env.limit?.('recipient', tx.id);
    if (limited) return this.send(limited);
    const path = parsePathArg(arg, 'TO');
    if (isError(path)) return this.send(path.error);
    if (path.address === '') return this.send(fail('bad-address', `${printable(path.given)}... User address required`));
    const params = this.esmtpOnly(path.params) ?? rcptParams(path.params);
    if (isError(params)) return this.send(params.error);
    if (this.needsUtf8(path, tx.params.smtputf8)) return;
    const address = this.qualifyRecipient(path.address);
    const policy = this.env.policy();
    const early = await policy.checkTransaction({ sender: tx.sender, recipients: tx.recipients.length, authUser: this.authUser, lists: this.blockLists }, path.given);
    if (early.refuse) return this.refuse(tx.id, 'check_rcpt', path.given, early);
    const relay = tx.relay ?? policy.clientRelay(this.env.client, this.connectRule, this.authUser);
    const d = await policy.checkRecipient(this.env.client, address, path.given, relay);
    if (d.refuse) return this.refuse(tx.id, 'check_rcpt', path.given, d);
    if (d.relay) this.logDecision(tx.id, 'check_rcpt', path.given, `accept=RELAY, rule=${d.rule}`);
    if (d.discard) this.logDecision(tx.id, 'check_rcpt', path.given, `discard, rule=${d.rule}`);
    else if (!tx.recipients.some((r) => r.address.toLowerCase() === address.toLowerCase())) {
      tx.recipients.push({ address, notify: params.notify, orcpt: params.orcpt });
    }
    this.send(OK.recipient(path.given));
  }

  /** "alice" -> alice@host; a bare name with routing characters stays as it is (and needs relaying). */
  private qualifyRecipient(address: string): string {
    if (splitAddress(address).domain !== '' || /[%!@:]/.test(address)) return address;
    return qualify(address, this.host);
  }

  private refuse(id: string, ruleset: string, given: string, d: Decision): void {
    const r = d.refuse as Reply;
    this.logDecision(id, ruleset, given, `reject=${r.code} ${r.status} ${r.lines[0]}${d.rule ? `, rule=${d.rule}` : ''}`);
    this.send(r);
  }

  private logDecision(id: string, ruleset: string, given: string, what: string): void {
    log(this.config, id, `ruleset=${ruleset}, arg1=${given}, relay=${this.relayName()}, ${what}`);
  }

  private onData(): void {
    if (!this.tx) return this.send(fail('bad-sequence', 'Need MAIL command'));
    if (this.tx.recipients.length === 0 && !this.tx.discard) return this.send(fail('bad-sequence', 'Need RCPT (recipient)'));
    this.data = new DataReader(this.config.maxMessageSize);
    this.mode = 'data';
    this.send(OK.startData());
    const whole = this.config.smtpdTimeouts.data;
    if (whole !== undefined) this.dataTimer = setTimeout(() => this.mode === 'data' && this.onTimeout(), whole).unref();
  }

  private async onDataEnd(): Promise<void> {
    const tx = this.tx as Transaction;
    const reader = this.data as DataReader;
    clearTimeout(this.dataTimer);
    this.tx = undefined;
    this.data = undefined;
    if (reader.fault) return this.refuse(tx.id, 'data', `<${tx.sender}>`, { refuse: this.faultReply(reader.fault), rule: `message ${reader.fault}` });
    if (tx.discard || tx.recipients.length === 0) {
      log(this.config, tx.id, `discarded: from=<${tx.sender}>, size=${reader.size}, relay=${this.relayName()}`);
      return this.send(OK.accepted(tx.id));
    }
    await this.accept(tx, reader.message());
  }

  private faultReply(f: DataFault): Reply {
    switch (f) {
      case 'bare-newline':
        return fail('bare-newline', 'Message refused: bare CR or LF received (lines end with CRLF)');
      case 'nul':
        return fail('bad-input', 'Message refused: it contains NUL characters');
      case 'long-line':
        return fail('bad-input', 'Message refused: a line is longer than 998 characters (RFC 5321 4.5.3.1.6)');
      case 'too-big':
        return fail('message-too-big', `Message size exceeds fixed maximum message size (${this.config.maxMessageSize})`);
    }
  }

  /** Prepare, queue (the commit point), then, and only then, 250. */
  private async accept(tx: Transaction, raw: Buffer): Promise<void> {
    const prepared = prepareForQueue(raw, {
      queueId: tx.id, hostname: this.host, helo: this.helo, clientName: this.env.client.name, clientAddress: this.env.client.address,
      login: this.env.login, protocol: this.protocol(tx), tls: this.tlsInfo, authUser: this.authUser,
      recipients: tx.recipients.map((r) => r.address), sender: tx.sender, now: new Date(),
    });
    if (prepared.hops > this.config.maxHopCount) {
      return this.refuse(tx.id, 'data', `<${tx.sender}>`, { refuse: fail('mail-loop', `Too many hops ${prepared.hops} (${this.config.maxHopCount} max)`) });
    }
    const message = {
      id: tx.id, sender: tx.sender, submitter: this.authUser ?? this.env.login, recipients: tx.recipients, data: prepared.data,
      envid: tx.params.envid, ret: tx.params.ret, bodyType: tx.params.body, hops: prepared.hops,
    };
    let id: QueueId;
    try {
      id = mayWriteQueue(this.config) ? await enqueue(this.config, message) : dropMessage(this.config, message);
    } catch (e) {
      // The client keeps the message and tries again; the why (paths, errno) is for the log only.
      log(this.config, tx.id, `SYSERR: cannot queue the message: ${(e as Error).message}`);
      const full = e instanceof MailError && e.failure === 'queue-full';
      return this.send(full ? fail('queue-full', 'Insufficient system storage, please try again later') : fail('queue-write', 'Temporary system failure, please try again later'));
    }
    // COMMITTED: the message is on disk; only now may the client hear 250.
    this.logAccepted(id, tx, prepared.data.length, prepared.messageId);
    this.send(OK.accepted(id));
    this.env.onAccepted?.(id);
  }

  private logAccepted(id: string, tx: Transaction, size: number, msgid: string): void {
    log(this.config, id, [
      ['from', `<${tx.sender}>`], ['size', size], ['class', 0], ['nrcpts', tx.recipients.length], ['msgid', msgid],
      ['bodytype', tx.params.body], ['proto', this.protocol(tx)], ['daemon', this.env.kind === 'stdio' ? undefined : this.env.kind === 'smtp' ? 'MTA' : 'MSA'],
      ['relay', this.relayName()],
    ]);
  }

  /** RFC 3848 / RFC 6531 "with" keyword. */
  private protocol(tx: Transaction): string {
    if (!this.esmtp) return 'SMTP';
    const suffix = `${this.tlsInfo ? 'S' : ''}${this.authUser !== undefined ? 'A' : ''}`;
    return tx.params.smtputf8 ? `UTF8SMTP${suffix}` : `ESMTP${suffix}`;
  }

  private onRset(): void {
    this.tx = undefined;
    this.send(OK.reset());
  }

  private onQuit(): void {
    this.closeWith(OK.quit(this.host));
  }

  private onHelp(arg: string): void {
    const topic = arg.trim().toUpperCase();
    if (topic) {
      const text = HELP_TOPICS[topic];
      if (!text) return this.send(fail('bad-arguments', `HELP topic "${printable(arg.trim())}" unknown`));
      return this.send(reply(214, '2.0.0', text, 'End of HELP info'));
    }
    const names = Object.keys(HELP_TOPICS);
    const rows = [0, 5, 10].map((i) => '  ' + names.slice(i, i + 5).map((n) => n.padEnd(6)).join(' ').trimEnd());
    this.send(reply(214, '2.0.0', `This is ${SOFTWARE}`, 'Topics:', ...rows, 'For more info use "HELP <topic>".',
      'For local information send email to Postmaster at your site.', 'End of HELP info'));
  }

  private async onVrfy(arg: string): Promise<void> {
    if (!this.config.smtpVrfy) return this.send(OK.cannotVrfy());
    const address = this.qualifyRecipient(arg.replace(/^<|>$/g, '').trim());
    if (address === '') return this.send(fail('bad-arguments', 'Argument required'));
    const found = await this.env.policy().localRecipients(address, this.env.client);
    if (found === undefined) return this.send(OK.cannotVrfy());
    if (found.length === 0) return this.send(fail('user-unknown', `${printable(arg)}... User unknown`));
    this.send(reply(250, '2.1.5', `<${address}>`));
  }

  private async onExpn(arg: string): Promise<void> {
    if (!this.config.smtpExpn) return this.send(fail('command-disabled'));
    const address = this.qualifyRecipient(arg.replace(/^<|>$/g, '').trim());
    if (address === '') return this.send(fail('bad-arguments', 'Argument required'));
    const found = await this.env.policy().localRecipients(address, this.env.client);
    if (!found || found.length === 0) return this.send(fail('user-unknown', `${printable(arg)}... User unknown`));
    this.send(reply(250, '2.1.5', ...found.map((a) => `<${a}>`)));
  }

  // ---- STARTTLS and AUTH -----------------------------------------------

  private onStartTls(arg: string): void {
    const secure = this.env.policy().tls;
    const socket = this.input as net.Socket;
    if (arg !== '') return this.send(fail('bad-arguments', 'Syntax error (no parameters allowed)'));
    if (this.tlsInfo) return this.send(fail('bad-sequence', 'TLS already active'));
    if (!secure || this.env.kind === 'stdio') return this.send(fail('starttls-unavailable'));
    this.send(OK.startTls());
    this.flush();
    // Anything the client sent after STARTTLS in the clear is dropped, never obeyed (CVE-2011-0411).
    this.pending = EMPTY;
    this.mode = 'handshake';
    this.detach();
    socket.on('error', () => undefined); // reported by the TLS socket on top of it
    const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: secure });
    this.input = tlsSocket;
    this.output = tlsSocket;
    // once(): a TLS 1.2 renegotiation emits 'secure' again, and must not reset the session.
    tlsSocket.once('secure', () => this.onSecure(tlsSocket));
    tlsSocket.once('close', this.onEnd);
    tlsSocket.on('error', (e) => {
      log(this.config, '', `STARTTLS: ${this.relayName()}: ${e.message}`);
      this.close();
      tlsSocket.destroy();
    });
  }

  /** RFC 3207 4.2: after the handshake the client starts over with EHLO; nothing said before counts. */
  private onSecure(socket: tls.TLSSocket): void {
    const cipher = socket.getCipher();
    const bits = Number(/(\d{3})/.exec(cipher.name)?.[1] ?? (/CHACHA20/.test(cipher.name) ? 256 : 0));
    this.tlsInfo = { version: socket.getProtocol() ?? cipher.version, cipher: cipher.standardName ?? cipher.name, bits };
    this.helo = undefined;
    this.esmtp = false;
    this.tx = undefined;
    this.authUser = undefined;
    this.mode = 'command';
    this.attach();
    this.armTimer();
  }

  /** Submission listeners only, and only once encrypted or from this host. */
  private authAllowed(): boolean {
    return this.env.kind === 'submission' && (this.tlsInfo !== undefined || this.env.loopback);
  }

  private onAuth(arg: string): void | Promise<void> {
    if (this.env.kind !== 'submission') return this.send(fail('bad-sequence', 'Error: authentication not enabled'));
    if (!this.authAllowed()) return this.send(fail('auth-needs-tls'));
    if (!this.esmtp) return this.send(fail('bad-sequence', 'Send EHLO first'));
    if (this.authUser !== undefined) return this.send(fail('bad-sequence', 'Already authenticated'));
    if (this.tx) return this.send(fail('bad-sequence', 'AUTH not permitted during a mail transaction'));
    const [mech, initial] = arg.split(/\s+/, 2);
    if (!(MECHANISMS as readonly string[]).includes(mech.toUpperCase())) return this.send(fail('auth-mechanism'));
    this.sasl = new SaslExchange(mech.toUpperCase() as Mechanism);
    return this.authStep(this.sasl.start(initial));
  }

  private async onAuthLine(line: string | 'too-long'): Promise<void> {
    if (line === 'too-long' || Buffer.byteLength(line) + 2 > LIMIT.auth) return this.endAuth(fail('auth-line-too-long'));
    await this.authStep((this.sasl as SaslExchange).respond(line));
  }

  private async authStep(step: ReturnType<SaslExchange['respond']>): Promise<void> {
    if ('challenge' in step) {
      this.mode = 'auth';
      return this.send(reply(334, '', step.challenge));
    }
    if ('error' in step) return this.endAuth(step.error);
    // The login throttle POP3 and IMAP share (auth-throttle.ts) delays, logs and blocks.
    const ok = await this.env.policy().authenticate(this.env.client, step.user, step.password, `AUTH ${(this.sasl as SaslExchange).mechanism}`);
    if (isBlocked(ok)) return this.endAuth(fail('auth-temp', ok.blocked));
    if (!ok) return this.endAuth(fail('auth-failed'));
    this.authUser = step.user;
    log(this.config, '', `AUTH=server, relay=${this.relayName()}, authid=${printable(step.user)}, mech=${(this.sasl as SaslExchange).mechanism}`);
    this.endAuth(OK.authenticated());
  }

  private endAuth(r: Reply): void {
    this.sasl = undefined;
    if (this.mode === 'auth') this.mode = 'command';
    this.send(r);
  }
}
