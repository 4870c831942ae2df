// The header summary line, as BSD mailx lays it out:
//   >N  1 user@host          Tue Nov 14 22:13   59/3077  Subject text
// dot mark, state letter (s-nail's attrlist: N new, U unread old, R read this
// session, O read, S saved, P preserved, M mboxed, F flagged, A answered),
// number, sender address, the From_ line's date, lines/bytes, subject (RFC 2047
// decoded, any charset), cut to the terminal's width counting wide characters
// as two columns. Header fields are picked from the raw block in one pass,
// by src/message's header tokenizer.

import { xtextDecode } from '../mailbox/index.ts';
import { HeaderTokens } from '../message/index.ts';
import type { Message } from './folder.ts';

/** Call `take` on the header fields whose name starts with one of `firsts` (lower-case char codes), until it returns true. */
function eachField(block: Buffer, firsts: Set<number>, take: (t: HeaderTokens) => boolean): void {
  const t = new HeaderTokens(block);
  while (t.next()) if (firsts.has(t.firstLower()) && take(t)) return;
}

/** The first value of each wanted field (lower-case names), unfolded, as UTF-8 text. */
export function pickFields(block: Buffer, wanted: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  eachField(block, new Set(wanted.map((w) => w.charCodeAt(0))), (t) => {
    const name = wanted.find((w) => t.nameIs(w));
    if (name !== undefined && !out.has(name)) out.set(name, t.displayValue());
    return out.size === wanted.length;
  });
  return out;
}

/** What the summary and message lists look at, picked once per message. */
export interface SummaryFields {
  from: string;
  subject: string;
  date: string | undefined;
}

const [F, S, D, X] = ['f', 's', 'd', 'x'].map((c) => c.charCodeAt(0));
const SUMMARY_FIRSTS = new Set([F, S, D, X]);

/** The bit summaryOf keeps for a field it reads (from 1, subject 2, date 4, status 8, x-status 16), else 0. */
function summaryBit(t: HeaderTokens): number {
  switch (t.firstLower()) {
    case F: return t.nameIs('from') ? 1 : 0;
    case S: return t.nameIs('subject') ? 2 : t.nameIs('status') ? 8 : 0;
    case D: return t.nameIs('date') ? 4 : 0;
    default: return t.nameIs('x-status') ? 16 : 0;
  }
}

/** The summary fields and the raw Status:/X-Status: values, in one pass over the header bytes. */
export function summaryOf(block: Buffer): { fields: SummaryFields; status: string; xstatus: string } {
  const r = { fields: { from: '', subject: '', date: undefined as string | undefined }, status: '', xstatus: '' };
  let seen = 0;
  eachField(block, SUMMARY_FIRSTS, (t) => {
    const bit = summaryBit(t);
    if (bit === 0 || seen & bit) return false;
    seen |= bit;
    if (bit === 1) r.fields.from = t.displayValue();
    else if (bit === 2) r.fields.subject = t.displayValue();
    else if (bit === 4) r.fields.date = t.displayValue();
    else if (bit === 8) r.status = t.rawValue();
    else r.xstatus = t.rawValue();
    return seen === 31;
  });
  return r;
}

let decodeWords: ((s: string) => string) | undefined;

/**
 * Load postal-mime's RFC 2047 decoder. It costs some 40 ms to load, which
 * `mail -H` pays only when a header holds an encoded-word; openFolder and the
 * session call this before decodeHeader is used.
 */
export async function loadWordDecoder(): Promise<void> {
  decodeWords ??= (await import('postal-mime')).decodeWords;
}

/** RFC 2047 encoded-words to text; control characters become spaces. */
export function decodeHeader(v: string): string {
  if (v.includes('=?') && !decodeWords) throw new Error('decodeHeader before loadWordDecoder');
  const s = v.includes('=?') ? decodeWords!(v) : v;
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, ' ');
}

/** The bare address of the first mailbox in an address header (mailx's skin()). */
export function skinAddress(v: string): string {
  const angle = /<([^<>]*)>/.exec(v);
  if (angle) return angle[1].trim();
  return v.replace(/\([^()]*\)/g, '').replace(/,.*$/, '').trim();
}

/** The display name of the first mailbox, or its address. */
export function realName(v: string): string {
  const m = /^\s*"?([^"<]*?)"?\s*<[^>]*>/.exec(v);
  const name = m?.[1].trim();
  return name ? decodeHeader(name) : skinAddress(v);
}

const ASCTIME = /^(?:Sun|Mon|Tue|Wed|Thu|Fri|Sat) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d/;
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** "Tue Nov 14 22:13": the From_ line's date, else the Date: field's in local time. */
export function shortDate(fromLine: string, dateField: string | undefined): string {
  const rest = fromLine.slice(5).replace(/^\S+\s+/, '');
  if (ASCTIME.test(rest)) return rest.slice(0, 16);
  const t = dateField ? Date.parse(dateField.replace(/\s*\([^)]*\)\s*$/, '')) : NaN;
  if (Number.isNaN(t)) return '';
  const d = new Date(t);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2)} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/**
 * The envelope sender from a From_ line: "From user@host  Tue ..." ->
 * "user@host", xtext decoded (mailtk writes it so; see fromLine), control
 * characters shown as '?'.
 */
export function envelopeSender(fromLine: string): string {
  const word = /^From (\S+)/.exec(fromLine)?.[1] ?? '';
  return xtextDecode(word).replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

/** The state letter shown before the number. */
export function stateLetter(m: Message): string {
  if (m.deleted) return 'D';
  if (m.mboxed) return 'M';
  if (m.preserved) return 'P';
  if (m.saved) return 'S';
  if (m.flagged) return 'F';
  if (m.answered) return 'A';
  if (m.isNew) return 'N';
  if (!m.read) return 'U';
  return m.stored.read ? 'O' : 'R';
}

/** Columns a character takes: two for East Asian wide and full-width forms. */
function columns(cp: number): number {
  if (cp < 0x1100) return 1;
  const wide =
    cp <= 0x115f || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) || (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
    (cp >= 0x20000 && cp <= 0x3fffd);
  return wide ? 2 : 1;
}

/** Cut text to `width` terminal columns. */
export function fitWidth(text: string, width: number): string {
  if (!/[^\x00-\u10ff]/.test(text)) return text.slice(0, width);
  let used = 0;
  let out = '';
  for (const ch of text) {
    const w = columns(ch.codePointAt(0)!);
    if (used + w > width) break;
    used += w;
    out += ch;
  }
  return out;
}

/** Pad or cut to exactly `width` columns. */
export function padColumns(text: string, width: number): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text.length >= width ? text.slice(0, width) : text.padEnd(width);
  const cut = fitWidth(text, width);
  let used = 0;
  for (const ch of cut) used += columns(ch.codePointAt(0)!);
  return cut + ' '.repeat(width - used);
}

/** One summary line for message m; `dot` marks the current message. */
export function headline(m: Message, dot: boolean, width: number): string {
  const f = m.fields;
  const sender = f.from ? skinAddress(f.from) : envelopeSender(m.entry.fromLine);
  const date = shortDate(m.entry.fromLine, f.date);
  const subject = decodeHeader(f.subject);
  const head = `${dot ? '>' : ' '}${stateLetter(m)}${String(m.num).padStart(3)} ${padColumns(sender, 18)} ${date.padEnd(16)} ${String(m.lines).padStart(4)}/${String(m.size).padEnd(5)} `;
  return fitWidth(head + subject, width - 1).trimEnd();
}
