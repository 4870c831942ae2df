// RFC 5256's pure parts: base subject extraction (section 2.1), the sent date
// (2.2), the SORT comparison (3) and the two THREAD algorithms (4):
// ORDEREDSUBJECT and REFERENCES. The commands themselves are imap-sort.ts;
// everything here works on plain records, so it is tested on its own
// (imap-thread.test.ts).

/** What SORT and THREAD need of one message. */
export interface SortMsg {
  /** The number the response gives: the sequence number, or the UID for UID SORT/THREAD. */
  n: number;
  /** Sequence number: the last tie-breaker (RFC 5256 3, 2.2). */
  seq: number;
  /** Internal date, ms. */
  arrival: number;
  /** RFC822.SIZE. */
  size: number;
  /** The Date: header as ms, NaN when missing or unreadable. */
  date: number;
  /** The Subject: header, encoded words decoded (RFC 5256 2.1 step 1), '' when missing. */
  subject: string;
  /** addr-mailbox of the first From, To and Cc address ('' when none). */
  from: string;
  to: string;
  cc: string;
  messageId?: string;
  references?: string;
  inReplyTo?: string;
}

// ------------------------------------------------------------ 2.1 base subject

const BLOB = String.raw`\[[^\[\]]*\] *`; // subj-blob = "[" *BLOBCHAR "]" *WSP
const LEADER = new RegExp(String.raw`^(?:(?:${BLOB})*(?:re|fwd?) *(?:${BLOB})?:| )`, 'i'); // subj-leader (step 3)
const BLOB_START = new RegExp(`^${BLOB}`); // step 4
const TRAILER = /(?:\(fwd\)| )$/i; // subj-trailer = "(fwd)" / WSP (step 2)

/**
 * RFC 5256 2.1: the base subject of a (decoded) subject, and whether it was
 * a reply or forward: whether step 2 removed "(fwd)", step 3 a subj-refwd or
 * step 6 a "[fwd: ...]" (the test of REFERENCES step 5 D and E iii).
 */
export function baseSubject(decoded: string): { base: string; replyOrFwd: boolean } {
  // Step 1: tabs and continuations to spaces, runs of spaces to one (encoded words are decoded by the caller).
  let s = decoded.replace(/\r?\n/g, '').replace(/[\t ]+/g, ' ');
  let replyOrFwd = false;
  for (;;) {
    // Step 2: remove trailers, repeatedly.
    for (let m = TRAILER.exec(s); m; m = TRAILER.exec(s)) {
      if (m[0] !== ' ') replyOrFwd = true;
      s = s.slice(0, s.length - m[0].length);
    }
    // Steps 3 to 5: leaders and blobs, until neither matches.
    for (let changed = true; changed; ) {
      changed = false;
      const lead = LEADER.exec(s);
      if (lead && lead[0].length > 0) {
        if (lead[0] !== ' ') replyOrFwd = true;
        s = s.slice(lead[0].length);
        changed = true;
      }
      const blob = BLOB_START.exec(s);
      // Step 4: only when what is left is a non-empty subj-base (some non-space).
      if (blob && /[^ ]/.test(s.slice(blob[0].length))) {
        s = s.slice(blob[0].length);
        changed = true;
      }
    }
    // Step 6: "[fwd:" ... "]" around it all: remove both and go again from step 2.
    const fwd = /^\[fwd:([\s\S]*)\]$/i.exec(s);
    if (!fwd) break;
    s = fwd[1];
    replyOrFwd = true;
  }
  return { base: s, replyOrFwd };
}

/** i;ascii-casemap (RFC 4790 9.2): ASCII letters compared as upper case, octet by octet. */
export function casemap(s: string): string {
  return s.replace(/[a-z]+/g, (x) => x.toUpperCase());
}

function cmpStr(a: string, b: string): number {
  const x = Buffer.from(casemap(a), 'utf8');
  const y = Buffer.from(casemap(b), 'utf8');
  return Buffer.compare(x, y);
}

/** 2.2: the sent date, the internal date when the Date: header cannot be had. */
export function sentDate(m: SortMsg): number {
  return Number.isFinite(m.date) ? m.date : m.arrival;
}

/** 2.2: by sent date; equal dates by sequence number. */
function bySentDate(a: SortMsg, b: SortMsg): number {
  return sentDate(a) - sentDate(b) || a.seq - b.seq;
}

// ------------------------------------------------------------ 3 SORT

export type SortKey = 'ARRIVAL' | 'CC' | 'DATE' | 'FROM' | 'SIZE' | 'SUBJECT' | 'TO';
export const SORT_KEYS = new Set<SortKey>(['ARRIVAL', 'CC', 'DATE', 'FROM', 'SIZE', 'SUBJECT', 'TO']);

/**
 * RFC 5256 3: each key in turn, REVERSE reversing only its own key; messages
 * equal under every key in mailbox order (by sequence number). Strings by
 * i;ascii-casemap, a missing value as the empty string; DATE is the sent date
 * (2.2), SUBJECT the base subject (2.1).
 */
export function sortMessages(msgs: SortMsg[], keys: Array<{ key: SortKey; reverse: boolean }>): SortMsg[] {
  const bases = new Map<SortMsg, string>();
  const base = (m: SortMsg) => {
    let b = bases.get(m);
    if (b === undefined) bases.set(m, (b = baseSubject(m.subject).base));
    return b;
  };
  const cmp = (key: SortKey, a: SortMsg, b: SortMsg): number => {
    switch (key) {
      case 'ARRIVAL': return a.arrival - b.arrival;
      case 'DATE': return sentDate(a) - sentDate(b);
      case 'SIZE': return a.size - b.size;
      case 'SUBJECT': return cmpStr(base(a), base(b));
      case 'FROM': return cmpStr(a.from, b.from);
      case 'TO': return cmpStr(a.to, b.to);
      case 'CC': return cmpStr(a.cc, b.cc);
    }
  };
  return [...msgs].sort((a, b) => {
    for (const k of keys) {
      const r = cmp(k.key, a, b);
      if (r !== 0) return k.reverse ? -r : r;
    }
    return a.seq - b.seq;
  });
}

// ------------------------------------------------------------ 4 THREAD

/** A thread node: a message, or a dummy (msg undefined) standing for one not searched or not here. */
export interface ThreadNode {
  msg?: SortMsg;
  children: ThreadNode[];
}

/**
 * RFC 5256 4, ORDEREDSUBJECT: sorted by base subject, then sent date; each
 * run of one base subject a thread whose first message is the parent of
 * all the others (siblings in sent-date order); threads ordered by the sent
 * date of their first message.
 */
export function threadOrderedSubject(msgs: SortMsg[]): ThreadNode[] {
  const keyed = msgs.map((m) => ({ m, base: casemap(baseSubject(m.subject).base) }));
  keyed.sort((a, b) => Buffer.compare(Buffer.from(a.base), Buffer.from(b.base)) || bySentDate(a.m, b.m));
  const threads: ThreadNode[] = [];
  let last: string | undefined;
  for (const { m, base } of keyed) {
    if (last === base && threads.length) threads[threads.length - 1].children.push({ msg: m, children: [] });
    else threads.push({ msg: m, children: [] });
    last = base;
  }
  return threads.sort((a, b) => bySentDate(a.msg!, b.msg!));
}

interface Container extends ThreadNode {
  id: string;
  parent?: Container;
  children: Container[];
}

/** The message IDs of a header value: every <...>, in order (RFC 5256 4, REFERENCES step 1: valid ones only). */
export function messageIds(value: string | undefined): string[] {
  if (!value) return [];
  const out: string[] = [];
  for (const m of value.matchAll(/<([^<>@\s]+@[^<>\s]+)>/g)) out.push(m[1]);
  return out;
}

/** Whether `b` is `a` or lies below it. */
function reaches(a: Container, b: Container): boolean {
  for (let c: Container | undefined = b; c; c = c.parent) if (c === a) return true;
  return false;
}

function unlink(c: Container): void {
  const p = c.parent;
  if (!p) return;
  p.children.splice(p.children.indexOf(c), 1);
  c.parent = undefined;
}

function link(parent: Container, child: Container): void {
  unlink(child);
  child.parent = parent;
  parent.children.push(child);
}

/** The subject a root thread goes by (step 5 B): a dummy's is its first child's. */
function threadSubject(c: Container): SortMsg | undefined {
  return c.msg ?? c.children[0]?.msg;
}

/**
 * RFC 5256 4, REFERENCES, step by step (the numbers and letters are the
 * RFC's). Messages with no Message-ID, or one already taken, get a unique ID
 * of their own (step 1).
 */
export function threadReferences(msgs: SortMsg[]): ThreadNode[] {
  const table = new Map<string, Container>();
  const get = (id: string): Container => {
    let c = table.get(id);
    if (!c) table.set(id, (c = { id, children: [] }));
    return c;
  };
  let unique = 0;
  for (const m of [...msgs].sort((a, b) => a.seq - b.seq)) {
    // Step 1: the message's own container (a fresh ID when it has none, or a duplicate).
    let id = messageIds(m.messageId)[0];
    if (id === undefined || table.get(id)?.msg) id = `\0unique-${++unique}`;
    const self = get(id);
    self.msg = m;
    // 1 A: the References (else the first ID of In-Reply-To) linked in order, each the parent of the next,
    // unless one already has a parent or the link would make a loop.
    let refs = messageIds(m.references);
    if (refs.length === 0) refs = messageIds(m.inReplyTo).slice(0, 1);
    let prev: Container | undefined;
    for (const r of refs) {
      const c = get(r);
      if (prev && c !== prev && !c.parent && !reaches(c, prev) && !reaches(prev, c)) link(prev, c);
      prev = c;
    }
    // 1 B: the last reference is the message's parent, replacing any it had, unless that makes a loop.
    if (prev && prev !== self && !reaches(self, prev)) link(prev, self);
    else if (!prev) unlink(self);
  }
  // Step 2: the root set.
  let roots = [...table.values()].filter((c) => !c.parent);
  // Step 3: prune dummies, recursively.
  const prune = (list: Container[], root: boolean): Container[] => {
    const out: Container[] = [];
    for (const c of list) {
      c.children = prune(c.children, false);
      for (const k of c.children) k.parent = c;
      if (c.msg) out.push(c);
      else if (c.children.length === 0) continue; // 3 A: a dummy with no children goes
      // 3 B: a dummy's children take its place, unless that would put more than one at the root.
      else if (!root || c.children.length === 1) {
        for (const k of c.children) {
          k.parent = root ? undefined : c.parent;
          out.push(k);
        }
      } else out.push(c);
    }
    return out;
  };
  roots = prune(roots, true);
  for (const r of roots) r.parent = undefined;
  // Step 4: the root set by sent date, a dummy by its first child (its children sorted first).
  const rootDate = (c: Container): SortMsg => {
    if (c.msg) return c.msg;
    c.children.sort((a, b) => bySentDate(a.msg!, b.msg!));
    return c.children[0].msg!;
  };
  roots.sort((a, b) => bySentDate(rootDate(a), rootDate(b)));
  // Step 5: root threads with the same base subject gathered together.
  const subjects = new Map<string, Container>();
  const info = (c: Container) => {
    const m = threadSubject(c);
    const b = m ? baseSubject(m.subject) : { base: '', replyOrFwd: false };
    return { base: casemap(b.base), reply: b.replyOrFwd };
  };
  // 5 A-D: the subject table; a dummy wins over a message, and a message that is not a reply or forward over one that is.
  for (const c of roots) {
    const { base } = info(c);
    if (base === '') continue;
    const old = subjects.get(base);
    if (!old || (!c.msg && old.msg) || (old.msg && c.msg && info(old).reply && !info(c).reply)) subjects.set(base, c);
  }
  // 5 E: merge each root thread into the one the table names for its subject.
  const gone = new Set<Container>();
  const added: Container[] = []; // the dummies of 5 E iv, new roots
  for (const c of roots) {
    if (gone.has(c)) continue;
    const { base, reply } = info(c);
    if (base === '') continue;
    const t = subjects.get(base);
    if (!t || t === c) continue;
    if (!t.msg && !c.msg) {
      // E i: both dummies: this one's children go to the table's, and it goes.
      for (const k of [...c.children]) link(t, k);
      gone.add(c);
    } else if (!t.msg || !c.msg) {
      // E ii: one dummy: the message becomes a child of the dummy.
      const [dummy, message] = !t.msg ? [t, c] : [c, t];
      link(dummy, message);
      gone.add(message);
      if (message === t) subjects.set(base, dummy);
    } else if (!info(t).reply && reply) {
      // E iii: the table's is not a reply or forward and this one is: it becomes the table's child.
      link(t, c);
      gone.add(c);
    } else {
      // E iv: otherwise a new dummy holds both, and stands in the table for them.
      const d: Container = { id: '', children: [] };
      added.push(d);
      link(d, t);
      link(d, c);
      gone.add(t);
      gone.add(c);
      subjects.set(base, d);
    }
  }
  const rootsOut = [...roots.filter((c) => !gone.has(c)), ...added];
  // Step 6: every set of siblings under the root, the root set too, by sent date (a dummy by its first child).
  const sortKids = (c: Container) => {
    for (const k of c.children) sortKids(k);
    c.children.sort((a, b) => bySentDate(rootDate(a), rootDate(b)));
  };
  for (const r of rootsOut) sortKids(r);
  return rootsOut.sort((a, b) => bySentDate(rootDate(a), rootDate(b)));
}

/**
 * Step 7 (and the grammar of RFC 5256 5): a thread as "(1 2 (3)(4 5))": a
 * chain of single children in one list, siblings as nested lists; a dummy
 * contributes no number.
 */
export function formatThread(node: ThreadNode): string {
  const parts: string[] = [];
  let cur: ThreadNode = node;
  for (;;) {
    if (cur.msg) parts.push(String(cur.msg.n));
    if (cur.children.length === 1) {
      cur = cur.children[0];
      continue;
    }
    if (cur.children.length > 1) parts.push(cur.children.map(formatThread).join(''));
    break;
  }
  return `(${parts.join(' ')})`;
}
