// What one IMAP session believes about its selected mailbox (RFC 3501 5.2,
// 7.4.1): the sequence of UIDs it has been told of, the flags it last saw,
// and its \Recent messages. The Folder is shared and moves on by itself
// (deliveries, other sessions, POP3, mail(1)); updates() turns the difference
// into untagged EXISTS, RECENT, FETCH FLAGS and EXPUNGE responses (RECENT
// also when expunges took \Recent messages away), holding
// EXPUNGE back while a FETCH, STORE or SEARCH is answered, as the RFC asks.
// Once the session has CONDSTORE on, flag changes carry MODSEQ; once QRESYNC,
// expunges go out as one VANISHED with their UIDs (RFC 7162 3.1, 3.2.7).
// An IMAP4rev2 session has no \Recent (RFC 9051 removed it): it claims none,
// so that an IMAP4rev1 session beside it still gets them, and is sent no
// RECENT response. A keyword new to the mailbox is announced at once with
// FLAGS and PERMANENTFLAGS, as at SELECT (RFC 3501 7.2.6), as Dovecot does.

import type { Folder, MessageRecord } from '../mailbox/index.ts';
import { SYSTEM_FLAGS } from '../mailbox/index.ts';
import { formatSet } from './imap-wire.ts';

export class MailboxView {
  uids: number[] = [];
  /**
   * The flags each message had when the client was last told, by position
   * in `uids`: flags + keywords * 64 (+ 32 when \\Recent). A typed array,
   * not a Map by UID: 0.8 MB for 100,000 messages, not about 5 MB.
   */
  private known = new Float64Array(0);
  readonly recent = new Set<number>();
  private seenVersion = -1;
  /** The client has been sent HIGHESTMODSEQ for this mailbox. */
  modseqTold = false;
  /** How many of the folder's keywords the client has been told of in FLAGS. */
  private keywordsTold = 0;
  /** SEARCHRES (RFC 5182): the UIDs the last SEARCH RETURN (SAVE) kept, named "$" by later commands. */
  saved = new Set<number>();

  /** `enabled`: the session's extensions turned on (CONDSTORE, QRESYNC, IMAP4REV2), read at each update. */
  constructor(readonly folder: Folder, readonly name: string, readonly readOnly: boolean, private readonly enabled: ReadonlySet<string> = new Set()) {}

  /** Take the folder as it is now: the start of SELECT/EXAMINE. */
  reset(): void {
    const rs = this.folder.records;
    this.uids = rs.map((r) => r.uid);
    if (!this.rev2) for (const uid of this.folder.takeRecent(!this.readOnly)) this.recent.add(uid);
    this.known = new Float64Array(rs.length);
    for (let i = 0; i < rs.length; i++) this.known[i] = this.flagKey(rs[i]);
    this.seenVersion = this.folder.version;
    this.keywordsTold = this.folder.keywords.length;
  }

  /** The FLAGS response and PERMANENTFLAGS code of SELECT (RFC 3501 6.3.1), with the keywords now in use. */
  flagsResponses(): string[] {
    const kw = this.folder.keywords;
    this.keywordsTold = kw.length;
    const flags = `\\Answered \\Flagged \\Deleted \\Seen \\Draft${kw.length ? ` ${kw.join(' ')}` : ''}`;
    // Under EXAMINE no flag can be changed (RFC 3501 6.3.2): the list is empty, as Dovecot sends it.
    const permanent = this.readOnly ? '' : `${flags}${kw.length < 32 ? ' \\*' : ''}`;
    return [`FLAGS (${flags})`, `OK [PERMANENTFLAGS (${permanent})] ${this.readOnly ? 'Read-only mailbox' : 'Flags permitted'}`];
  }

  /** FLAGS and PERMANENTFLAGS again when a keyword was added since the client was told (none otherwise). */
  keywordNews(): string[] {
    return this.keywordsTold === this.folder.keywords.length ? [] : this.flagsResponses();
  }

  /** "(\Seen $Label1 \Recent)": system flags, keywords, and \Recent when this session has it. */
  flagText(r: MessageRecord): string {
    const names: string[] = [];
    for (const [bit, name] of SYSTEM_FLAGS) if (r.flags & bit) names.push(name);
    if (r.keywords) names.push(...this.folder.keywordNames(r.keywords));
    if (this.recent.has(r.uid)) names.push('\\Recent');
    return `(${names.join(' ')})`;
  }

  private get rev2(): boolean {
    return this.enabled.has('IMAP4REV2');
  }

  private flagKey(r: MessageRecord): number {
    return r.flags + (this.recent.has(r.uid) ? 32 : 0) + r.keywords * 64;
  }

  /** Note that the client has just been sent the message's flags. */
  told(r: MessageRecord): void {
    const i = this.seqOf(r.uid) - 1;
    if (i >= 0) this.known[i] = this.flagKey(r);
  }

  /** Where seqOf last found its UID: a FETCH 1:* asks for the next one. */
  private hint = -1;

  seqOf(uid: number): number {
    const next = this.hint + 1;
    if (next < this.uids.length && this.uids[next] === uid) return (this.hint = next) + 1;
    let lo = 0;
    let hi = this.uids.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const v = this.uids[mid];
      if (v === uid) return (this.hint = mid) + 1;
      if (v < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return 0;
  }

  get maxUid(): number {
    return this.uids.length ? this.uids[this.uids.length - 1] : 0;
  }

  /** Untagged responses that bring the client up to date. */
  updates(allowExpunge: boolean): string[] {
    const out: string[] = [];
    if (allowExpunge) this.expunges(out);
    const before = this.uids.length;
    const last = this.maxUid;
    const fresh = this.folder.records.filter((r) => r.uid > last);
    if (fresh.length) {
      const claimed = this.rev2 ? new Set<number>() : this.folder.takeRecent(!this.readOnly);
      if (this.known.length < this.uids.length + fresh.length) {
        const grown = new Float64Array(Math.max(64, (this.uids.length + fresh.length) * 1.5));
        grown.set(this.known.subarray(0, this.uids.length));
        this.known = grown;
      }
      for (const r of fresh) {
        this.uids.push(r.uid);
        if (claimed.has(r.uid)) this.recent.add(r.uid);
        this.known[this.uids.length - 1] = this.flagKey(r);
      }
      out.push(`${this.uids.length} EXISTS`);
      if (!this.rev2) out.push(`${this.recent.size} RECENT`);
    }
    out.push(...this.keywordNews());
    if (this.seenVersion === this.folder.version) return out;
    this.seenVersion = this.folder.version;
    for (let i = 0; i < before; i++) {
      const r = this.folder.byUidGet(this.uids[i]);
      if (!r) continue;
      const key = this.flagKey(r);
      if (this.known[i] !== key) {
        this.known[i] = key;
        const modseq = this.enabled.has('CONDSTORE') ? ` MODSEQ (${r.modseq})` : '';
        out.push(`${i + 1} FETCH (UID ${r.uid} FLAGS ${this.flagText(r)}${modseq})`);
      }
    }
    return out;
  }

  /** "* n EXPUNGE" for messages gone from the folder, highest first so numbers stay right; with QRESYNC one "* VANISHED uids". */
  private expunges(out: string[]): void {
    const gone: number[] = [];
    const recent = this.recent.size;
    for (let i = this.uids.length - 1; i >= 0; i--) {
      const uid = this.uids[i];
      if (this.folder.byUidGet(uid)) continue;
      this.uids.splice(i, 1);
      this.known.copyWithin(i, i + 1, this.uids.length + 1);
      this.recent.delete(uid);
      gone.push(uid);
      out.push(`${i + 1} EXPUNGE`);
    }
    if (gone.length && this.enabled.has('QRESYNC')) out.splice(out.length - gone.length, gone.length, `VANISHED ${formatSet(gone.reverse())}`);
    // The size of the mailbox changed and with it the number of \Recent messages: RECENT (RFC 3501 7.3.2), as Dovecot.
    if (this.recent.size !== recent) out.push(`${this.recent.size} RECENT`);
  }
}
