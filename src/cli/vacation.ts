// @entry
// vacation: the auto-responder of a ~/.forward such as
//   \bob, "|/usr/bin/vacation bob"
// Loads the config (-C, else MAILTK_CONFIG, which mailtk gives its programs),
// finds the login's home, and runs -i, -x, -l or one answer
// (src/vacation). Every MailError ends as "vacation: what went wrong" and its
// sysexits code: a program's failure bounces or defers what mailtk was
// delivering to it, so only real trouble exits non-zero.

import { loadConfig, localDomains, type Config } from '../config/index.ts';
import { invokingUser, lookupUser, type User } from '../config/users.ts';
import { formatMailbox } from '../message/display-name.ts';
import { EX, MailError } from '../message/status.ts';
import { addExclusions, initDb, listDb, ownAddresses, parseInterval, respond, sendReply, USAGE, vacationFiles, type VacationArgs } from '../vacation/index.ts';
import { getopt, optionSpec } from './sendmail-args.ts';
import { readStdin } from './submit.ts';

/** sendmail's vacation(1) option string. */
const VACATION_SPEC = optionSpec('a:C:df:Iijlm:R:r:s:t:Uxz');

const OPTIONS: Record<string, (a: VacationArgs, v: string) => void> = {
  a: (a, v) => a.aliases.push(v),
  C: (a, v) => (a.configFile = v),
  d: (a) => (a.debug = true),
  f: (a, v) => (a.dbFile = v),
  I: (a) => (a.init = true),
  i: (a) => (a.init = true),
  j: (a) => (a.skipAddressCheck = true),
  l: (a) => (a.list = true),
  m: (a, v) => (a.msgFile = v),
  R: (a, v) => (a.returnPath = v),
  r: (a, v) => (a.interval = parseInterval(v)),
  s: (a, v) => (a.replyTo = v),
  t: () => {},
  U: () => {},
  x: (a) => (a.exclude = true),
  z: (a) => (a.returnPath = '<>'),
};

export function parseVacationArgs(argv: string[]): VacationArgs {
  const a: VacationArgs = { aliases: [], debug: false, init: false, list: false, exclude: false, skipAddressCheck: false };
  for (const [c, v] of getopt(argv, VACATION_SPEC)) {
    if (c !== '--') {
      OPTIONS[c](a, v as string);
      continue;
    }
    const rest = v as string[];
    if (rest.length > 1) throw new MailError('usage', `one login only, not ${rest.join(' ')}`);
    a.login = rest[0];
  }
  if (!a.login && !a.init && !a.list && !a.exclude) throw new MailError('usage', 'no login given');
  return a;
}

/** The login's account; undefined for -i, -x and -l without one (then $HOME, else the caller's home, is used). */
function accountOf(config: Config, login: string | undefined): User | undefined {
  if (!login) return undefined;
  const user = lookupUser(config, login);
  if (!user) throw new MailError('user-unknown', `${login}: no such user`);
  return user;
}

async function run(a: VacationArgs): Promise<void> {
  const config = loadConfig({ file: a.configFile });
  const user = accountOf(config, a.login);
  const files = vacationFiles(user?.home ?? (process.env.HOME || invokingUser(config).home), a);
  if (a.init) await initDb(a, files);
  if (a.exclude) await addExclusions(files, readStdin().toString('utf8'));
  if (a.list) process.stdout.write(listDb(files));
  if (a.init || a.exclude || a.list || !user) return;
  const what = await respond(a, files, readStdin(), process.env, {
    from: formatMailbox(user.gecos.split(',')[0] || undefined, `${user.name}@${config.hostname}`),
    isMine: ownAddresses(user.name, a.aliases, localDomains(config)),
    send: (message, to) => sendReply(config, message, to, a.returnPath),
  });
  if (a.debug) process.stderr.write(`vacation: ${what}\n`);
}

export async function main(argv: string[]): Promise<void> {
  try {
    await run(parseVacationArgs(argv));
    process.exitCode = EX.OK;
  } catch (e) {
    if (!(e instanceof MailError)) throw e;
    process.stderr.write(`vacation: ${e.message}\n`);
    if (e.failure === 'usage') process.stderr.write(`${USAGE}\n`);
    process.exitCode = e.exit;
  }
}
