// Progress for people: an ora spinner on stderr, only at a terminal at least
// MIN_COLUMNS wide. A terminal that reports zero columns (script(1), some CI
// consoles) sends ora's line arithmetic into a loop of escape codes, and a
// narrow one wraps its line into residue; there a command prints no spinner.
// ora is imported only when a spinner is shown: start-up time matters more.

export const MIN_COLUMNS = 20;

export interface Spinner {
  /** Show `text`; draws a frame now (a synchronous loop gives the timer no chance). */
  say(text: string): void;
  /** Print a line above the spinner. */
  line(text: string): void;
  stop(): void;
}

export function spinnerAllowed(stream: NodeJS.WriteStream = process.stderr): boolean {
  return Boolean(stream.isTTY) && (stream.columns ?? 0) >= MIN_COLUMNS;
}

export async function openSpinner(text: string): Promise<Spinner | undefined> {
  if (!spinnerAllowed()) return undefined;
  const { default: ora } = await import('ora');
  const s = ora({ text, stream: process.stderr }).start();
  let stopped = false;
  return {
    say(t) {
      s.text = t;
      s.render();
    },
    line(t) {
      s.clear();
      process.stdout.write(t + '\n');
      s.render();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      s.stop(); // clears its line: nothing left beside what follows
    },
  };
}
