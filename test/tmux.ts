// Test fixture: a program at a real terminal (full-screen mutt, line-mode
// mail), driven as a person would through tmux on a private server socket: start a window, send
// keys or literal text, and wait for what the screen shows. kill() ends the
// tmux server and every window in it; call it in an after() hook.

import { spawnSync } from 'node:child_process';
import { waitFor } from './helpers.ts';

/** Why tests needing a terminal skip, or false when tmux is here. */
export const noTmux = spawnSync('sh', ['-c', 'command -v tmux']).status !== 0 && 'tmux is not installed';

/** A word for sh, single-quoted. */
export const shQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export interface TerminalOptions {
  /** Scrollback lines the screen includes too: a line-mode program (mail) scrolls what a test checks off the top. */
  history?: number;
  /** Keep trailing blanks, for a test that checks a prompt ends in one ("Subject: "). */
  keepBlanks?: boolean;
}

export class Terminal {
  private readonly socket = `mailtk-term-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;

  constructor(private readonly opts: TerminalOptions = {}) {}

  private tmux(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`tmux ${args[0]}: ${r.stderr}`);
    return r.stdout;
  }

  /**
   * Run argv in a new 150x50 window named `name` with exactly `env` (plus
   * TERM); "[exit N]" shows when it ends, and the window stays for a while so
   * that its last screen can be read.
   */
  start(name: string, argv: string[], env: Record<string, string>): void {
    const vars = Object.entries({ TERM: 'xterm', ...env }).map(([k, v]) => shQuote(`${k}=${v}`));
    const cmd = `env -i ${vars.join(' ')} ${argv.map(shQuote).join(' ')}; echo "[exit $?]"; sleep 60`;
    this.tmux('new-session', '-d', '-s', name, '-x', '150', '-y', '50', cmd);
  }

  /**
   * What the window shows (and its scrollback when asked), lines without
   * their trailing blanks unless asked (a highlighted row is padded to the
   * full width).
   */
  screen(name: string): string {
    const history = this.opts.history ? ['-S', String(-this.opts.history)] : [];
    const text = this.tmux('capture-pane', '-p', '-J', '-t', name, ...history);
    return this.opts.keepBlanks ? text : text.replace(/[ \t]+$/gm, '');
  }

  /** Literal text, then Enter when asked. */
  type(name: string, text: string, enter = false): void {
    if (text) this.tmux('send-keys', '-t', name, '-l', text);
    if (enter) this.tmux('send-keys', '-t', name, 'Enter');
  }

  /** Named keys as tmux spells them (Enter, C-u, ...). */
  keys(name: string, ...keys: string[]): void {
    this.tmux('send-keys', '-t', name, ...keys);
  }

  /** Wait until the screen matches; it, or the last screen in the error. */
  async see(name: string, re: RegExp, ms = 20_000): Promise<string> {
    let text = '';
    await waitFor(() => re.test((text = this.screen(name))), ms, `${re} on the screen`).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- screen ---\n${text}`);
    });
    return text;
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { stdio: 'ignore' });
  }
}
