// The session's own commands: quit and exit, folder/folders, set/unset,
// alias/unalias, ignore/retain (and un-), source, ! (shell), echo, version and
// help. Folder changes commit the old folder the way quit does.

import fs from 'node:fs';
import { mboxPath } from '../mailbox/index.ts';
import { openFolder } from './folder.ts';
import { commitFolder } from './quit.ts';
import type { Args, Session } from './session.ts';
import { runShell } from './term.ts';

export const VERSION = 'mailtk mail 0.1.0';

export async function quit(s: Session): Promise<void> {
  await commitFolder(s);
  s.done = 'quit';
}

export async function exit(s: Session): Promise<void> {
  s.done = 'exit';
}

export async function folder(s: Session, a: Args): Promise<void> {
  if (!a.words[0]) return s.out(s.folderLine());
  const target = s.expandName(a.words[0]);
  await commitFolder(s);
  const system = target === mboxPath(s.config, s.me.name);
  s.previousFolder = s.folder.path;
  s.folder = await openFolder(target, { system, readOnly: s.args.readOnly });
  s.dot = s.firstDot();
  s.out(s.folderLine());
  if (s.get('header') !== undefined && s.folder.messages.length) s.out(s.screenful(s.dot));
}

export async function folders(s: Session): Promise<void> {
  const dir = s.expandName('+');
  try {
    s.out(fs.readdirSync(dir).sort().join('\n') + '\n');
  } catch {
    s.out(`"${dir}": No folder directory\n`);
  }
}

/** set name, set name=value, set noname; alone, the list. */
export async function set(s: Session, a: Args): Promise<void> {
  if (!a.raw.trim()) {
    for (const [k, v] of [...s.vars].sort()) s.out(v === '' ? `${k}\n` : `${k}="${v}"\n`);
    return;
  }
  for (const m of a.raw.matchAll(/([^\s=]+)(?:=("[^"]*"|'[^']*'|\S*))?/g)) {
    const [, name, value] = m;
    if (value === undefined && name.startsWith('no') && name.length > 2) s.vars.delete(name.slice(2));
    else s.vars.set(name, (value ?? '').replace(/^(["'])(.*)\1$/, '$2'));
  }
}

export async function unset(s: Session, a: Args): Promise<void> {
  for (const w of a.words) s.vars.delete(w);
}

export async function alias(s: Session, a: Args): Promise<void> {
  const [name, ...members] = a.words;
  if (!name) {
    for (const [k, v] of s.aliases) s.out(`${k}\t${v.join(' ')}\n`);
    return;
  }
  if (members.length === 0) return s.out(s.aliases.has(name) ? `${name}\t${s.aliases.get(name)!.join(' ')}\n` : `"${name}": no such alias\n`);
  s.aliases.set(name, [...(s.aliases.get(name) ?? []), ...members.flatMap((m) => m.split(',')).filter(Boolean)]);
}

export async function unalias(s: Session, a: Args): Promise<void> {
  for (const w of a.words) s.aliases.delete(w);
}

export const headerList = (which: 'ignore' | 'retain') => async (s: Session, a: Args) => {
  const set = s.filter[which];
  if (a.words.length === 0) {
    s.out([...set].sort().join('\n') + (set.size ? '\n' : ''));
    return;
  }
  for (const w of a.words) set.add(w.toLowerCase());
};

export const unHeaderList = (which: 'ignore' | 'retain') => async (s: Session, a: Args) => {
  if (a.words.includes('*')) s.filter[which].clear();
  for (const w of a.words) s.filter[which].delete(w.toLowerCase());
};

export async function source(s: Session, a: Args): Promise<void> {
  if (!a.words[0]) return s.err('source: a file is needed\n');
  await s.source(s.expandName(a.words[0]), false);
}

export async function shell(s: Session, a: Args): Promise<void> {
  await runShell(a.raw || process.env.SHELL || '/bin/sh', s.input);
  if (s.input.tty) s.out('!\n');
}

export async function echo(s: Session, a: Args): Promise<void> {
  s.out(a.raw.replace(/^\s+/, '') + '\n');
}

export async function version(s: Session): Promise<void> {
  s.out(`${VERSION}\n`);
}

export async function help(s: Session, a: Args): Promise<void> {
  const want = a.words[0];
  const rows = s.commands.filter((c) => !want || c.name === want || s.lookup(want) === c);
  if (want && rows.length === 0) return s.err(`Unknown command: "${want}"\n`);
  const width = Math.max(...rows.map((c) => c.name.length + c.abbrev.length)) + 4;
  for (const c of rows) s.out(`${`${c.name} (${c.abbrev})`.padEnd(width)} ${c.help}\n`);
  if (!want) s.out('A message list: 1 2 4-6 . ^ $ * + - :n :u :o :r :d :f :a /subject sender\n');
}
