// SASL for SMTP AUTH (RFC 4954): the PLAIN (RFC 4616) and LOGIN exchanges,
// as a small state machine the session feeds one client line at a time. It
// only decodes; checking the password (Policy.authenticate: passwd.ts through
// the login throttle, auth-throttle.ts) and replying 235/535/454 is
// the session's job. A line of "*" cancels (501), bad base64 is 501 5.5.2,
// and a PLAIN authorization identity other than the user is refused: nobody
// may act for another.

import { type Reply, fail } from './replies.ts';

export const MECHANISMS = ['PLAIN', 'LOGIN'] as const;
export type Mechanism = (typeof MECHANISMS)[number];

export type AuthStep = { challenge: string } | { user: string; password: string } | { error: Reply };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decode(line: string): string | undefined {
  if (line === '=') return ''; // RFC 4954 4: an empty initial response
  if (!BASE64.test(line)) return undefined;
  return Buffer.from(line, 'base64').toString('utf8');
}

export class SaslExchange {
  private user: string | undefined;

  constructor(readonly mechanism: Mechanism) {}

  /** The AUTH command itself, with its optional initial response. */
  start(initial: string | undefined): AuthStep {
    if (initial !== undefined && initial !== '') return this.respond(initial);
    return { challenge: this.mechanism === 'LOGIN' ? b64('Username:') : '' };
  }

  /** One client line during the exchange. */
  respond(line: string): AuthStep {
    if (line === '*') return { error: fail('auth-aborted') };
    const text = decode(line.trim());
    if (text === undefined) return { error: fail('auth-bad-encoding') };
    return this.mechanism === 'PLAIN' ? plain(text) : this.login(text);
  }

  private login(text: string): AuthStep {
    if (this.user === undefined) {
      this.user = text;
      return { challenge: b64('Password:') };
    }
    return { user: this.user, password: text };
  }
}

function plain(text: string): AuthStep {
  const parts = text.split('\0');
  if (parts.length !== 3 || parts[1] === '') return { error: fail('auth-bad-encoding', 'Cannot decode response: expected authzid NUL user NUL password') };
  const [authzid, user, password] = parts;
  if (authzid !== '' && authzid !== user) return { error: fail('auth-failed') };
  return { user, password };
}

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
