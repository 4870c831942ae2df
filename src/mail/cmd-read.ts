// Commands that show things: type/print (decoded), Type/Print (every header),
// top, next, previous, headers and z (a screenful of summary lines), from, size,
// = (the current number), pipe (a message to a shell command). Showing a
// message marks it read and makes it the current one.

import { messageData, type Message } from './folder.ts';
import { renderMessage } from './display.ts';
import { ListError, resolveList } from './msglist.ts';
import type { Args, Session } from './session.ts';
import { page, runShell } from './term.ts';

function markRead(s: Session, m: Message): void {
  m.read = true;
  m.isNew = false;
  m.touched = true;
  s.dot = m.num;
}

async function show(s: Session, msgs: Message[], all: boolean, top?: number): Promise<void> {
  let text = '';
  for (const m of msgs) {
    const data = await messageData(s.folder, m);
    text += (text ? '\n' : '') + (await renderMessage(m, data, { filter: all ? undefined : s.filter, paint: s.paint, top }));
    if (top === undefined) markRead(s, m);
    else s.dot = m.num;
  }
  await page(text, s.input);
}

export const typeMessages = (s: Session, a: Args) => show(s, a.msgs, false);
export const typeAll = (s: Session, a: Args) => show(s, a.msgs, true);
export const topMessages = (s: Session, a: Args) => show(s, a.msgs, false, Number(s.get('toplines')) || 5);

/** The next message: the current one if it has not been read yet, else the next undeleted one. */
export async function next(s: Session, a: Args): Promise<void> {
  if (a.raw.trim()) return show(s, resolveList(a.raw, s.folder, s.dot).slice(0, 1), false);
  const ms = s.messages();
  const cur = ms[s.dot - 1];
  const target = cur && !cur.deleted && !cur.touched ? cur : ms.find((m) => m.num > s.dot && !m.deleted);
  if (!target) return s.out('At EOF\n');
  await show(s, [target], false);
}

export async function previous(s: Session): Promise<void> {
  const target = [...s.messages()].reverse().find((m) => m.num < s.dot && !m.deleted);
  if (!target) return s.out('No previous message\n');
  await show(s, [target], false);
}

export async function headers(s: Session, a: Args): Promise<void> {
  if (!s.folder.messages.length) return s.out('No messages.\n');
  const around = a.words[0] ? Number(a.words[0]) || s.dot : s.dot;
  s.out(s.screenful(around));
}

/** z, z+ (next screenful), z- (previous). */
export async function scroll(s: Session, a: Args): Promise<void> {
  const size = Number(s.get('screen')) || 20;
  const visible = s.messages().filter((m) => !m.deleted);
  const at = Math.max(0, visible.findIndex((m) => m.num >= s.dot));
  const step = a.words[0] === '-' ? -size : size;
  const start = Math.max(0, Math.min(Math.floor(at / size) * size + step, Math.max(0, visible.length - 1)));
  if (start === Math.floor(at / size) * size && step > 0) return s.out('On last screenful of messages\n');
  if (visible[start]) s.dot = visible[start].num;
  s.out(s.headlines(visible.slice(start, start + size)));
}

export async function from(s: Session, a: Args): Promise<void> {
  s.out(s.headlines(a.msgs));
  s.dot = a.msgs[a.msgs.length - 1].num;
}

export async function size(s: Session, a: Args): Promise<void> {
  for (const m of a.msgs) s.out(`${m.num}: ${m.lines}/${m.size}\n`);
}

export async function dotNumber(s: Session): Promise<void> {
  s.out(`${s.dot}\n`);
}

/** pipe [msglist] command: each message's text (decoded, all headers) into the command's input. */
export async function pipe(s: Session, a: Args): Promise<void> {
  const m = /^\s*((?:(?:\d+(?:-\d+)?|[.$^*]|:\w+)\s+)*)(.+)$/.exec(a.raw);
  const cmd = m?.[2] ?? s.get('cmd');
  if (!cmd) throw new ListError('No command to pipe to');
  const msgs = resolveList(m?.[1] ?? '', s.folder, s.dot);
  let text = '';
  for (const msg of msgs) text += (await messageData(s.folder, msg)).toString('utf8');
  const status = await runShell(cmd, s.input, text);
  if (status !== 0) s.err(`"${cmd}" exited with status ${status}\n`);
  for (const msg of msgs) markRead(s, msg);
}
