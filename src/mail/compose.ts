// Collecting a message's text, with mailx's tilde escapes: ~s ~t ~c ~b ~h
// change the headers, ~r ~e ~v ~m ~f ~a change the text or attachments, ~p
// shows the draft, ~! runs a command, ~w writes the text out, ~q and ~x
// give up (~q and a second ^C keep it in dead.letter), ~. ends, ~? lists them.
// The text ends at end of input, or at a lone "." where the caller says so.
// The escapes live in one table of letter, argument hint, action and help.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INTERRUPT, type LineInput } from './input.ts';
import type { Draft } from './mime-out.ts';
import { runShell } from './term.ts';

export interface ComposeContext {
  input: LineInput;
  /** Tilde escapes are honoured (a terminal, or commands read from stdin). */
  escapes: boolean;
  /** A line holding only "." ends the text. */
  dotEnds: boolean;
  out: (s: string) => void;
  /** The text of messages for ~m (indented) and ~f, or an error to show. */
  quote?: (spec: string, indent: boolean) => Promise<string>;
  /** Keep the draft in dead.letter; returns a note for the person. */
  saveDead: (d: Draft) => Promise<string>;
  askcc?: boolean;
}

export type ComposeEnd = 'send' | 'abort';

type Escape = {
  key: string;
  arg: string;
  help: string;
  run: (d: Draft, arg: string, c: ComposeContext) => Promise<ComposeEnd | void>;
};

/** "a, b" or "a b"; names with <addresses> only split at commas. */
export const splitAddrs = (s: string) =>
  s.split(/[,<"]/.test(s) ? ',' : /\s+/).map((a) => a.trim()).filter(Boolean);

/** Read a file into the text, as mailx's ~r does ("file" lines/bytes). */
async function readInto(d: Draft, file: string, c: ComposeContext): Promise<void> {
  const name = expandHome(file);
  try {
    const text = fs.readFileSync(name, 'utf8');
    d.body += text.endsWith('\n') || text === '' ? text : text + '\n';
    c.out(`"${file}" ${text.split('\n').length - (text.endsWith('\n') ? 1 : 0)}/${Buffer.byteLength(text)}\n`);
  } catch (e) {
    c.out(`${file}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'No such file or directory' : (e as Error).message}\n`);
  }
}

export function expandHome(file: string): string {
  return file.startsWith('~/') ? path.join(process.env.HOME || os.homedir(), file.slice(2)) : file;
}

/** Edit the text with $EDITOR or $VISUAL in a private temporary file. */
async function editBody(d: Draft, variable: 'EDITOR' | 'VISUAL', c: ComposeContext): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mail-'));
  const file = path.join(dir, 'draft');
  try {
    fs.writeFileSync(file, d.body, { mode: 0o600 });
    const editor = process.env[variable] || process.env.EDITOR || 'vi';
    await runShell(`${editor} '${file}'`, c.input);
    d.body = fs.readFileSync(file, 'utf8');
    c.out('(continue)\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function showDraft(d: Draft, c: ComposeContext): void {
  const h = [`To: ${d.to.join(', ')}`, `Subject: ${d.subject}`];
  if (d.cc.length) h.push(`Cc: ${d.cc.join(', ')}`);
  if (d.bcc.length) h.push(`Bcc: ${d.bcc.join(', ')}`);
  for (const a of d.attach) h.push(`Attachment: ${a}`);
  c.out(`-------\nMessage contains:\n${h.join('\n')}\n\n${d.body}(continue)\n`);
}

/** ~h: ask for each header again, the current value ready to edit. */
async function askHeaders(d: Draft, c: ComposeContext): Promise<void> {
  const ask = async (label: string, now: string) => {
    const l = await c.input.read(`${label}: `, now);
    return typeof l === 'string' ? l : now;
  };
  d.to = splitAddrs(await ask('To', d.to.join(', ')));
  d.subject = await ask('Subject', d.subject);
  d.cc = splitAddrs(await ask('Cc', d.cc.join(', ')));
  d.bcc = splitAddrs(await ask('Bcc', d.bcc.join(', ')));
}

export const ESCAPES: Escape[] = [
  { key: '.', arg: '', help: 'end the message and send it', run: async () => 'send' },
  { key: 's', arg: 'subject', help: 'set the subject', run: async (d, a) => void (d.subject = a) },
  { key: 't', arg: 'addresses', help: 'add To: recipients', run: async (d, a) => void d.to.push(...splitAddrs(a)) },
  { key: 'c', arg: 'addresses', help: 'add Cc: recipients', run: async (d, a) => void d.cc.push(...splitAddrs(a)) },
  { key: 'b', arg: 'addresses', help: 'add Bcc: recipients', run: async (d, a) => void d.bcc.push(...splitAddrs(a)) },
  { key: 'h', arg: '', help: 'edit To:, Subject:, Cc: and Bcc:', run: async (d, _a, c) => askHeaders(d, c) },
  { key: 'r', arg: 'file', help: 'read a file into the text', run: async (d, a, c) => readInto(d, a, c) },
  { key: '<', arg: 'file', help: 'the same as ~r', run: async (d, a, c) => readInto(d, a, c) },
  { key: 'a', arg: 'file', help: 'attach a file', run: async (d, a) => void d.attach.push(expandHome(a)) },
  { key: '@', arg: 'file', help: 'the same as ~a', run: async (d, a) => void d.attach.push(expandHome(a)) },
  { key: 'e', arg: '', help: 'edit the text with $EDITOR', run: async (d, _a, c) => editBody(d, 'EDITOR', c) },
  { key: 'v', arg: '', help: 'edit the text with $VISUAL', run: async (d, _a, c) => editBody(d, 'VISUAL', c) },
  { key: 'p', arg: '', help: 'print the message so far', run: async (d, _a, c) => showDraft(d, c) },
  { key: 'm', arg: 'messages', help: 'insert messages, indented', run: async (d, a, c) => insertMessages(d, a, true, c) },
  { key: 'f', arg: 'messages', help: 'insert messages as they are', run: async (d, a, c) => insertMessages(d, a, false, c) },
  { key: 'w', arg: 'file', help: 'write the text to a file', run: async (d, a, c) => writeOut(d, a, c) },
  { key: '!', arg: 'command', help: 'run a shell command', run: async (_d, a, c) => void (await runShell(a, c.input)) },
  { key: 'q', arg: '', help: 'give up, keeping the text in dead.letter', run: async (d, _a, c) => (c.out(await c.saveDead(d)), 'abort') },
  { key: 'x', arg: '', help: 'give up without keeping anything', run: async () => 'abort' },
  { key: '?', arg: '', help: 'this list', run: async (_d, _a, c) => c.out(escapeHelp()) },
];

export function escapeHelp(): string {
  const rows = ESCAPES.map((e) => `~${e.key} ${e.arg}`.padEnd(16) + e.help);
  rows.push('~~text'.padEnd(16) + 'a line that starts with ~text');
  return `-------------------- ~ ESCAPES --------------------\n${rows.join('\n')}\n`;
}

async function insertMessages(d: Draft, spec: string, indent: boolean, c: ComposeContext): Promise<void> {
  if (!c.quote) return c.out('No messages to insert from (not reading mail)\n');
  d.body += await c.quote(spec, indent);
  c.out('(continue)\n');
}

async function writeOut(d: Draft, file: string, c: ComposeContext): Promise<void> {
  try {
    fs.writeFileSync(expandHome(file), d.body, { mode: 0o600 });
    c.out(`"${file}" ${d.body.split('\n').length - 1}/${Buffer.byteLength(d.body)}\n`);
  } catch (e) {
    c.out(`${file}: ${(e as Error).message}\n`);
  }
}

/** Run one tilde escape line ("~s Hello"). */
async function escape(d: Draft, line: string, c: ComposeContext): Promise<ComposeEnd | void> {
  const key = line[1] ?? '';
  const e = ESCAPES.find((x) => x.key === key);
  if (!e) return c.out('Unknown tilde escape.\n');
  return e.run(d, line.slice(2).trim(), c);
}

/** Read the text into d.body until the end; 'abort' when the person gave up. */
export async function collect(d: Draft, c: ComposeContext): Promise<ComposeEnd> {
  let interrupts = 0;
  for (;;) {
    const line = await c.input.read('');
    if (line === INTERRUPT) {
      if (++interrupts >= 2) {
        c.out(await c.saveDead(d));
        return 'abort';
      }
      c.out('\n(Interrupt -- one more to kill letter)\n');
      continue;
    }
    interrupts = 0;
    if (line === null) {
      if (c.input.tty) c.out('EOT\n');
      break;
    }
    if (c.dotEnds && line === '.') break;
    if (c.escapes && line.startsWith('~') && !line.startsWith('~~')) {
      const end = await escape(d, line, c);
      if (end === 'abort') return end;
      if (end === 'send') break;
      continue;
    }
    d.body += (c.escapes && line.startsWith('~~') ? line.slice(1) : line) + '\n';
  }
  if (c.askcc && c.input.tty) {
    const cc = await c.input.read('Cc: ');
    if (typeof cc === 'string') d.cc.push(...splitAddrs(cc));
  }
  return 'send';
}
