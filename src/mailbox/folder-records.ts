// A folder's message records in mbox order, which is ascending UID order as
// this folder's syncs make them, found by UID with a binary search (after a
// look at the one after the last found: FETCH 1:* and the cache's load ask in
// order); a Map by UID is made only if the order is ever broken, so a
// 100,000-message folder holds no Map of 100,000 entries. Also what a record owes the mbox: flags or
// keywords not yet written into its headers.

import type { MessageRecord } from './folder-file.ts';

export class RecordTable {
  list: MessageRecord[] = [];
  private byUid: Map<number, MessageRecord> | undefined;
  /** Where the last search found its record. */
  private hint = -1;

  set(records: MessageRecord[]): void {
    this.list = records;
    this.byUid = undefined;
    for (let i = 1; i < records.length; i++) {
      if (records[i].uid > records[i - 1].uid) continue;
      this.byUid = new Map();
      for (const r of records) this.byUid.set(r.uid, r);
      break;
    }
  }

  push(r: MessageRecord): void {
    const last = this.list[this.list.length - 1];
    this.list.push(r);
    if (this.byUid) this.byUid.set(r.uid, r);
    else if (last && last.uid >= r.uid) this.set(this.list);
  }

  get(uid: number): MessageRecord | undefined {
    if (this.byUid) return this.byUid.get(uid);
    const rs = this.list;
    const next = this.hint + 1;
    if (next < rs.length && rs[next].uid === uid) return rs[(this.hint = next)];
    let lo = 0;
    let hi = rs.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = rs[mid].uid;
      if (v === uid) return rs[(this.hint = mid)];
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  has(uid: number): boolean {
    return this.get(uid) !== undefined;
  }
}

/** Flags or keywords changed since the headers were last written or read: the next rewrite writes them. */
export function owesHeaders(r: MessageRecord): boolean {
  return r.flags !== r.headerFlags || (r.headerKeywords !== undefined && r.headerKeywords !== r.keywords);
}

/** What X-Keywords: said when the message was last scanned, as keyword bits. */
export function headerKeywordsOf(r: MessageRecord): number {
  return r.headerKeywords ?? r.keywords;
}

/** Change a record's keywords, remembering what its header says until it is rewritten. */
export function setKeywords(r: MessageRecord, keywords: number): void {
  if (r.headerKeywords === undefined) r.headerKeywords = r.keywords;
  r.keywords = keywords;
}
