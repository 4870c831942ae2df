// A folder's mod-sequences (RFC 7162, CONDSTORE/QRESYNC): HIGHESTMODSEQ goes
// up by one for each change, and the records changed take it (new messages,
// flag changes by a session or by another program's headers); UIDs a sync no
// longer finds are remembered with the modseq of their going in `vanished`,
// the last VANISHED_MAX of them, older ones only as `floor`, so that a client
// resyncing from further back is answered conservatively. Known limit: a
// change made less than the index's save delay before a crash is lost with
// its modseq, which a later change then takes again.

import type { IndexState, MessageRecord } from './folder-file.ts';

/** Expunged UIDs remembered with their modseq for QRESYNC; older ones are answered conservatively. */
const VANISHED_MAX = 2000;

export class ModseqLog {
  /** RFC 7162's HIGHESTMODSEQ: the modseq of the latest change. */
  highest = 1;
  /** [uid, modseq of its expunge], oldest first; expunges up to `floor` are forgotten. */
  vanished: Array<[number, number]> = [];
  floor = 0;

  /** The index's modseqs, checked: HIGHESTMODSEQ never below a message's, the expunge list well formed. */
  load(state: IndexState, records: readonly MessageRecord[]): void {
    let high = Number.isSafeInteger(state.highestModseq) ? (state.highestModseq as number) : 1;
    for (const r of records) if (r.modseq > high) high = r.modseq;
    this.highest = Math.max(1, high);
    const list = Array.isArray(state.vanished) ? state.vanished : [];
    this.vanished = list.filter((p) => Array.isArray(p) && Number.isSafeInteger(p[0]) && Number.isSafeInteger(p[1]));
    this.floor = Number.isSafeInteger(state.vanishedFloor) ? (state.vanishedFloor as number) : 0;
    if (state.highestModseq === undefined) this.floor = this.highest; // version 1: no history
  }

  /** A new modseq, for one change. */
  next(): number {
    return ++this.highest;
  }

  /** Remember UIDs that are gone, under one new modseq. */
  noteVanished(uids: number[]): void {
    if (uids.length === 0) return;
    const m = this.next();
    for (const uid of uids) this.vanished.push([uid, m]);
    if (this.vanished.length > VANISHED_MAX) {
      const dropped = this.vanished.splice(0, this.vanished.length - VANISHED_MAX);
      this.floor = Math.max(this.floor, dropped[dropped.length - 1][1]);
    }
  }

  /** UIDs expunged after `modseq`, ascending; undefined when that reaches back past what is remembered. */
  since(modseq: number): number[] | undefined {
    if (modseq < this.floor) return undefined;
    return this.vanished.filter(([, m]) => m > modseq).map(([uid]) => uid).sort((a, b) => a - b);
  }
}
