// @entry
// mailpasswd [-C config] [-O key=value] user: sets a user's SMTP AUTH
// password in passwd_file (scrypt, written atomically, mode 0600). The
// password is read from standard input when it is not a terminal (its first
// line), else asked for twice without echo. The listeners notice the changed
// file at the next AUTH; no restart is needed.

import { loadConfig } from '../config/index.ts';
import { setPassword } from '../server/index.ts';
import { EX, MailError } from '../message/status.ts';

const USAGE = 'usage: mailpasswd [-C config] [-O key=value] user';

interface Args {
  configFile?: string;
  overrides: Record<string, string>;
  user: string;
}

function parseArgs(argv: string[]): Args {
  const overrides: Record<string, string> = {};
  let configFile: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      rest.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('-C') || a.startsWith('-O')) {
      const value = a.length > 2 ? a.slice(2) : argv[++i];
      if (value === undefined) throw new MailError('usage', `${a} needs a value`);
      if (a.startsWith('-C')) configFile = value;
      else overrides[value.split('=')[0]] = value.slice(value.indexOf('=') + 1);
    } else if (a.startsWith('-')) throw new MailError('usage', `unknown option ${a}`);
    else rest.push(a);
  }
  if (rest.length !== 1) throw new MailError('usage', 'give one user name');
  return { configFile, overrides, user: rest[0] };
}

export async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/)[0];
  }
  const first = await askHidden('New password: ');
  const again = await askHidden('Retype new password: ');
  if (first !== again) throw new MailError('usage', 'the passwords differ; nothing changed');
  return first;
}

/** Read a line from the terminal without echoing it. */
export function askHidden(prompt: string): Promise<string> {
  process.stderr.write(prompt);
  const stdin = process.stdin;
  stdin.setRawMode(true);
  stdin.resume();
  let text = '';
  return new Promise((resolve, reject) => {
    const onData = (buf: Buffer) => {
      for (const ch of buf.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\x03') {
          stdin.off('data', onData);
          stdin.setRawMode(false);
          stdin.pause();
          process.stderr.write('\n');
          if (ch === '\x03') reject(new MailError('usage', 'interrupted; nothing changed'));
          else resolve(text);
          return;
        }
        if (ch === '\x7f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export async function main(argv: string[]): Promise<void> {
  try {
    const args = parseArgs(argv);
    const config = loadConfig({ file: args.configFile, overrides: args.overrides });
    const password = await readPassword();
    if (password === '') throw new MailError('usage', 'empty password; nothing changed');
    const what = await setPassword(config.passwdFile, args.user, password);
    process.stderr.write(`mailpasswd: password for ${args.user} ${what} in ${config.passwdFile}\n`);
    process.exitCode = EX.OK;
  } catch (e) {
    if (!(e instanceof MailError)) throw e;
    process.stderr.write(`mailpasswd: ${e.message}\n`);
    if (e.failure === 'usage') process.stderr.write(`${USAGE}\n`);
    process.exitCode = e.exit;
  }
}
