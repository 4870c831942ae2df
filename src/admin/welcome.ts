// The welcome message (welcome_message_file): when the file exists, `mailtk
// user add` sends it to each user it creates, through the queue like any
// mail (bin/sendmail -i, as cron or PHP would), from postmaster. The file is
// a message: header fields (Subject: at least), a blank line, the body;
// ${address}, ${user}, ${domain} and ${hostname} are replaced, anywhere in
// it. A To: field naming the new address is added when the file has none.
// The template is read and checked before the user is made, so a broken one
// changes nothing.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { type Config, childArgs, childEnv } from '../config/index.ts';
import { ownSendmailBin } from '../daemon/runner.ts';
import { MailError } from '../message/status.ts';

const NAMES = ['address', 'user', 'domain', 'hostname'] as const;
const MAX_BYTES = 1 << 20;

/** The template, checked; undefined when the file does not exist (no welcome). */
export function readWelcome(config: Config): string | undefined {
  const file = config.raw.welcome_message_file;
  let text: string;
  try {
    const st = fs.statSync(file);
    if (st.size > MAX_BYTES) throw new MailError('config', `a welcome message of ${st.size} bytes; at most ${MAX_BYTES}`, { file });
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if (e instanceof MailError) throw e;
    throw new MailError('config', `cannot read the welcome message: ${(e as Error).message}`, { file });
  }
  const lines = text.split('\n');
  let i = 0;
  for (; i < lines.length && lines[i].replace(/\r$/, '') !== ''; i++) {
    if (!/^[\x21-\x39\x3b-\x7e]+:/.test(lines[i]) && !(i > 0 && /^[ \t]/.test(lines[i]))) {
      throw new MailError('config', `expected a header field ("Subject: Welcome, \${address}"), then a blank line and the body; found "${lines[i].slice(0, 60)}"`, { file, line: i + 1 });
    }
  }
  if (!lines.slice(0, i).some((l) => /^subject:/i.test(l))) throw new MailError('config', 'the welcome message has no Subject: field', { file, line: 1 });
  lines.forEach((l, n) => {
    for (const m of l.matchAll(/\$\{([^}]*)\}/g)) {
      if (!(NAMES as readonly string[]).includes(m[1])) throw new MailError('config', `unknown \${${m[1]}} (known: ${NAMES.map((x) => `\${${x}}`).join(' ')})`, { file, line: n + 1 });
    }
  });
  return text;
}

/** The message for one new user: the names replaced, a To: field when there is none. */
export function welcomeFor(config: Config, template: string, address: string): string {
  const at = address.lastIndexOf('@');
  const values: Record<string, string> = { address, user: address.slice(0, at), domain: address.slice(at + 1), hostname: config.hostname };
  const text = template.replace(/\$\{(\w+)\}/g, (_, k: string) => values[k]);
  const head = text.slice(0, Math.max(0, text.search(/\r?\n\r?\n/)));
  return /^to:/im.test(head) ? text : `To: <${address}>\n${text}`;
}

/** Queue it through sendmail; a failure names sendmail's own message. */
export async function sendWelcome(config: Config, template: string, address: string): Promise<void> {
  const child = spawn(process.execPath, [ownSendmailBin(), ...childArgs(config), '-i', '-f', `postmaster@${config.hostname}`, '--', address], {
    stdio: ['pipe', 'ignore', 'pipe'],
    env: childEnv(config),
  });
  let err = '';
  child.stderr.on('data', (d) => (err += d));
  child.stdin.on('error', () => undefined); // reported through the exit status
  child.stdin.end(welcomeFor(config, template, address));
  const code = await new Promise<number>((resolve) => {
    child.on('error', (e) => {
      err += e.message;
      resolve(-1);
    });
    child.on('close', (c) => resolve(c ?? -1));
  });
  if (code !== 0) throw new MailError('queue-write', `${address} was added, but the welcome message could not be queued (sendmail exited ${code}: ${err.trim() || 'no message'})`);
}
