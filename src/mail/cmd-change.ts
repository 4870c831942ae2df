// Commands that change messages or copy them out: delete, dp/dt, undelete,
// hold/preserve, mbox, touch, flag/unflag, unread; save/copy (mbox format,
// with Status: set), Save/Copy (to a file named after the sender), write (the
// body only). Changes take effect at quit (quit.ts); copies happen at once.

import path from 'node:path';
import { appendToFolder, storedMessage, withFlags } from '../mailbox/index.ts';
import { bodyData, storedData, type Message } from './folder.ts';
import { envelopeSender, pickFields, skinAddress } from './headline.ts';
import type { Args, Session } from './session.ts';
import { typeMessages } from './cmd-read.ts';

/** After deleting, the current message is the next one left (or the last one left before it). */
function moveDotPast(s: Session, last: Message): Message | undefined {
  const ms = s.messages();
  const next = ms.find((m) => m.num > last.num && !m.deleted) ?? [...ms].reverse().find((m) => !m.deleted);
  s.dot = next?.num ?? last.num;
  return next && next.num > last.num ? next : undefined;
}

export async function deleteMessages(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) {
    m.deleted = true;
    m.touched = true;
  }
  const next = moveDotPast(s, a.msgs[a.msgs.length - 1]);
  if (s.get('autoprint') !== undefined && next) await typeMessages(s, { ...a, msgs: [next] });
}

export async function deleteAndPrint(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) m.deleted = true;
  const next = moveDotPast(s, a.msgs[a.msgs.length - 1]);
  if (!next) return s.out('At EOF\n');
  await typeMessages(s, { ...a, msgs: [next] });
}

export async function undelete(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) m.deleted = false;
  s.dot = a.msgs[a.msgs.length - 1].num;
}

export async function hold(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) {
    m.preserved = true;
    m.mboxed = false;
  }
}

export async function mbox(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) {
    m.mboxed = true;
    m.preserved = false;
    m.touched = true;
  }
}

export async function touch(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) m.touched = true;
}

export const flag = (on: boolean) => async (s: Session, a: Args) => {
  for (const m of a.msgs) m.flagged = on;
};

export async function unread(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) {
    m.read = false;
    m.touched = false;
  }
}

/** The login part of the sender's address: Save's file name. */
function senderLogin(m: Message): string {
  const from = skinAddress(pickFields(m.header, ['from']).get('from') ?? (envelopeSender(m.entry.fromLine) || 'unknown'));
  return from.split('@')[0].replace(/[/\0]/g, '_') || 'unknown';
}

/** Copy messages to a folder in mbox format; `mark` makes them "saved" (gone from the inbox at quit). */
async function copyTo(s: Session, msgs: Message[], file: string, mark: boolean): Promise<void> {
  const target = s.expandName(file);
  const chunks: Buffer[] = [];
  let lines = 0;
  let bytes = 0;
  for (const m of msgs) {
    const stored = await storedData(s.folder, m);
    const fromLen = m.entry.dataOffset - m.entry.offset;
    const headers = withFlags(m.header, { ...m.stored, read: true, old: true, answered: m.answered, flagged: m.flagged, deleted: false });
    const chunk = storedMessage(Buffer.concat([stored.subarray(0, fromLen), headers, stored.subarray(fromLen + m.entry.headerLength)]));
    chunks.push(chunk);
    lines += chunk.toString('latin1').split('\n').length - 1;
    bytes += chunk.length;
  }
  const before = await appendToFolder(target, chunks);
  s.out(`"${file}" ${before > 0 ? '[Appended]' : '[New file]'} ${lines}/${bytes}\n`);
  for (const m of msgs) {
    if (mark) m.saved = true;
    m.touched = true;
  }
  s.dot = msgs[msgs.length - 1].num;
}

export const save = (mark: boolean) => async (s: Session, a: Args) => copyTo(s, a.msgs, a.file ?? s.mboxFile(), mark);

/** Save/Copy: to a file in the current directory named after the first message's sender. */
export const saveBySender = (mark: boolean) => async (s: Session, a: Args) => {
  const name = senderLogin(a.msgs[0]);
  const dir = s.get('outfolder') !== undefined ? s.expandName('+') : '.';
  await copyTo(s, a.msgs, path.join(dir, name), mark);
};

/** write: the bodies only, no headers, appended to the file. */
export async function write(s: Session, a: Args): Promise<void> {
  if (!a.file) return s.err('No file specified\n');
  const fs = await import('node:fs');
  const target = s.expandName(a.file);
  let bytes = 0;
  for (const m of a.msgs) {
    const body = await bodyData(s.folder, m);
    fs.appendFileSync(target, body, { mode: 0o600 });
    bytes += body.length;
    m.saved = true;
    m.touched = true;
  }
  s.out(`"${a.file}" ${bytes}\n`);
}
