// The bytes of one message as it sits in an mbox (mboxrd; see mboxrd.ts): a
// From_ line with the sender in xtext, Return-Path: and Delivered-To:
// prepended, the data with one more '>' before every line matching ^>*From 
// (headers too, as Postfix's mail_copy quotes them), a final newline, then one
// blank line. Built as a list of slices of the caller's data, so a 50 MB
// message is never copied just to be quoted. Pure: no file system here.

import assert from 'node:assert/strict';
import { asctime } from '../message/index.ts';
import { quoteFromLines, xtextEncode } from './mboxrd.ts';

export interface MboxMessage {
  /** Envelope sender (reverse-path); '' is the null sender, shown as MAILER-DAEMON. */
  sender: string;
  /** The recipient this copy is for; it becomes the Delivered-To: line. */
  recipient: string;
  /** The message with LF line ends: headers, blank line, body. */
  data: Buffer;
  /**
   * Where an interrupted delivery placed this copy before (the queue's P
   * record): if those bytes are still there, it is not written again.
   */
  placed?: PlacedMessage;
}

/** Where one message of a batch sits in a mailbox, and a digest to recognise it there later. */
export interface PlacedMessage {
  path: string;
  offset: number;
  length: number;
  digest: string;
}

const NL = Buffer.from('\n');

export { asctime, quoteFromLines };

/**
 * The From_ line. One space before the date, as mail.local and RFC 4155 write it
 * (Postfix writes two; every reader accepts both). The sender is RFC 3461
 * xtext (xtextEncode): the line stays ASCII, which readers such as Python's
 * mailbox module require, and one word, so that readers splitting on spaces
 * find the date (readers here decode it: xtextDecode). Return-Path: keeps the
 * exact sender.
 */
export function fromLine(sender: string, now: Date): string {
  const who = sender === '' ? 'MAILER-DAEMON' : xtextEncode(sender);
  return `From ${who} ${asctime(now)}\n`;
}

/** The slices that make up one stored message, in order. */
export function formatMessage(msg: MboxMessage, now: Date): Buffer[] {
  // The queue validated the envelope; a newline here would forge headers.
  assert.ok(!/[\r\n\0]/.test(msg.sender), `envelope sender contains a line break: ${JSON.stringify(msg.sender)}`);
  assert.ok(!/[\r\n\0]/.test(msg.recipient), `recipient contains a line break: ${JSON.stringify(msg.recipient)}`);
  const head = `${fromLine(msg.sender, now)}Return-Path: <${msg.sender}>\nDelivered-To: ${msg.recipient}\n`;
  const pieces = [Buffer.from(head, 'utf8'), ...quoteFromLines(msg.data)];
  const data = msg.data;
  if (data.length > 0 && data[data.length - 1] !== 0x0a) pieces.push(NL);
  pieces.push(NL);
  return pieces;
}

/** Total bytes of a list of slices. */
export function byteLength(pieces: Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}
