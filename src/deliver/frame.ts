// How a program sees a message: sendmail's and Postfix's "From sender date"
// envelope line, then Return-Path and Delivered-To, then the message as
// queued. No >From quoting: programs (procmail, scripts) read it raw.

import { fromLine } from '../mailbox/index.ts';

export function frameForProgram(sender: string, recipient: string, data: Buffer): Buffer {
  const head = `${fromLine(sender, new Date())}Return-Path: <${sender}>\nDelivered-To: ${recipient}\n`;
  return Buffer.concat([Buffer.from(head), data]);
}
