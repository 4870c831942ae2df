// EXPUNGE, and flags going home: one rewrite of the mbox (rewrite.ts, which
// keeps mail appended meanwhile and survives a crash) that drops the messages
// gone and gives every message whose flags or keywords changed since its
// headers were written new Status:/X-Status:/X-Keywords: fields; the others
// are copied byte for byte. Runs under the folder's lock, after a sync; the
// caller scans the result again.

import type fs from 'node:fs';
import type { Dotlock } from './dotlock.ts';
import type { MessageRecord } from './folder-file.ts';
import { type KeywordTable, withStatusHeaders } from './folder-flags.ts';
import { readAt } from './folder-reader.ts';
import { owesHeaders, type RecordTable } from './folder-records.ts';
import { rewriteMbox, type RewriteKeep, type RewriteOptions } from './rewrite.ts';
import type { MboxEntry, MboxIndex } from './scan.ts';

export interface RewriteTarget {
  mbox: string;
  table: RecordTable;
  keywords: KeywordTable;
  /** The mbox's size as the records describe it. */
  size: number;
}

/** Is there anything to rewrite: messages to drop, or headers that owe flags? */
export function rewriteNeeded(records: readonly MessageRecord[], gone: Set<number>): boolean {
  return records.some((r) => gone.has(r.uid) || owesHeaders(r));
}

/** Rewrite the mbox without `gone`, writing pending flags into the headers of the rest. */
export async function rewriteFolder(t: RewriteTarget, fh: fs.promises.FileHandle, gone: Set<number>, lock: Dotlock, options: RewriteOptions): Promise<void> {
  const keep: RewriteKeep[] = [];
  for (const r of t.table.list) {
    if (gone.has(r.uid)) continue;
    const entry = toEntry(r);
    if (!owesHeaders(r)) keep.push({ entry });
    else keep.push({ entry, headers: withStatusHeaders(await readAt(fh, r.offset + r.fromLen, r.headerLength), r.flags, t.keywords.namesOf(r.keywords)) });
  }
  await rewriteMbox(t.mbox, await mboxIndex(t, fh), keep, { ...options, lock });
}

/** rewriteMbox's view of the file: the records as scan.ts entries, the first and last From_ lines read now. */
async function mboxIndex(t: RewriteTarget, fh: fs.promises.FileHandle): Promise<MboxIndex> {
  const messages: MboxEntry[] = t.table.list.map(toEntry);
  for (const e of [messages[0], messages[messages.length - 1]]) {
    if (!e) continue;
    const line = await readAt(fh, e.offset, e.dataOffset - e.offset);
    e.fromLine = line.subarray(0, Math.min(line.length, 1000)).toString('utf8').replace(/\r?\n$/, '');
  }
  return { path: t.mbox, size: t.size, mtimeMs: 0, messages };
}

function toEntry(r: MessageRecord): MboxEntry {
  return { offset: r.offset, length: r.length, dataOffset: r.offset + r.fromLen, headerLength: r.headerLength, fromLine: '', quoted: 0 };
}
