// Building the message `mail` hands to sendmail: To/Cc/Subject and reply
// headers (never Bcc: those recipients go on the command line only), plain
// US-ASCII as 7bit, anything else as UTF-8 quoted-printable (libqp), subjects
// and display names as RFC 2047 words, and with -a/~a files multipart/mixed
// with base64 parts whose types mime-types guesses from the name. LF line
// ends throughout; sendmail adds From:, Date: and Message-ID: when missing.

import fs from 'node:fs';
import path from 'node:path';
import libqp from 'libqp';
import {
  encodeWords,
  formatMailbox,
  makeHeader,
  newBoundary,
  parseAddressList,
  serializeHeaders,
  type HeaderField,
} from '../message/index.ts';
import { MailError } from '../message/status.ts';

export interface Draft {
  to: string[];
  cc: string[];
  bcc: string[];
  subject: string;
  body: string;
  attach: string[];
  from?: string;
  inReplyTo?: string;
  references?: string;
}

export function emptyDraft(): Draft {
  return { to: [], cc: [], bcc: [], subject: '', body: '', attach: [] };
}

const LONGEST_7BIT_LINE = 998;

/** An address list as a header value: display names with non-ASCII become encoded-words. */
export function addressValue(list: string[]): string {
  const text = list.join(', ');
  if (!/[^\x20-\x7e]/.test(text)) return text;
  return parseAddressList(text)
    .map((m) => formatMailbox(m.name || undefined, m.address))
    .join(', ');
}

function subjectValue(s: string): string {
  return /[^\x20-\x7e]/.test(s) ? encodeWords(s) : s;
}

/** Content-Type/Transfer-Encoding and encoded bytes for the text part. */
function textPart(body: string): { type: string; cte: string; data: string } {
  const text = body === '' || body.endsWith('\n') ? body : body + '\n';
  const ascii = !/[^\x00-\x7f]/.test(text) && text.split('\n').every((l) => l.length <= LONGEST_7BIT_LINE);
  if (ascii) return { type: 'text/plain; charset=us-ascii', cte: '7bit', data: text };
  const qp = libqp.wrap(libqp.encode(Buffer.from(text, 'utf8')), 76).replace(/\r\n/g, '\n');
  return { type: 'text/plain; charset=utf-8', cte: 'quoted-printable', data: qp };
}

/** The type mime-types guesses from the file name; octet-stream when it cannot. */
async function guessType(file: string): Promise<string> {
  const mod = await import('mime-types');
  const lookup = mod.lookup ?? (mod as unknown as { default: typeof mod }).default.lookup; // a CommonJS module
  return lookup(file) || 'application/octet-stream';
}

/** filename="x" for ASCII names, RFC 2231 filename*=UTF-8''x otherwise. */
function fileParam(name: string, param: string): string {
  if (/^[\x20-\x7e]*$/.test(name) && !/["\\]/.test(name)) return `${param}="${name}"`;
  return `${param}*=UTF-8''${encodeURIComponent(name).replace(/['()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase())}`;
}

async function attachmentPart(file: string, boundary: string): Promise<string> {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (e) {
    throw new MailError('no-input', `cannot attach: ${(e as Error).message}`, { file });
  }
  const name = path.basename(file);
  const b64 = data.toString('base64').replace(/.{76}(?=.)/g, '$&\n');
  return (
    `--${boundary}\nContent-Type: ${await guessType(file)}; ${fileParam(name, 'name')}\n` +
    `Content-Disposition: attachment; ${fileParam(name, 'filename')}\nContent-Transfer-Encoding: base64\n\n${b64}\n`
  );
}

/** The whole message, headers and body, ready for `sendmail -i`. */
export async function buildMessage(d: Draft): Promise<Buffer> {
  const h: HeaderField[] = [];
  if (d.from) h.push(makeHeader('From', addressValue([d.from])));
  if (d.to.length) h.push(makeHeader('To', addressValue(d.to)));
  if (d.cc.length) h.push(makeHeader('Cc', addressValue(d.cc)));
  h.push(makeHeader('Subject', subjectValue(d.subject)));
  if (d.inReplyTo) h.push(makeHeader('In-Reply-To', d.inReplyTo));
  if (d.references) h.push(makeHeader('References', d.references));
  h.push(makeHeader('MIME-Version', '1.0'));
  const text = textPart(d.body);
  if (d.attach.length === 0) {
    h.push(makeHeader('Content-Type', text.type), makeHeader('Content-Transfer-Encoding', text.cte));
    return Buffer.concat([serializeHeaders(h), Buffer.from('\n' + text.data, 'utf8')]);
  }
  const boundary = newBoundary({ queueId: 'mail', hostname: 'mailtk', now: new Date() }, Buffer.from(text.data));
  h.push(makeHeader('Content-Type', `multipart/mixed; boundary="${boundary}"`));
  let body = `This is a multi-part message in MIME format.\n\n--${boundary}\nContent-Type: ${text.type}\nContent-Transfer-Encoding: ${text.cte}\n\n${text.data}`;
  for (const file of d.attach) body += await attachmentPart(file, boundary);
  body += `--${boundary}--\n`;
  return Buffer.concat([serializeHeaders(h), Buffer.from('\n' + body, 'utf8')]);
}

/** Every envelope recipient, bare addresses, from To, Cc and Bcc. */
export function envelopeRecipients(d: Draft): string[] {
  const all = [...d.to, ...d.cc, ...d.bcc].join(', ');
  return parseAddressList(all).map((m) => m.address).filter((a) => a !== '');
}
