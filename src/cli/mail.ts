// @entry
// mail (mailx): send mode when addresses are given, read mode otherwise.
// Parses the command line, loads the config (-C, MAILTK_CONFIG), picks the
// folder (the invoking user's spool mbox, -u user's, or -f [file], default
// ~/mbox) and runs -e, -H, a send or a session. -H and -e load only the scan
// and the summary; the session, MIME and composing code are loaded on demand.
// Every MailError ends as "mail: what went wrong" and its sysexits code.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, type Config } from '../config/index.ts';
import { invokingUser, type User } from '../config/users.ts';
import { mboxPath } from '../mailbox/index.ts';
import { EX, MailError } from '../message/status.ts';
import { isSendMode, parseMailArgs, USAGE, type MailArgs } from '../mail/args.ts';
import { openFolder } from '../mail/folder.ts';
import { headline } from '../mail/headline.ts';

function home(me: User): string {
  return process.env.HOME || me.home || os.homedir();
}

/** The folder to read and whether it is a system mailbox. */
function chooseFolder(config: Config, me: User, a: MailArgs): { file: string; system: boolean; owner: string } {
  if (a.folder) {
    const f = a.folder === true ? process.env.MBOX || path.join(home(me), 'mbox') : a.folder;
    return { file: f.startsWith('~/') ? path.join(home(me), f.slice(2)) : f, system: false, owner: me.name };
  }
  const owner = a.user ?? me.name;
  return { file: mboxPath(config, owner), system: true, owner };
}

/** mail -H: every summary line, then exit; 1 when there is no mail, as s-nail. */
async function printSummary(file: string): Promise<number> {
  const folder = await openFolder(file, { system: false, readOnly: true });
  if (folder.messages.length === 0) return 1;
  const width = Number(process.env.COLUMNS) || (process.stdout.isTTY ? process.stdout.columns : 0) || 80;
  const dotNum = (folder.messages.find((m) => m.isNew) ?? folder.messages.find((m) => !m.read) ?? folder.messages[0]).num;
  const lines: string[] = [];
  for (const m of folder.messages) lines.push(headline(m, m.num === dotNum, width));
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

/** strerror(3)'s words for what opening a folder runs into. */
const STRERROR: Record<string, string> = {
  ENOENT: 'No such file or directory', EACCES: 'Permission denied', EPERM: 'Operation not permitted',
  EISDIR: 'Is a directory', ENOTDIR: 'Not a directory', ELOOP: 'Too many levels of symbolic links',
};

/**
 * A folder named with -f that cannot be read is an error of mailx's kind
 * (exit 1, "mail: file: reason", as s-nail says it), not an empty folder
 * and not a temporary failure: the system mailbox alone may be missing.
 */
function folderError(file: string, e: unknown): MailError | undefined {
  const code = (e as NodeJS.ErrnoException)?.code;
  const reason = code && STRERROR[code];
  if (reason) return new MailError('no-input', reason, { file });
  if (e instanceof MailError && (e.failure === 'mailbox-io' || e.failure === 'mailbox-unsafe')) return new MailError('no-input', e.detail, { file });
  return undefined;
}

async function readMode(config: Config, me: User, a: MailArgs): Promise<number> {
  const { file, system, owner } = chooseFolder(config, me, a);
  let folder;
  try {
    if (!system && fs.statSync(file).isDirectory()) throw Object.assign(new Error('EISDIR'), { code: 'EISDIR' });
    if (a.headersOnly) return await printSummary(file);
    folder = await openFolder(file, { system, readOnly: a.readOnly || a.check });
  } catch (e) {
    const err = system ? undefined : folderError(file, e);
    if (!err) throw e;
    process.stderr.write(`mail: ${err.message}\n`);
    return 1;
  }
  if (a.check) return folder.messages.length > 0 ? 0 : 1;
  if (folder.messages.length === 0) {
    process.stderr.write(system ? `No mail for ${owner}\n` : `mail: ${file}: no messages\n`);
    return 1;
  }
  const { runSession } = await import('../mail/run.ts');
  return runSession(config, me, a, folder);
}

async function run(argv: string[]): Promise<number> {
  const a = parseMailArgs(argv);
  if (a.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (a.version) {
    const { VERSION } = await import('../mail/cmd-misc.ts');
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const config = loadConfig({ file: a.configFile, overrides: a.overrides });
  const me = invokingUser(config);
  if (isSendMode(a)) {
    const { runSend } = await import('../mail/run.ts');
    return runSend(config, me, a);
  }
  if (a.recipients.length === 0 && !a.folder && a.user === undefined && !a.check && !a.headersOnly && a.subject) {
    throw new MailError('usage', 'no recipients given');
  }
  return readMode(config, me, a);
}

function errorExit(err: unknown): number {
  if (err instanceof MailError) {
    process.stderr.write(`mail: ${err.message}\n`);
    if (err.failure === 'usage') process.stderr.write(`${USAGE}\n`);
    return err.exit;
  }
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT' || e?.code === 'EACCES' || e?.code === 'EPERM') {
    process.stderr.write(`mail: ${e.message}\n`);
    return e.code === 'ENOENT' ? EX.NOINPUT : EX.NOPERM;
  }
  process.stderr.write(`mail: internal error: ${e?.stack ?? String(err)}\n`);
  return EX.SOFTWARE;
}

export async function main(argv: string[]): Promise<void> {
  let code: number;
  try {
    code = await run(argv);
  } catch (err) {
    code = errorExit(err);
  }
  process.exitCode = code;
  process.exit(code);
}
