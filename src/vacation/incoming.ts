// The message vacation reads on standard input, and who sent it. mailtk,
// like sendmail and Postfix's local(8), gives a |program the "From sender
// date" envelope line, then Return-Path: and Delivered-To:, then the message
// (src/deliver/frame.ts), and the SENDER environment variable. The envelope
// sender is SENDER when set (exact, even for the null path), else the From_
// line's (MAILER-DAEMON there is the null path), else Return-Path:. Pure.

import { xtextDecode } from '../mailbox/index.ts';
import { getHeader, normalizeLineEnds, splitMessage, type HeaderField } from '../message/headers.ts';

export interface IncomingMessage {
  headers: HeaderField[];
  /** The envelope sender, '' for the null path; undefined when nothing said. */
  sender: string | undefined;
}

const FROM_LINE = /^From (\S+)/;

export function readIncoming(input: Buffer, env: NodeJS.ProcessEnv): IncomingMessage {
  let data = normalizeLineEnds(input);
  let fromLine: string | undefined;
  if (data.subarray(0, 5).toString('latin1') === 'From ') {
    const end = data.indexOf(0x0a);
    fromLine = FROM_LINE.exec(data.subarray(0, end < 0 ? data.length : end).toString('utf8'))?.[1];
    data = end < 0 ? Buffer.alloc(0) : data.subarray(end + 1);
  }
  const headers = splitMessage(data).headers;
  return { headers, sender: senderOf(env, fromLine, headers) };
}

function senderOf(env: NodeJS.ProcessEnv, fromLine: string | undefined, headers: readonly HeaderField[]): string | undefined {
  if (env.SENDER !== undefined) return env.SENDER.trim();
  if (fromLine !== undefined) return fromLine === 'MAILER-DAEMON' ? '' : xtextDecode(fromLine);
  const path = getHeader(headers, 'Return-Path');
  return path === undefined ? undefined : path.trim().replace(/^<(.*)>$/, '$1').trim();
}
