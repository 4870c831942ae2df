// How a folder catches up with its mbox. Stat the mbox; unchanged (dev,
// inode, size, mtime) means the index holds. Grown, with the last known
// message still in place and a blank line at the old end, means deliveries:
// scan only the new bytes (scanAppended). Anything else means a rewrite:
// scan it all and match the messages in order against the old records by
// fingerprint (visible header + body size, so changed Status: lines do not
// matter); once one message fails to match, it and all after it get new
// UIDs, which keeps UIDs ascending (rescan). Flags and keywords come from the
// records, except where the Status:/X-Status:/X-Keywords: headers changed
// since the last scan (mail(1) or Dovecot marked it): then the headers win.

import fs from 'node:fs';
import { MailError } from '../message/status.ts';
import type { MboxStamp, MessageRecord } from './folder-file.ts';
import { fingerprint, flagsFromHeader, type KeywordTable, keywordsFromHeader } from './folder-flags.ts';
import type { ModseqLog } from './folder-modseq.ts';
import { readAt } from './folder-reader.ts';
import { headerKeywordsOf, type RecordTable } from './folder-records.ts';
import { type ScannedMessage, scanFolder } from './folder-scan.ts';

export const EMPTY_STAMP: MboxStamp = { dev: '0', ino: '0', size: 0, mtimeNs: '0' };

/** The folder state a sync brings up to date. */
export interface SyncTarget {
  readonly mbox: string;
  readonly table: RecordTable;
  readonly modseq: ModseqLog;
  readonly keywordTable: KeywordTable;
  uidNext: number;
  /** The mbox as the records describe it. */
  stamp: MboxStamp;
  /** The records counted sizes as mboxo readers did (an old index): see Folder's load(). */
  legacyQuoting: boolean;
  /** A new message's header block, for the summaries a protocol keeps (the cache). */
  summarize(uid: number, header: Buffer): void;
}

function toStamp(st: fs.BigIntStats): MboxStamp {
  return { dev: String(st.dev), ino: String(st.ino), size: Number(st.size), mtimeNs: String(st.mtimeNs) };
}

export function sameStamp(a: MboxStamp, b: MboxStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ino === b.ino && a.dev === b.dev;
}

/** The mbox's stamp by path (EMPTY_STAMP when missing): the cheap check before taking the lock. */
export async function statStamp(file: string): Promise<MboxStamp> {
  try {
    return toStamp(await fs.promises.stat(file, { bigint: true }));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return EMPTY_STAMP;
    throw e;
  }
}

/** The stamp of the open mbox (EMPTY_STAMP for none); anything but a regular file is refused. */
export async function fileStamp(fh: fs.promises.FileHandle | undefined, file: string): Promise<MboxStamp> {
  const st = fh ? await fh.stat({ bigint: true }) : undefined;
  if (st && !st.isFile()) throw new MailError('mailbox-unsafe', 'mailbox is not a regular file', { file });
  return st ? toStamp(st) : EMPTY_STAMP;
}

/** If the mbox only grew by deliveries since t.stamp, scan the new messages in and say true. */
export async function scanAppended(t: SyncTarget, fh: fs.promises.FileHandle | undefined, stamp: MboxStamp): Promise<boolean> {
  if (!fh || !(await onlyAppended(t, fh, stamp))) return false;
  await scanFolder(fh, t.mbox, t.stamp.size, stamp.size, (m) => t.table.push(newRecord(t, m, t.uidNext++)));
  return true;
}

/** Scan the whole mbox (none: no messages) and merge it with the records; see the file comment. */
export async function rescan(t: SyncTarget, fh: fs.promises.FileHandle | undefined, size: number): Promise<void> {
  const merger = merge(t);
  if (fh) await scanFolder(fh, t.mbox, 0, size, merger.add);
  merger.finish();
  t.legacyQuoting = false;
}

/** Same file, longer, the last message we know still in place, a blank line at the old end. */
async function onlyAppended(t: SyncTarget, fh: fs.promises.FileHandle, stamp: MboxStamp): Promise<boolean> {
  const old = t.stamp;
  if (old.size === 0 || stamp.dev !== old.dev || stamp.ino !== old.ino || stamp.size <= old.size) return false;
  const tail = Buffer.alloc(7);
  await fh.read(tail, 0, 7, old.size - 2);
  if (tail.toString('latin1') !== '\n\nFrom ') return false;
  const last = t.table.list[t.table.list.length - 1];
  if (!last) return false;
  const header = await readAt(fh, last.offset + last.fromLen, last.headerLength);
  return header.length === last.headerLength && fingerprint(header, last.size - last.headerSize) === last.fp;
}

/** A record for a message first seen now. `fp`: its fingerprint when the caller has made it already. */
function newRecord(t: SyncTarget, s: ScannedMessage, uid: number, fp = fingerprint(s.header, s.size - s.headerSize)): MessageRecord {
  const hf = flagsFromHeader(s.header);
  const hk = t.keywordTable.mask(keywordsFromHeader(s.header));
  t.summarize(uid, s.header);
  return {
    uid, offset: s.offset, length: s.length, fromLen: s.fromLen, headerLength: s.headerLength, size: s.size,
    headerSize: s.headerSize, internalDate: s.internalDate, fp, flags: hf, headerFlags: hf, keywords: hk, modseq: t.modseq.next(),
  };
}

/** A whole new scan, message by message, matched against the old records. */
function merge(t: SyncTarget): { add: (s: ScannedMessage) => void; finish: () => void } {
  const old = t.table.list;
  const out: MessageRecord[] = [];
  let j = 0;
  let fresh = false;
  const legacy = t.legacyQuoting;
  const add = (s: ScannedMessage) => {
    const fp = fingerprint(s.header, s.size - s.headerSize);
    // An index of before mboxrd counted the body as served then (see ScannedMessage.deepQuoted).
    const then = legacy && s.deepQuoted > 0 ? fingerprint(s.header, s.size - s.headerSize + s.deepQuoted) : fp;
    let k = fresh ? -1 : j;
    while (k >= 0 && k < old.length && old[k].fp !== then) k++;
    if (k < 0 || k >= old.length) {
      fresh = true;
      out.push(newRecord(t, s, t.uidNext++, fp));
      return;
    }
    const o = old[k];
    j = k + 1;
    const hf = flagsFromHeader(s.header);
    const hk = t.keywordTable.mask(keywordsFromHeader(s.header));
    const flags = hf !== o.headerFlags ? hf : o.flags;
    const keywords = hk !== headerKeywordsOf(o) ? hk : o.keywords;
    const r: MessageRecord = {
      uid: o.uid, offset: s.offset, length: s.length, fromLen: s.fromLen, headerLength: s.headerLength, size: s.size,
      headerSize: s.headerSize, internalDate: s.internalDate, fp, flags, headerFlags: hf, keywords,
      modseq: flags !== o.flags || keywords !== o.keywords ? t.modseq.next() : o.modseq,
    };
    if (keywords !== hk) r.headerKeywords = hk;
    out.push(r);
  };
  const finish = () => {
    const before = t.table.list;
    t.table.set(out);
    t.modseq.noteVanished(before.filter((r) => !t.table.has(r.uid)).map((r) => r.uid));
    // The cache keeps the blobs of UIDs gone until it is next written (UIDs are never reused).
  };
  return { add, finish };
}
