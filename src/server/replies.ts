// Reply lines of the SMTP listener. Failures come from the one failure table
// (src/message/status.ts): its reply code and RFC 3463 code, with a text that
// names what failed, as sendmail's do ("550 5.1.1 <u@d>... User unknown").
// Successes are the fixed lines below, worded as sendmail 8's (seed 001).
// Guarantees: a reply is always one or more whole CRLF lines, whatever text a
// client managed to put into it (RFC 5321 4.2: no control characters).

import { FAILURES, type Failure } from '../message/status.ts';

/** What the greeting, HELP and Received fields call this program. */
export const SOFTWARE = 'mailtk 0.1.0';

export interface Reply {
  code: number;
  /** RFC 3463 enhanced code; '' for the greeting, EHLO/HELO and 3xx replies (RFC 2034 3). */
  status: string;
  lines: string[];
}

/** RFC 5321 4.5.3.1.5: a reply line is at most 512 octets with its CRLF. */
const MAX_TEXT = 400;

/** Client text inside a reply: printable, no line breaks, bounded. */
export function printable(s: string): string {
  const clean = s.replace(/[\x00-\x1f\x7f]/g, '?');
  return clean.length > MAX_TEXT ? `${clean.slice(0, MAX_TEXT)}...` : clean;
}

export function reply(code: number, status: string, ...lines: string[]): Reply {
  return { code, status, lines };
}

/** A failure row's reply; the text defaults to the row's. */
export function fail(failure: Failure, text?: string): Reply {
  const row = FAILURES[failure];
  return { code: row.reply, status: row.status, lines: [text ?? row.text] };
}

/** Wire form: "250-..." for all lines but the last, the enhanced code on each. */
export function formatReply(r: Reply): string {
  const status = r.status ? `${r.status} ` : '';
  return r.lines.map((line, i) => `${r.code}${i < r.lines.length - 1 ? '-' : ' '}${status}${printable(line)}\r\n`).join('');
}

export function isError(r: Reply): boolean {
  return r.code >= 400;
}

// sendmail's texts for the positive replies.
export const OK = {
  sender: (arg: string) => reply(250, '2.1.0', `${arg}... Sender ok`),
  recipient: (arg: string) => reply(250, '2.1.5', `${arg}... Recipient ok`),
  startData: () => reply(354, '', 'Enter mail, end with "." on a line by itself'),
  accepted: (id: string) => reply(250, '2.0.0', `${id} Message accepted for delivery`),
  reset: () => reply(250, '2.0.0', 'Reset state'),
  noop: () => reply(250, '2.0.0', 'OK'),
  quit: (host: string) => reply(221, '2.0.0', `${host} closing connection`),
  startTls: () => reply(220, '2.0.0', 'Ready to start TLS'),
  authenticated: () => reply(235, '2.7.0', 'Authentication successful'),
  cannotVrfy: () => reply(252, '2.5.2', 'Cannot VRFY user; try RCPT to attempt delivery (or try finger)'),
} as const;
