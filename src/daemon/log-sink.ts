// The log as a root master's children see it: each child writes its lines to
// a pipe (its fd 4), and the master appends them to log_file, a whole line
// at a time, through the descriptor it opened. Children never hold the file
// itself, so that SIGHUP (logrotate's postrotate) can reopen it: the master
// reopens, and every child's next line goes to the new file (Postfix's
// postlogd plays the same part). One pipe a child: lines of two children
// cannot interleave, and the master never writes half a line.

import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Config } from '../config/index.ts';
import { log, reopenLog } from '../log/index.ts';

/** Past this, a partial line is written as it is (a child that never ends a line must not grow the master). */
const MAX_LINE = 64 << 10;

export class LogSink {
  private fd: number;

  constructor(config: Config) {
    this.fd = open(config);
  }

  /** The stdio entry that gives a child its log pipe as fd 4. */
  readonly stdio = 'pipe' as const;

  /** Relay a child's fd 4 into the log. */
  attach(child: ChildProcess): void {
    // A child that could not be started has no stdio at all (child-start.ts).
    const pipe = child.stdio?.[4] as Readable | null | undefined;
    if (!pipe) return;
    let partial = '';
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      const text = partial + chunk;
      const end = text.lastIndexOf('\n') + 1;
      partial = text.slice(end);
      if (partial.length > MAX_LINE) {
        this.write(partial + '\n');
        partial = '';
      }
      if (end > 0) this.write(text.slice(0, end));
    });
    pipe.on('end', () => {
      if (partial) this.write(partial + '\n');
      partial = '';
    });
    pipe.on('error', () => {
      // The child is gone; its exit is reported elsewhere.
    });
  }

  private write(text: string): void {
    try {
      fs.writeSync(this.fd, text);
    } catch {
      // A log that cannot be written must never stop mail; the master's own log() says so once.
    }
  }

  /** SIGHUP: the file by its name again (moved away by logrotate, or log_file changed). */
  reopen(config: Config): void {
    let fd: number;
    try {
      fd = open(config);
    } catch (e) {
      // Out of descriptors, say: lines go on to the old file rather than nowhere.
      log(config, '', `SYSERR: cannot reopen ${config.logFile}: ${(e as Error).message}; the daemon's children go on writing to the file open before`);
      return;
    }
    fs.closeSync(this.fd);
    this.fd = fd;
    reopenLog();
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function open(config: Config): number {
  fs.mkdirSync(path.dirname(config.logFile), { recursive: true });
  return fs.openSync(config.logFile, fs.constants.O_WRONLY | fs.constants.O_APPEND | fs.constants.O_CREAT | fs.constants.O_NOFOLLOW, 0o640);
}
