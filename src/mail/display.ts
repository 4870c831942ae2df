// Showing a message: "Message N:", the From_ line, the header fields that
// ignore/retain let through (all of them for Print/Type) with RFC 2047 words
// decoded, then the text. postal-mime takes the MIME structure apart and
// decodes quoted-printable, base64 and the charset (UTF-8, GB2312, GBK, Big5,
// ISO-8859-*, through the runtime's TextDecoder); HTML-only mail is shown as
// text; attachments and other non-text parts are listed, never dumped.

import PostalMime from 'postal-mime';
import { unquoteFrom } from '../mailbox/index.ts';
import { HeaderTokens } from '../message/index.ts';
import { decodeHeader, envelopeSender } from './headline.ts';
import type { Message } from './folder.ts';
import type { Paint } from './term.ts';

export interface HeaderFilter {
  ignore: Set<string>;
  retain: Set<string>;
}

/** What mailx distributions ignore out of the box (Debian's mail.rc), plus MIME plumbing. */
export const DEFAULT_IGNORE = [
  'received', 'message-id', 'resent-message-id', 'status', 'x-status', 'mail-from', 'return-path', 'via', 'delivered-to',
  'mime-version', 'content-type', 'content-transfer-encoding', 'content-disposition', 'references', 'in-reply-to',
  'x-originating-ip', 'x-mailer', 'x-virus', 'user-agent', 'dkim-signature', 'arc-seal', 'arc-message-signature',
  'arc-authentication-results', 'authentication-results', 'received-spf', 'x-spam-status', 'x-spam-checker-version',
];

export function shows(name: string, f: HeaderFilter): boolean {
  const n = name.toLowerCase();
  return f.retain.size ? f.retain.has(n) : !f.ignore.has(n);
}

/** The header fields as lines "Name: decoded value", filtered unless `all`. */
export function headerLines(block: Buffer, f: HeaderFilter | undefined, paint: Paint): string[] {
  const out: string[] = [];
  const t = new HeaderTokens(block);
  while (t.next()) {
    const name = t.name();
    if (name === '' || (f && !shows(name, f))) continue;
    out.push(`${paint.header(name + ':')} ${decodeHeader(t.displayValue())}`);
  }
  return out;
}

interface Body {
  text: string;
  parts: string[];
}

/** Text for a person from HTML: tags dropped, breaks kept, entities postal-mime left decoded. */
function htmlToText(html: string): string {
  return html
    .replace(/<(script|style)[\s\S]*?<\/\1>/gi, '')
    .replace(/<br\s*\/?>|<\/(p|div|li|tr|h\d)>/gi, '\n')
    .replace(/<[^>]+>/g, '')
    .replace(/&nbsp;/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\n{3,}/g, '\n\n');
}

/** The readable text and a line for each attachment. */
export async function decodeBody(data: Buffer): Promise<Body> {
  const email = await PostalMime.parse(data, { attachmentEncoding: 'arraybuffer' });
  const text = email.text ?? (email.html ? htmlToText(email.html) : '');
  const parts = email.attachments.map((a, i) => {
    const size = typeof a.content === 'string' ? a.content.length : (a.content as ArrayBuffer).byteLength;
    const name = a.filename ? `${a.filename}, ` : '';
    return `[-- Attachment #${i + 1}: ${name}${a.mimeType}, ${size} bytes${a.disposition === 'inline' ? ', inline' : ''} --]`;
  });
  return { text, parts };
}

/** The From_ line with its sender decoded (envelopeSender). */
function shownFromLine(line: string): string {
  const m = /^From (\S+)(.*)$/s.exec(line);
  return m ? `From ${envelopeSender(line)}${m[2].replace(/[\x00-\x1f\x7f-\x9f]/g, '?')}` : line;
}

/** The whole display of one message; `top` cuts the body to that many lines. */
export async function renderMessage(m: Message, data: Buffer, opts: { filter?: HeaderFilter; paint: Paint; top?: number }): Promise<string> {
  const body = await decodeBody(data);
  let text = body.text.replace(/\r\n/g, '\n');
  if (opts.top !== undefined) text = text.split('\n').slice(0, opts.top).join('\n') + '\n';
  const lines = [
    opts.paint.note(`Message ${m.num}:`),
    opts.paint.note(shownFromLine(m.entry.fromLine)),
    ...headerLines(unquoteFrom(m.header), opts.filter, opts.paint),
    '',
  ];
  let out = lines.join('\n') + '\n' + text;
  if (!out.endsWith('\n')) out += '\n';
  if (body.parts.length && opts.top === undefined) out += '\n' + body.parts.join('\n') + '\n';
  return out;
}
