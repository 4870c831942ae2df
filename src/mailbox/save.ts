// Appending whole messages to a person's own folder: mail's save/copy/write
// targets, ~/mbox at quit, ~/dead.letter. Runs as the folder's user (never as
// root for someone else, unlike appendToFile), under the folder's dotlock, all
// or nothing (cut back on error). A missing folder is created 0600; symlinks
// and other non-regular files are refused. A message goes in as mboxrd: the
// caller passes stored bytes made by format.ts (folderMessage for a new
// message, storedMessage for one copied with its From_ line and quoting).

import fs from 'node:fs';
import { MailError } from '../message/status.ts';
import { acquireMailboxLock } from './dotlock-helper.ts';
import { appendAllOrNothing, failureFor } from './io.ts';
import { openMailbox } from './safe-open.ts';

export { folderMessage, storedMessage } from './format.ts';

/** Append `messages` (each ready from folderMessage/storedMessage) to `file`; returns its size before. */
export async function appendToFolder(file: string, messages: Buffer[]): Promise<number> {
  const lock = await acquireMailboxLock(file);
  try {
    let box;
    try {
      box = openMailbox(file, { refuseExecutable: false, unsafe: 'mailbox-unsafe' });
    } catch (e) {
      if (e instanceof MailError) throw e;
      throw new MailError(failureFor(e), `cannot open folder: ${(e as Error).message}`, { file, cause: e });
    }
    try {
      const gap = blankLineNeeded(file, box.size);
      const pieces = gap.length ? [gap, ...messages] : messages;
      await appendAllOrNothing(box.fd, pieces, box.size);
      return box.size;
    } catch (e) {
      throw new MailError(failureFor(e), `cannot append to folder: ${(e as Error).message}`, { file, cause: e });
    } finally {
      fs.closeSync(box.fd);
    }
  } finally {
    lock.release();
  }
}

/** A folder whose last message lacks its blank line would swallow the next "From " line. */
function blankLineNeeded(file: string, size: number): Buffer {
  if (size === 0) return Buffer.alloc(0);
  const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
  try {
    const tail = Buffer.alloc(Math.min(2, size));
    fs.readSync(fd, tail, 0, tail.length, size - tail.length);
    const last = tail[tail.length - 1] === 0x0a;
    const blank = last && (tail.length === 1 || tail[0] === 0x0a);
    return Buffer.from(blank ? '' : last ? '\n' : '\n\n');
  } finally {
    fs.closeSync(fd);
  }
}
