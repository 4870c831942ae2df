// IMAP APPEND and COPY into a folder: the new messages in their stored form
// (format.ts, the one writer: From_ line, flags in Status:/X-Status:/
// X-Keywords:, mboxrd quoting) written at the mbox's end in one write, all
// or nothing, after the blank line the last message may lack. Runs under the
// folder's lock, after a sync; the sync after it gives the UIDs.

import fs from 'node:fs';
import { MailError } from '../message/status.ts';
import { readAt } from './folder-reader.ts';
import { storedForm } from './format.ts';
import { appendAllOrNothing } from './io.ts';
import { openMailbox } from './safe-open.ts';

export interface NewMessage {
  /** The message, LF line ends. */
  data: Buffer;
  /** The From_ line's envelope sender: a COPY keeps the original's; APPEND has none ('', MAILER-DAEMON). */
  sender?: string;
  flags: number;
  keywords: string[];
  date: Date;
}

export interface AppendPlace {
  mbox: string;
  /** Owner of a mailbox made here (root only). */
  owner?: { uid: number; gid: number };
  beneath?: { mbox?: string };
}

/** Append `messages` to the mbox that `fh` has open for reading (undefined: none yet). */
export async function appendMessages(place: AppendPlace, fh: fs.promises.FileHandle | undefined, messages: NewMessage[]): Promise<void> {
  const root = place.owner && process.geteuid?.() === 0;
  const box = openMailbox(place.mbox, {
    ...(root ? { ownerUid: place.owner!.uid, chownTo: place.owner } : {}),
    refuseExecutable: false,
    unsafe: 'mailbox-unsafe',
    beneath: place.beneath?.mbox,
  });
  try {
    const stored = messages.flatMap((m) => storedForm(m.data, { sender: m.sender ?? '', date: m.date, flags: { system: m.flags, keywords: m.keywords } }));
    await appendAllOrNothing(box.fd, [await separatorBefore(fh, box.fd, box.size, place.mbox), ...stored], box.size);
  } finally {
    fs.closeSync(box.fd);
  }
}

/**
 * The blank line a new message needs before its From_ line, given how the file
 * ends now: read through `fh`, the same file opened for reading (the append
 * descriptor is write-only).
 */
async function separatorBefore(fh: fs.promises.FileHandle | undefined, fd: number, size: number, file: string): Promise<Buffer> {
  if (size === 0) return Buffer.alloc(0);
  const mine = fs.fstatSync(fd);
  const st = fh ? await fh.stat() : undefined;
  if (!st || st.dev !== mine.dev || st.ino !== mine.ino) {
    throw new MailError('mailbox-io', 'mailbox was replaced while being appended to; nothing was written', { file });
  }
  const tail = await readAt(fh!, size - Math.min(2, size), Math.min(2, size));
  if (tail.length === 2 && tail[0] === 0x0a && tail[1] === 0x0a) return Buffer.alloc(0);
  return Buffer.from(tail[tail.length - 1] === 0x0a ? '\n' : '\n\n');
}
