// Output for people: the terminal's width and height, colour through chalk
// only when stdout is a terminal and NO_COLOR is unset (loaded on demand, so
// pipes never pay for it), and long text through $PAGER (default `more`) at a
// terminal when it has more lines than the screen, as mailx's `crt` does.

import { spawn } from 'node:child_process';
import type { LineInput } from './input.ts';

export function screenWidth(): number {
  const env = Number(process.env.COLUMNS);
  if (env > 0) return env;
  return process.stdout.isTTY ? process.stdout.columns || 80 : 80;
}

export function screenHeight(): number {
  const env = Number(process.env.LINES);
  if (env > 0) return env;
  return process.stdout.isTTY ? process.stdout.rows || 24 : 24;
}

export function colourWanted(): boolean {
  return Boolean(process.stdout.isTTY) && !('NO_COLOR' in process.env && process.env.NO_COLOR !== '');
}

export interface Paint {
  header(name: string): string;
  dot(line: string): string;
  fresh(line: string): string;
  note(text: string): string;
}

const PLAIN: Paint = { header: (s) => s, dot: (s) => s, fresh: (s) => s, note: (s) => s };

/** Colours for a terminal, or identity functions. */
export async function paintFor(wanted: boolean): Promise<Paint> {
  if (!wanted) return PLAIN;
  const { default: chalk } = await import('chalk');
  return { header: (s) => chalk.bold(s), dot: (s) => chalk.inverse(s), fresh: (s) => chalk.green(s), note: (s) => chalk.dim(s) };
}

/** Write text, through the pager when it is long and we are at a terminal. */
export async function page(text: string, input: LineInput): Promise<void> {
  const lines = text.split('\n').length;
  if (!input.tty || lines < screenHeight() - 1) {
    process.stdout.write(text);
    return;
  }
  const pager = process.env.PAGER || 'more';
  await input.suspend(
    () =>
      new Promise<void>((resolve) => {
        const child = spawn('/bin/sh', ['-c', pager], { stdio: ['pipe', 'inherit', 'inherit'] });
        child.on('error', () => {
          process.stdout.write(text);
          resolve();
        });
        child.stdin.on('error', () => {}); // the reader quit early (q in more): fine
        child.on('close', () => resolve());
        child.stdin.end(text);
      }),
  );
}

/** Run a shell command at the terminal (~!, !, editors), waiting for it. */
export function runShell(cmd: string, input: LineInput, stdinText?: string): Promise<number> {
  return input.suspend(
    () =>
      new Promise<number>((resolve) => {
        // From a pipe, our stdin is the command stream: the program must not eat it.
        const stdin = stdinText !== undefined ? 'pipe' : input.tty ? 'inherit' : 'ignore';
        const child = spawn('/bin/sh', ['-c', cmd], { stdio: [stdin, 'inherit', 'inherit'] });
        child.on('error', () => resolve(127));
        child.on('close', (code) => resolve(code ?? 1));
        if (stdinText !== undefined) {
          child.stdin!.on('error', () => {});
          child.stdin!.end(stdinText);
        }
      }),
  );
}
