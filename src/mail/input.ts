// Where mail's lines come from: the terminal (readline, with a prompt, line
// editing and ^C reported as INTERRUPT) or a pipe (one line at a time, no
// prompt). Commands and composed text share one reader, so `m bob` followed by
// the text and "." works the same from a file as from a keyboard. suspend()
// hands the terminal to a pager or editor and takes it back afterwards.

import readline from 'node:readline';

export const INTERRUPT = Symbol('interrupt');
export type Line = string | null | typeof INTERRUPT;

export class LineInput {
  readonly tty: boolean;
  private rl: readline.Interface;
  private queue: Line[] = [];
  private waiting: ((l: Line) => void) | undefined;
  private closed = false;

  constructor(input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stdout) {
    this.tty = Boolean(input.isTTY && output.isTTY);
    this.rl = readline.createInterface({ input, output: this.tty ? output : undefined, terminal: this.tty, historySize: this.tty ? 100 : 0 });
    this.rl.on('line', (l) => this.push(l));
    this.rl.on('close', () => {
      this.closed = true;
      this.push(null);
    });
    if (this.tty) this.rl.on('SIGINT', () => this.push(INTERRUPT));
    if (!this.tty) this.rl.pause(); // read ahead only as far as asked: commands may run programs between lines
  }

  private push(l: Line): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w(l);
    } else this.queue.push(l);
    if (!this.tty && this.queue.length > 64) this.rl.pause();
  }

  /** The next line (without its newline), null at end of input, or INTERRUPT (terminal ^C). */
  read(prompt = '', preset = ''): Promise<Line> {
    if (this.queue.length) return Promise.resolve(this.queue.shift()!);
    if (this.closed) return Promise.resolve(null);
    if (this.tty) {
      this.rl.setPrompt(prompt);
      this.rl.prompt();
      if (preset) this.rl.write(preset);
    } else this.rl.resume();
    return new Promise((resolve) => (this.waiting = resolve));
  }

  /** Run `fn` with the terminal given back to the system (cooked mode, our reading paused). */
  async suspend<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.tty) return fn();
    this.rl.pause();
    const stdin = process.stdin;
    stdin.setRawMode?.(false);
    try {
      return await fn();
    } finally {
      stdin.setRawMode?.(true);
      this.rl.resume();
    }
  }

  close(): void {
    this.rl.close();
  }
}
