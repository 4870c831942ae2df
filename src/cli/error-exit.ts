// How a command that failed says so and exits: a MailError's message and its
// sysexits code; a permission error with what to do (77); anything else as
// an internal error with its stack (70). One for sendmail and mailtk; the
// caller adds its own hint to an error (sendmail's usage line, mailtk's
// pointer to --help).

import { EX, MailError } from '../message/status.ts';

export function errorExit(prog: string, err: unknown, hint?: (e: MailError) => string | undefined): number {
  if (err instanceof MailError) {
    process.stderr.write(`${prog}: ${err.message}\n`);
    const more = hint?.(err);
    if (more) process.stderr.write(`${more}\n`);
    return err.exit;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'EACCES' || e?.code === 'EPERM') {
    process.stderr.write(`${prog}: ${e.message} (this needs root, or a config whose paths you own: -C file)\n`);
    return EX.NOPERM;
  }
  process.stderr.write(`${prog}: internal error: ${e?.stack ?? String(err)}\n`);
  return EX.SOFTWARE;
}
