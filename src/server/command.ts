// SMTP command lines parsed into types: the verb and its argument, and the
// paths of MAIL FROM / RCPT TO with their ESMTP parameters (SIZE, BODY,
// SMTPUTF8 on MAIL; DSN's RET/ENVID and NOTIFY/ORCPT, RFC 3461; AUTH= of
// RFC 4954, accepted and ignored). Lenient where sendmail is (no angle
// brackets, a space after the colon); strict about what reaches the queue
// (xtext decoded and checked, no control characters). Pure: no I/O.

import { normalizePath, validateEnvelopeAddress } from '../message/index.ts';
import { type Reply, fail, printable } from './replies.ts';

export interface Command {
  verb: string; // upper case
  arg: string;
}

export function parseCommand(line: string): Command {
  const m = /^\s*(\S*)\s*(.*?)\s*$/s.exec(line) as RegExpExecArray;
  return { verb: m[1].toUpperCase(), arg: m[2] };
}

export interface PathArg {
  /** The address: angle brackets and source route removed; '' is the null path. */
  address: string;
  /** The path as the client wrote it, for replies and logs ("<u@d>"). */
  given: string;
  params: Map<string, string | true>;
}

export interface MailParams {
  size?: number;
  body?: '7BIT' | '8BITMIME';
  smtputf8: boolean;
  ret?: 'full' | 'hdrs';
  envid?: string;
}

export interface RcptParams {
  notify?: string;
  orcpt?: string;
}

type Parsed<T> = T | { error: Reply };

export function isError<T extends object>(p: Parsed<T>): p is { error: Reply } {
  return 'error' in p;
}

const KEYWORD = { FROM: /^FROM\s*:\s*/i, TO: /^TO\s*:\s*/i };

/** "FROM:<a@b> SIZE=10" -> the path and its parameters. */
export function parsePathArg(arg: string, keyword: 'FROM' | 'TO'): Parsed<PathArg> {
  const m = KEYWORD[keyword].exec(arg);
  if (!m) return { error: fail('bad-arguments', `Syntax error in parameters scanning "${keyword.toLowerCase()}"`) };
  const rest = arg.slice(m[0].length);
  const end = rest.startsWith('<') ? closingBracket(rest) : rest.search(/\s|$/);
  if (end < 0) return { error: fail('bad-arguments', `Unbalanced '<' in "${printable(rest)}"`) };
  const given = rest.slice(0, end);
  if (given === '') return { error: fail('bad-arguments', `Syntax error in parameters scanning "${keyword.toLowerCase()}"`) };
  const params = parseParams(rest.slice(end));
  if (isError(params)) return params;
  const address = normalizePath(given);
  const bad = validateEnvelopeAddress(address);
  if (bad) return { error: fail('bad-address', `${printable(given)}... ${bad}`) };
  return { address, given, params };
}

/** The index just past the '>' that closes a path, quotes respected; -1 if none. */
function closingBracket(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '>' && !quoted) return i + 1;
  }
  return -1;
}

function parseParams(s: string): Parsed<Map<string, string | true>> {
  const params = new Map<string, string | true>();
  for (const word of s.trim().split(/\s+/).filter(Boolean)) {
    const eq = word.indexOf('=');
    const key = (eq < 0 ? word : word.slice(0, eq)).toUpperCase();
    if (!/^[A-Z0-9][A-Z0-9-]*$/.test(key)) return { error: fail('bad-arguments', `Syntax error in parameter "${printable(word)}"`) };
    if (params.has(key)) return { error: fail('bad-arguments', `Duplicate ${key} parameter`) };
    params.set(key, eq < 0 ? true : word.slice(eq + 1));
  }
  return params;
}

/** RFC 3461 4: xtext, "+XX" for what is not printable ASCII or is '+' or '='. */
export function decodeXtext(s: string): string | undefined {
  if (!/^(?:[!-*,-<>-~]|\+[0-9A-F]{2})*$/.test(s)) return undefined;
  return s.replace(/\+([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}

const CONTROL = /[\x00-\x1f\x7f]/;

export function mailParams(params: Map<string, string | true>, maxSize: number): Parsed<MailParams> {
  const out: MailParams = { smtputf8: false };
  for (const [key, value] of params) {
    const v = typeof value === 'string' ? value : '';
    switch (key) {
      case 'SIZE':
        if (!/^\d{1,15}$/.test(v)) return { error: fail('bad-arguments', `Bad SIZE parameter "${printable(v)}"`) };
        out.size = Number(v);
        if (out.size > maxSize) {
          return { error: fail('message-too-big', `Message size exceeds fixed maximum message size (${maxSize})`) };
        }
        break;
      case 'BODY':
        if (!/^(7BIT|8BITMIME)$/i.test(v)) return { error: fail('unknown-parameter', `Unknown BODY type "${printable(v)}"`) };
        out.body = v.toUpperCase() as MailParams['body'];
        break;
      case 'SMTPUTF8':
        if (value !== true) return { error: fail('bad-arguments', 'SMTPUTF8 takes no value') };
        out.smtputf8 = true;
        break;
      case 'RET':
        if (!/^(FULL|HDRS)$/i.test(v)) return { error: fail('bad-arguments', `Bad RET parameter "${printable(v)}"`) };
        out.ret = v.toLowerCase() as MailParams['ret'];
        break;
      case 'ENVID': {
        const id = decodeXtext(v);
        if (id === undefined || v.length > 100 || CONTROL.test(id)) {
          return { error: fail('bad-arguments', `Bad ENVID parameter "${printable(v)}"`) };
        }
        out.envid = id;
        break;
      }
      case 'AUTH':
        // RFC 4954 5: the original submitter; we record who authenticated here instead.
        if (decodeXtext(v) === undefined) return { error: fail('bad-arguments', `Bad AUTH parameter "${printable(v)}"`) };
        break;
      default:
        return { error: fail('unknown-parameter', `${printable(key)} parameter unrecognized`) };
    }
  }
  return out;
}

const NOTIFY_WORDS = ['SUCCESS', 'FAILURE', 'DELAY'];

export function rcptParams(params: Map<string, string | true>): Parsed<RcptParams> {
  const out: RcptParams = {};
  for (const [key, value] of params) {
    const v = typeof value === 'string' ? value : '';
    if (key === 'NOTIFY') {
      const words = v.toUpperCase().split(',');
      const ok =
        (words.length === 1 && words[0] === 'NEVER') ||
        (words.every((w) => NOTIFY_WORDS.includes(w)) && new Set(words).size === words.length);
      if (!ok) return { error: fail('bad-arguments', `Bad NOTIFY parameter "${printable(v)}"`) };
      out.notify = words.join(',');
    } else if (key === 'ORCPT') {
      const semi = v.indexOf(';');
      const addr = semi > 0 ? decodeXtext(v.slice(semi + 1)) : undefined;
      if (addr === undefined || addr === '' || !/^[A-Za-z0-9-]+$/.test(v.slice(0, semi)) || CONTROL.test(addr)) {
        return { error: fail('bad-arguments', `Bad ORCPT parameter "${printable(v)}"`) };
      }
      out.orcpt = `${v.slice(0, semi)};${addr}`;
    } else {
      return { error: fail('unknown-parameter', `${printable(key)} parameter unrecognized`) };
    }
  }
  return out;
}
