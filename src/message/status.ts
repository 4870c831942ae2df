// The one table of failures. Each row joins an SMTP reply code, an RFC 3463
// enhanced status code, a sysexits.h exit code and a short text, so that the
// CLI (exit status), the SMTP server (reply line) and a bounce (Status: and
// Diagnostic-Code:) all say the same thing about the same failure.
// Borrowed from Postfix's sys_exits table joined to its delivery status buffer.
// Leaf module: imports nothing from mailtk.

/** sysexits.h, as sendmail and Postfix use them; scripts test these numbers. */
export const EX = {
  OK: 0,
  USAGE: 64,
  DATAERR: 65,
  NOINPUT: 66,
  NOUSER: 67,
  NOHOST: 68,
  UNAVAILABLE: 69,
  SOFTWARE: 70,
  OSERR: 71,
  OSFILE: 72,
  CANTCREAT: 73,
  IOERR: 74,
  TEMPFAIL: 75,
  PROTOCOL: 76,
  NOPERM: 77,
  CONFIG: 78,
} as const;

interface Row {
  reply: number;
  status: string;
  exit: number;
  text: string;
}

export const FAILURES = {
  'usage': { reply: 501, status: '5.5.4', exit: EX.USAGE, text: 'Usage error' },
  'no-recipients': { reply: 554, status: '5.5.1', exit: EX.USAGE, text: 'No recipient addresses found' },
  'bad-address': { reply: 553, status: '5.1.3', exit: EX.DATAERR, text: 'Bad address syntax' },
  'bad-input': { reply: 554, status: '5.6.0', exit: EX.DATAERR, text: 'Message content error' },
  'no-input': { reply: 554, status: '5.3.0', exit: EX.NOINPUT, text: 'Cannot read input' },
  'user-unknown': { reply: 550, status: '5.1.1', exit: EX.NOUSER, text: 'User unknown' },
  'host-unknown': { reply: 550, status: '5.1.2', exit: EX.NOHOST, text: 'Host unknown' },
  'relay-denied': { reply: 550, status: '5.7.1', exit: EX.UNAVAILABLE, text: 'Relaying denied' },
  'rejected': { reply: 550, status: '5.7.1', exit: EX.UNAVAILABLE, text: 'Rejected' },
  'unavailable': { reply: 550, status: '5.0.0', exit: EX.UNAVAILABLE, text: 'Service unavailable' },
  'alias-loop': { reply: 554, status: '5.4.6', exit: EX.UNAVAILABLE, text: 'Alias loop detected' },
  'mail-loop': { reply: 554, status: '5.4.6', exit: EX.UNAVAILABLE, text: 'Too many hops' },
  'program-failed': { reply: 554, status: '5.3.0', exit: EX.UNAVAILABLE, text: 'Program failed' },
  'program-tempfail': { reply: 451, status: '4.3.0', exit: EX.TEMPFAIL, text: 'Program deferred delivery' },
  'file-denied': { reply: 550, status: '5.7.1', exit: EX.NOPERM, text: 'Cannot deliver to file' },
  'mailbox-unsafe': { reply: 450, status: '4.2.0', exit: EX.TEMPFAIL, text: 'Mailbox is unsafe' },
  'mailbox-full': { reply: 452, status: '4.2.2', exit: EX.TEMPFAIL, text: 'Mailbox full' },
  'mailbox-locked': { reply: 450, status: '4.2.1', exit: EX.TEMPFAIL, text: 'Mailbox busy' },
  'mailbox-io': { reply: 451, status: '4.3.0', exit: EX.TEMPFAIL, text: 'Mailbox write error' },
  'message-too-big': { reply: 552, status: '5.3.4', exit: EX.DATAERR, text: 'Message too big' },
  'remote-temp': { reply: 451, status: '4.4.1', exit: EX.TEMPFAIL, text: 'Deferred' },
  'remote-perm': { reply: 550, status: '5.0.0', exit: EX.UNAVAILABLE, text: 'Remote host rejected' },
  'null-mx': { reply: 556, status: '5.1.10', exit: EX.NOHOST, text: 'Domain does not accept mail (null MX)' },
  'unroutable': { reply: 550, status: '5.4.4', exit: EX.NOHOST, text: 'Unable to route: no address for host' },
  'dns-temp': { reply: 451, status: '4.4.3', exit: EX.TEMPFAIL, text: 'Host name lookup failure' },
  'connect-failed': { reply: 451, status: '4.4.1', exit: EX.TEMPFAIL, text: 'No answer from host' },
  'connection-lost': { reply: 451, status: '4.4.2', exit: EX.TEMPFAIL, text: 'Lost connection with host' },
  'remote-protocol': { reply: 451, status: '4.5.0', exit: EX.PROTOCOL, text: 'Remote protocol error' },
  'tls-unavailable': { reply: 454, status: '4.7.4', exit: EX.TEMPFAIL, text: 'TLS is required, but was not offered' },
  'tls-failed': { reply: 454, status: '4.7.5', exit: EX.TEMPFAIL, text: 'TLS handshake failed' },
  'smtputf8-unavailable': { reply: 553, status: '5.6.7', exit: EX.DATAERR, text: 'SMTPUTF8 is required, but was not offered' },
  'expired': { reply: 554, status: '5.4.7', exit: EX.UNAVAILABLE, text: 'Message could not be delivered in time' },
  'queue-write': { reply: 451, status: '4.3.0', exit: EX.TEMPFAIL, text: 'Cannot write queue file' },
  'queue-full': { reply: 452, status: '4.3.1', exit: EX.TEMPFAIL, text: 'Insufficient system storage' },
  'queue-damaged': { reply: 451, status: '4.3.0', exit: EX.SOFTWARE, text: 'Queue entry damaged' },
  'not-allowed': { reply: 550, status: '5.7.1', exit: EX.NOPERM, text: 'Not allowed' },
  // The SMTP listener (src/server): RFC 5321 4.2 replies, RFC 3463 codes;
  // AUTH codes as RFC 4954 section 6 suggests, STARTTLS's as RFC 3207 4.
  'unknown-command': { reply: 500, status: '5.5.1', exit: EX.PROTOCOL, text: 'Command unrecognized' },
  'line-too-long': { reply: 500, status: '5.5.2', exit: EX.PROTOCOL, text: 'Line too long' },
  'bad-arguments': { reply: 501, status: '5.5.4', exit: EX.PROTOCOL, text: 'Invalid command arguments' },
  'bad-sender': { reply: 553, status: '5.1.7', exit: EX.DATAERR, text: 'Bad sender address syntax' },
  'bad-sequence': { reply: 503, status: '5.5.1', exit: EX.PROTOCOL, text: 'Bad sequence of commands' },
  'command-disabled': { reply: 502, status: '5.7.0', exit: EX.PROTOCOL, text: 'Sorry, we do not allow this operation' },
  'unknown-parameter': { reply: 555, status: '5.5.4', exit: EX.PROTOCOL, text: 'Parameter unrecognized' },
  'non-ascii-address': { reply: 553, status: '5.6.7', exit: EX.DATAERR, text: 'A non-ASCII address needs SMTPUTF8' },
  'too-many-recipients': { reply: 452, status: '4.5.3', exit: EX.TEMPFAIL, text: 'Too many recipients' },
  'bare-newline': { reply: 550, status: '5.5.2', exit: EX.DATAERR, text: 'Bare CR or LF received: lines end with CRLF' },
  'too-many-errors': { reply: 421, status: '4.7.0', exit: EX.PROTOCOL, text: 'Too many errors' },
  'timeout': { reply: 421, status: '4.4.2', exit: EX.TEMPFAIL, text: 'Timeout exceeded' },
  'too-many-connections': { reply: 421, status: '4.7.0', exit: EX.TEMPFAIL, text: 'Too many connections from your host' },
  // Rate limits per client address (src/server/anvil.ts; Postfix's anvil replies).
  'connection-rate': { reply: 421, status: '4.7.0', exit: EX.TEMPFAIL, text: 'Too many connections from your address' },
  'message-rate': { reply: 452, status: '4.7.0', exit: EX.TEMPFAIL, text: 'Too much mail from your address' },
  'recipient-rate': { reply: 452, status: '4.7.0', exit: EX.TEMPFAIL, text: 'Too many recipients from your address' },
  'server-busy': { reply: 421, status: '4.3.2', exit: EX.TEMPFAIL, text: 'Too many open connections' },
  'shutting-down': { reply: 421, status: '4.3.2', exit: EX.TEMPFAIL, text: 'Service shutting down' },
  'listen-failed': { reply: 421, status: '4.3.2', exit: EX.OSERR, text: 'Cannot open a listening socket' },
  'starttls-unavailable': { reply: 454, status: '4.7.0', exit: EX.TEMPFAIL, text: 'TLS not available due to temporary reason' },
  'auth-required': { reply: 530, status: '5.7.0', exit: EX.NOPERM, text: 'Authentication required' },
  'auth-failed': { reply: 535, status: '5.7.8', exit: EX.NOPERM, text: 'Authentication credentials invalid' },
  'auth-needs-tls': { reply: 538, status: '5.7.11', exit: EX.NOPERM, text: 'Encryption required for requested authentication mechanism' },
  'auth-mechanism': { reply: 504, status: '5.5.4', exit: EX.PROTOCOL, text: 'Unrecognized authentication type' },
  'auth-aborted': { reply: 501, status: '5.7.0', exit: EX.PROTOCOL, text: 'Authentication aborted' },
  'auth-bad-encoding': { reply: 501, status: '5.5.2', exit: EX.PROTOCOL, text: 'Cannot decode response' },
  'auth-line-too-long': { reply: 500, status: '5.5.6', exit: EX.PROTOCOL, text: 'Authentication Exchange line is too long' },
  'auth-temp': { reply: 454, status: '4.7.0', exit: EX.TEMPFAIL, text: 'Temporary authentication failure' },
  // A DNS block list names the client or the sender's domain (src/server/dnsbl.ts; Postfix's reply).
  'blocklisted': { reply: 554, status: '5.7.1', exit: EX.UNAVAILABLE, text: 'Service unavailable' },
  'config': { reply: 451, status: '4.3.5', exit: EX.CONFIG, text: 'Configuration error' },
  'internal': { reply: 451, status: '4.3.0', exit: EX.SOFTWARE, text: 'Internal error' },
} as const satisfies Record<string, Row>;

export type Failure = keyof typeof FAILURES;

export interface Where {
  file?: string;
  line?: number;
  cause?: unknown;
}

export class MailError extends Error {
  readonly failure: Failure;
  readonly reply: number;
  readonly status: string;
  readonly exit: number;
  readonly temporary: boolean;
  readonly detail: string;
  readonly where: Where | undefined;

  constructor(failure: Failure, detail: string, where?: Where, override?: { reply?: number; status?: string }) {
    const row: Row = FAILURES[failure];
    const place = where?.file ? `${where.file}${where.line ? `:${where.line}` : ''}: ` : '';
    super(place + detail, where?.cause !== undefined ? { cause: where.cause } : undefined);
    this.name = 'MailError';
    this.failure = failure;
    this.detail = detail;
    this.where = where;
    this.reply = override?.reply ?? row.reply;
    this.status = override?.status ?? row.status;
    this.exit = row.exit;
    this.temporary = this.status.startsWith('4');
  }

  /** The SMTP reply line body: "550 5.1.1 detail". */
  get replyLine(): string {
    return `${this.reply} ${this.status} ${this.message}`;
  }
}

/** A failure carried by a delivery result or a queue record, without a stack. */
export interface DeliveryStatus {
  status: string; // RFC 3463, e.g. 5.1.1
  text: string; // human text, e.g. "User unknown"
  remote?: string; // a remote server's reply, quoted in the DSN's Diagnostic-Code
  remoteMta?: string; // the host that gave that reply, the DSN's Remote-MTA
}

export function statusOf(err: unknown): DeliveryStatus {
  if (err instanceof MailError) return { status: err.status, text: err.message };
  const e = err as NodeJS.ErrnoException;
  return { status: FAILURES.internal.status, text: e?.message ?? String(err) };
}

export function isTemporary(s: DeliveryStatus): boolean {
  return s.status.startsWith('4');
}
