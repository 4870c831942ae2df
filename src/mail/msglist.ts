// Message lists, as POSIX mailx and s-nail read them: numbers and ranges
// (1 2 4-6), . (current), ^ and $ (first, last), + and - (next, previous), *
// (all), :n :u :o :r :d :f :a (new, unread, old, read, deleted, flagged,
// answered), /text (subject contains), and any other word as a sender
// (address or name contains it). Deleted messages are left out unless the
// command works on them (undelete) or :d asks for them.

import type { Folder, Message } from './folder.ts';
import { realName, skinAddress, decodeHeader } from './headline.ts';

export class ListError extends Error {}

const STATES: Record<string, (m: Message) => boolean> = {
  n: (m) => m.isNew,
  u: (m) => !m.read,
  o: (m) => !m.isNew,
  r: (m) => m.read,
  d: (m) => m.deleted,
  f: (m) => m.flagged,
  a: (m) => m.answered,
};

function fieldOf(m: Message, name: 'from' | 'subject'): string {
  return decodeHeader(m.fields[name]);
}

function bySender(m: Message, word: string): boolean {
  const from = fieldOf(m, 'from');
  const w = word.toLowerCase();
  return skinAddress(from).toLowerCase().includes(w) || realName(from).toLowerCase().includes(w);
}

/** One token to message numbers (before deleted ones are dropped). */
function resolveToken(tok: string, f: Folder, dot: number): number[] {
  const all = f.messages;
  const n = all.length;
  const check = (k: number) => {
    if (!Number.isInteger(k) || k < 1 || k > n) throw new ListError(`${tok}: Invalid message number`);
    return k;
  };
  const range = /^(\d+)-(\d+)$/.exec(tok);
  if (range) {
    const [a, b] = [check(Number(range[1])), check(Number(range[2]))];
    return Array.from({ length: Math.abs(b - a) + 1 }, (_, i) => Math.min(a, b) + i);
  }
  if (/^\d+$/.test(tok)) return [check(Number(tok))];
  switch (tok) {
    case '.':
      return [check(dot)];
    case '^':
      return [check(all.find((m) => !m.deleted)?.num ?? 0)];
    case '$':
      return [check([...all].reverse().find((m) => !m.deleted)?.num ?? 0)];
    case '*':
      return all.map((m) => m.num);
    case '+':
      return [check(all.find((m) => m.num > dot && !m.deleted)?.num ?? 0)];
    case '-':
      return [check([...all].reverse().find((m) => m.num < dot && !m.deleted)?.num ?? 0)];
  }
  if (tok.startsWith(':')) {
    const tests = [...tok.slice(1)].map((c) => STATES[c.toLowerCase()]);
    if (tests.some((t) => !t)) throw new ListError(`${tok}: unknown message state`);
    return all.filter((m) => tests.some((t) => t(m))).map((m) => m.num);
  }
  if (tok.startsWith('/')) {
    const want = tok.slice(1).toLowerCase();
    return all.filter((m) => fieldOf(m, 'subject').toLowerCase().includes(want)).map((m) => m.num);
  }
  return all.filter((m) => bySender(m, tok)).map((m) => m.num);
}

/**
 * The messages a list names, in order, no repeats. An empty list means the
 * current message. `withDeleted` keeps deleted ones (undelete's list).
 */
export function resolveList(spec: string, f: Folder, dot: number, withDeleted = false): Message[] {
  const tokens = spec.trim().split(/\s+/).filter(Boolean);
  if (f.messages.length === 0) throw new ListError('No messages');
  if (tokens.length === 0) {
    const m = f.messages[dot - 1];
    if (!m || (m.deleted && !withDeleted)) throw new ListError('No applicable messages');
    return [m];
  }
  const nums = new Set<number>();
  for (const tok of tokens) for (const k of resolveToken(tok, f, dot)) nums.add(k);
  const explicitDeleted = tokens.some((t) => t.startsWith(':') && t.toLowerCase().includes('d'));
  const out = [...nums]
    .sort((a, b) => a - b)
    .map((k) => f.messages[k - 1])
    .filter((m) => withDeleted || explicitDeleted || !m.deleted);
  if (out.length === 0) throw new ListError('No applicable messages');
  return out;
}
