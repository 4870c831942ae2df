// One reading session: the open folder, the current message ("dot"), the
// variables, aliases and header filters that set/alias/ignore/retain change,
// and the command loop. A line is looked up in the command table (commands.ts)
// by name or abbreviation, its argument parsed by the table's kind (message
// list, list plus file, words, raw text), then handed to the handler. Command
// errors are reported and the loop goes on, as in mailx; only quit and exit
// (or end of input, which quits) leave it.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import { MailError } from '../message/status.ts';
import type { MailArgs } from './args.ts';
import { DEFAULT_IGNORE, type HeaderFilter } from './display.ts';
import { hasNewMail, type Folder, type Message } from './folder.ts';
import { headline } from './headline.ts';
import { INTERRUPT, type LineInput } from './input.ts';
import { ListError, resolveList } from './msglist.ts';
import { screenHeight, screenWidth, type Paint } from './term.ts';

export type ArgKind = 'msglist' | 'ndmsglist' | 'msglist-file' | 'words' | 'raw' | 'none';

export interface Command {
  name: string;
  /** The shortest prefix that selects it (s-nail's table order breaks ties the same way). */
  abbrev: string;
  arg: ArgKind;
  run: (s: Session, a: Args) => Promise<void>;
  help: string;
}

export interface Args {
  raw: string;
  words: string[];
  msgs: Message[];
  file?: string;
}

export class Session {
  folder!: Folder;
  dot = 0;
  readonly vars = new Map<string, string>();
  readonly aliases = new Map<string, string[]>();
  readonly filter: HeaderFilter = { ignore: new Set(DEFAULT_IGNORE), retain: new Set() };
  done: 'quit' | 'exit' | undefined;
  exitCode = 0;
  previousFolder: string | undefined;
  private newMailTold = false;

  constructor(
    readonly config: Config,
    readonly me: User,
    readonly args: MailArgs,
    readonly input: LineInput,
    readonly paint: Paint,
    readonly commands: Command[],
  ) {}

  out(s: string): void {
    process.stdout.write(s);
  }

  err(s: string): void {
    process.stderr.write(s);
  }

  get home(): string {
    return process.env.HOME || this.me.home || os.homedir();
  }

  /** A variable's value; '' for a set boolean, undefined when unset. */
  get(name: string): string | undefined {
    return this.vars.get(name);
  }

  mboxFile(): string {
    return this.expandName(this.get('MBOX') ?? process.env.MBOX ?? '~/mbox');
  }

  deadFile(): string {
    return this.expandName(this.get('DEAD') ?? process.env.DEAD ?? '~/dead.letter');
  }

  /** mailx's file names: ~/x (home), +x (the folder directory), % (my mailbox), %user, # (previous), & (mbox). */
  expandName(name: string): string {
    if (name === '&') return this.mboxFile();
    if (name === '#' && this.previousFolder) return this.previousFolder;
    if (name.startsWith('%')) return path.join(this.config.mailSpoolDir, name.slice(1) || this.me.name);
    if (name === '~' || name.startsWith('~/')) return path.join(this.home, name.slice(1));
    if (name.startsWith('+')) {
      const dir = this.get('folder') ?? 'Mail';
      return path.join(path.isAbsolute(dir) ? dir : path.join(this.home, dir), name.slice(1));
    }
    return name;
  }

  /** Expand aliases in a recipient list, one level deep per pass, as mailx does. */
  expandAliases(addrs: string[], depth = 0): string[] {
    if (depth > 10) return addrs;
    return addrs.flatMap((a) => (this.aliases.has(a) ? this.expandAliases(this.aliases.get(a)!, depth + 1) : [a]));
  }

  messages(): Message[] {
    return this.folder.messages;
  }

  /** The first message worth starting at: the first new one, else the first unread, else the first. */
  firstDot(): number {
    const ms = this.messages().filter((m) => !m.deleted);
    return (ms.find((m) => m.isNew) ?? ms.find((m) => !m.read) ?? ms[0])?.num ?? 0;
  }

  /** The folder's one-line description: "path": 3 messages 1 new 1 unread. */
  folderLine(): string {
    const ms = this.messages().filter((m) => !m.deleted);
    const fresh = ms.filter((m) => m.isNew).length;
    const unread = ms.filter((m) => !m.read && !m.isNew).length;
    const del = this.messages().length - ms.length;
    let line = `"${this.folder.path}": ${ms.length} message${ms.length === 1 ? '' : 's'}`;
    if (fresh) line += ` ${fresh} new`;
    if (unread) line += ` ${unread} unread`;
    if (del) line += ` ${del} deleted`;
    return line + (this.folder.readOnly ? ' [Read only]' : '') + '\n';
  }

  /** The header lines of one screenful, the one holding message `around`. */
  screenful(around: number): string {
    const size = Number(this.get('screen')) || Math.max(5, screenHeight() - 4);
    const visible = this.messages().filter((m) => !m.deleted);
    const at = Math.max(0, visible.findIndex((m) => m.num >= around));
    const start = Math.floor(at / size) * size;
    return this.headlines(visible.slice(start, start + size));
  }

  headlines(ms: Message[]): string {
    const width = screenWidth();
    return ms
      .map((m) => {
        const line = headline(m, m.num === this.dot, width);
        return (m.num === this.dot ? this.paint.dot(line) : m.isNew ? this.paint.fresh(line) : line) + '\n';
      })
      .join('');
  }

  /** Find a command by exact name, else by abbreviation in table order. */
  lookup(word: string): Command | undefined {
    return (
      this.commands.find((c) => c.name === word) ??
      this.commands.find((c) => c.name.startsWith(word) && word.length >= c.abbrev.length)
    );
  }

  /** Run one command line. */
  async execute(line: string): Promise<void> {
    const text = line.trim();
    if (text.startsWith('#')) return;
    const m = /^([!|=?+-]|[A-Za-z]+)?\s*([\s\S]*)$/.exec(text)!;
    let [, word, rest] = m;
    if (!word) {
      // A bare message list ("3", "$") prints it; an empty line goes to the next message.
      word = text === '' ? 'next' : 'type';
    }
    const cmd = this.lookup(word);
    if (!cmd) return this.err(`Unknown command: "${word}"\n`);
    try {
      await cmd.run(this, this.parseArgs(cmd, rest));
    } catch (e) {
      if (e instanceof ListError) return this.err(`${e.message}\n`);
      if (e instanceof MailError) {
        this.exitCode = e.exit;
        return this.err(`mail: ${e.message}\n`);
      }
      throw e;
    }
  }

  private parseArgs(cmd: Command, rest: string): Args {
    const words = rest.split(/\s+/).filter(Boolean);
    const a: Args = { raw: rest, words, msgs: [] };
    if (cmd.arg === 'msglist' || cmd.arg === 'ndmsglist') {
      if (!this.folder || this.folder.messages.length === 0) throw new ListError('No messages');
      a.msgs = resolveList(rest, this.folder, this.dot, cmd.arg === 'ndmsglist');
    } else if (cmd.arg === 'msglist-file') {
      // POSIX: the last word is the file unless it is a message number.
      const last = words[words.length - 1];
      const isList = last === undefined || /^(\d+(-\d+)?|[.$^*]|:\w+)$/.test(last);
      a.file = isList ? undefined : last;
      a.msgs = resolveList(isList ? rest : words.slice(0, -1).join(' '), this.folder, this.dot);
    }
    return a;
  }

  /** Read and run commands until quit, exit or the end of input. */
  async loop(): Promise<void> {
    const prompt = this.input.tty ? (this.get('prompt') ?? '? ') : '';
    while (!this.done) {
      this.tellNewMail();
      const line = await this.input.read(prompt);
      if (line === INTERRUPT) {
        this.out('\n');
        continue;
      }
      if (line === null) {
        await this.execute('quit');
        break;
      }
      await this.execute(line);
    }
  }

  private tellNewMail(): void {
    if (this.newMailTold || !this.folder || !hasNewMail(this.folder)) return;
    this.newMailTold = true;
    this.out('New mail has arrived.\n');
  }

  /** Run a file of commands (~/.mailrc, `source`); a missing file is no error for the rc. */
  async source(file: string, quietIfMissing: boolean): Promise<void> {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if (!quietIfMissing) this.err(`${file}: ${(e as Error).message}\n`);
      return;
    }
    for (const line of text.replace(/\\\n/g, ' ').split('\n')) {
      if (line.trim()) await this.execute(line);
      if (this.done) break;
    }
  }
}
