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
  'expired': { reply: 554, status: '5.4.7', exit: EX.UNAVAILABLE, text: 'Message could not be delivered in time' },
  'queue-write': { reply: 451, status: '4.3.0', exit: EX.TEMPFAIL, text: 'Cannot write queue file' },
  'not-allowed': { reply: 550, status: '5.7.1', exit: EX.NOPERM, text: 'Not allowed' },
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
}

export function statusOf(err: unknown): DeliveryStatus {
  if (err instanceof MailError) return { status: err.status, text: err.message };
  const e = err as NodeJS.ErrnoException;
  return { status: FAILURES.internal.status, text: e?.message ?? String(err) };
}

export function isTemporary(s: DeliveryStatus): boolean {
  return s.status.startsWith('4');
}
