// An open folder as mail sees it: the mbox index with each message's header
// block, line count and size (one pass of scanMboxHeaders), and each message's
// state for this session (read, deleted, saved, preserved, mboxed, touched),
// seeded from its Status:/X-Status: headers. Message bytes are read on demand,
// one message at a time. A rewrite interrupted by a crash is recovered first.

import fs from 'node:fs';
import { loadWordDecoder, summaryOf, type SummaryFields } from './headline.ts';
import {
  acquireMailboxLock,
  flagsFrom,
  pendingRewrite,
  readMessageBytes,
  recoverRewrite,
  scanMboxHeaders,
  unquoteFrom,
  type MboxEntry,
  type MboxIndex,
  type MessageFlags,
} from '../mailbox/index.ts';

export interface Message {
  num: number;
  entry: MboxEntry;
  header: Buffer;
  /** From:, Subject: and Date: as the summary and message lists use them. */
  fields: SummaryFields;
  lines: number;
  /** Bytes from the From_ line to the next message (mailx's count). */
  size: number;
  /** The flags as stored when the folder was opened. */
  stored: MessageFlags;
  read: boolean;
  /** New: neither read nor seen (no Status: O) before this session, and not read in it. */
  isNew: boolean;
  deleted: boolean;
  saved: boolean;
  preserved: boolean;
  mboxed: boolean;
  /** Looked at this session: read, or marked for mbox (POSIX's "touched"). */
  touched: boolean;
  answered: boolean;
  flagged: boolean;
}

export interface Folder {
  path: string;
  /** The user's system mailbox: quit moves read mail to mbox and keeps the rest. */
  system: boolean;
  readOnly: boolean;
  index: MboxIndex;
  messages: Message[];
}

/** Open a folder; a missing file is an empty folder. */
export async function openFolder(path: string, opts: { system: boolean; readOnly: boolean }): Promise<Folder> {
  if (!opts.readOnly && pendingRewrite(path)) {
    const lock = await acquireMailboxLock(path);
    try {
      recoverRewrite(path);
    } finally {
      lock.release();
    }
  }
  let scan;
  try {
    scan = await scanMboxHeaders(path, { blocking: true }); // a one-shot command: see ScanHeadersOptions
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    return { path, ...opts, index: { path, size: 0, mtimeMs: 0, messages: [] }, messages: [] };
  }
  const { index, headers, lines } = scan;
  const messages = index.messages.map((entry, i): Message => {
    const { fields, status, xstatus } = summaryOf(headers[i]);
    const stored = flagsFrom(status, xstatus);
    const next = i + 1 < index.messages.length ? index.messages[i + 1].offset : index.size;
    return {
      num: i + 1,
      entry,
      header: headers[i],
      fields,
      lines: lines[i],
      size: next - entry.offset,
      stored,
      read: stored.read,
      isNew: !stored.read && !stored.old,
      deleted: false,
      saved: false,
      preserved: false,
      mboxed: false,
      touched: false,
      answered: stored.answered,
      flagged: stored.flagged,
    };
  });
  if (messages.some((m) => m.fields.subject.includes('=?') || m.fields.from.includes('=?'))) await loadWordDecoder();
  return { path, ...opts, index, messages };
}

/** The message as sent: headers and body, mboxrd quoting undone. */
export async function messageData(folder: Folder, m: Message): Promise<Buffer> {
  return unquoteFrom(await readMessageBytes(folder.path, m.entry));
}

/** The body as sent (quoting undone), without the header block. */
export async function bodyData(folder: Folder, m: Message): Promise<Buffer> {
  return unquoteFrom((await readMessageBytes(folder.path, m.entry)).subarray(m.entry.headerLength));
}

/** The message as stored, From_ line included (for saving to another folder). */
export async function storedData(folder: Folder, m: Message): Promise<Buffer> {
  const data = await readMessageBytes(folder.path, m.entry);
  return Buffer.concat([Buffer.from(m.entry.fromLine + '\n'), data]);
}

/** True when the file has grown since it was opened: new mail arrived. */
export function hasNewMail(folder: Folder): boolean {
  try {
    return fs.statSync(folder.path).size > folder.index.size;
  } catch {
    return false;
  }
}
