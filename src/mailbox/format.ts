// The one writer of mbox messages: the bytes of one message as it sits in an
// mbox (mboxrd; see mboxrd.ts), for every program here that adds to one:
// delivery (formatMessage: Return-Path: and Delivered-To: prepended), mail(1)'s
// save/copy and dead.letter, Sieve's fileinto (folderMessage, storedMessage)
// and IMAP APPEND (storedForm with the message's flags). The form: a From_
// line with the sender in xtext, any prepended fields, the data with one more
// '>' before every line matching ^>*From  (headers too, as Postfix's mail_copy
// quotes them), a final newline, then one blank line. Built as a list of
// slices of the caller's data, so a 50 MB message is never copied just to be
// quoted. Pure: no file system here; the callers append all or nothing.

import assert from 'node:assert/strict';
import { asctime, HeaderTokens } from '../message/index.ts';
import { withStatusHeaders } from './folder-flags.ts';
import { quoteFromLines, xtextDecode, xtextEncode } from './mboxrd.ts';

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
  /** Flags to record in its header (a Sieve script's imap4flags), as StoreOptions' flags. */
  flags?: StoredFlags;
}

/** Where one message of a batch sits in a mailbox, and a digest to recognise it there later. */
export interface PlacedMessage {
  path: string;
  offset: number;
  length: number;
  digest: string;
}

/** What differs between the writers; see storedForm. */
export interface StoreOptions {
  /** Envelope sender for the From_ line; '' is the null sender, shown as MAILER-DAEMON. */
  sender: string;
  /** The From_ line's date. */
  date: Date;
  /** Header fields put before the message's own, each ending in a newline (delivery's Return-Path:, Delivered-To:). */
  prepend?: string;
  /**
   * Flags recorded in the header block (IMAP APPEND): Status:/X-Status: for
   * the system flags (folder-flags.ts's FLAG bits) and X-Keywords: for the
   * keywords, written as an IMAP rewrite writes them.
   */
  flags?: StoredFlags;
}

export interface StoredFlags {
  system: number;
  keywords: string[];
  /** Status: O, no longer new (default); false for a delivery, which leaves an unseen message new. */
  old?: boolean;
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

/**
 * The envelope sender a From_ line names, as fromLine() took it ('' for
 * MAILER-DAEMON, the null sender): its first word, xtext decoded. A line
 * written by another program is read the same way (Postfix and mail.local
 * write the address as it came).
 */
export function fromLineSender(line: string): string {
  const word = /^From (\S*)/.exec(line)?.[1] ?? '';
  const sender = word === 'MAILER-DAEMON' ? '' : xtextDecode(word);
  return /[\r\n\0]/.test(sender) ? '' : sender;
}

/** The slices that make up one stored message, in order: see the file comment. */
export function storedForm(data: Buffer, o: StoreOptions): Buffer[] {
  // A newline in the sender would end the From_ line and forge headers.
  assert.ok(!/[\r\n\0]/.test(o.sender), `envelope sender contains a line break: ${JSON.stringify(o.sender)}`);
  const pieces: Buffer[] = [Buffer.from(fromLine(o.sender, o.date) + (o.prepend ?? ''), 'utf8')];
  let tail = data;
  if (o.flags) {
    // The header block through its blank line, where the one tokenizer says the header ends (so a
    // message that begins with its blank line has none); a message without one is all header, and
    // gets its last newline, then the blank line.
    const t = new HeaderTokens(data);
    while (t.next());
    let header = data.subarray(0, t.headerEnd);
    if (t.separator === 0) header = Buffer.concat([header, ...(header.length > 0 && header[header.length - 1] === 0x0a ? [] : [NL]), NL]);
    tail = data.subarray(t.headerEnd);
    pieces.push(...quoteFromLines(withStatusHeaders(header, o.flags.system, o.flags.keywords, o.flags.old ?? true)), ...quoteFromLines(tail));
  } else pieces.push(...quoteFromLines(data));
  pieces.push(...ending(tail));
  return pieces;
}

/** What closes a message whose stored bytes end with `data`: its last newline if missing, and the blank line. */
function ending(data: Buffer): Buffer[] {
  return data.length > 0 && data[data.length - 1] !== 0x0a ? [NL, NL] : [NL];
}

/** A delivered copy: Return-Path: and Delivered-To: before the message's fields. */
export function formatMessage(msg: MboxMessage, now: Date): Buffer[] {
  // The queue validated the envelope; a newline here would forge headers.
  assert.ok(!/[\r\n\0]/.test(msg.recipient), `recipient contains a line break: ${JSON.stringify(msg.recipient)}`);
  return storedForm(msg.data, { sender: msg.sender, date: now, prepend: `Return-Path: <${msg.sender}>\nDelivered-To: ${msg.recipient}\n`, flags: msg.flags });
}

/** A new message for a person's own folder (mail's save of a sent message, dead.letter, Sieve's fileinto). */
export function folderMessage(sender: string, data: Buffer, now = new Date(), flags?: StoredFlags): Buffer {
  return Buffer.concat(storedForm(data, { sender: sender.replace(/[\r\n]/g, ''), date: now, flags }));
}

/** An mbox message as stored (From_ line through its last line), closed with the blank line it needs. */
export function storedMessage(stored: Buffer): Buffer {
  return Buffer.concat([stored, ...ending(stored)]);
}

/** Total bytes of a list of slices. */
export function byteLength(pieces: Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}
