// Handing a finished message to mailtk's own sendmail: the bin/sendmail beside
// the bin/mail we were started from (found from this bundle's location, never
// /usr/sbin/sendmail), with the same config (-C and MAILTK_CONFIG) and -O
// overrides, always -i, and -f for `-r from`. A failed send, or an interrupted
// composition, keeps the text in ~/dead.letter (the DEAD variable) as mbox.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childArgs, childEnv, type Config } from '../config/index.ts';
import { appendToFolder, folderMessage } from '../mailbox/index.ts';
import { skinAddress } from './headline.ts';
import { buildMessage, envelopeRecipients, type Draft } from './mime-out.ts';

/** bin/sendmail beside us: dist/ or src/mail/ are one or two levels below the package root. */
export function sendmailPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = path.join(dir, 'bin', 'sendmail');
    if (fs.existsSync(candidate)) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find bin/sendmail beside bin/mail');
}

export interface SendResult {
  ok: boolean;
  /** What sendmail said, for the person. */
  message: string;
}

/** Run sendmail with the message on its stdin. */
export async function sendMessage(config: Config, d: Draft): Promise<SendResult> {
  const data = await buildMessage(d);
  const rcpts = envelopeRecipients(d);
  if (rcpts.length === 0) return { ok: false, message: 'No recipients specified' };
  const args = [...(config.file ? ['-C', config.file] : []), ...childArgs(config), '-i'];
  if (d.from) args.push('-f', skinAddress(d.from));
  args.push('--', ...rcpts);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [sendmailPath(), ...args], { env: childEnv(config), stdio: ['pipe', 'inherit', 'pipe'] });
    let err = '';
    child.stderr.on('data', (b) => (err += b));
    child.on('error', (e) => resolve({ ok: false, message: e.message }));
    child.on('close', (code) => resolve({ ok: code === 0, message: err.trim() || `sendmail exited with status ${code}` }));
    child.stdin.on('error', () => {}); // reported through the exit status
    child.stdin.end(data);
  });
}

/** Keep an unsent draft: appended to dead.letter as an mbox message. Returns the file. */
export async function saveDeadLetter(d: Draft, sender: string, file: string): Promise<string> {
  const data = await buildMessage(d);
  await appendToFolder(file, [folderMessage(sender, data)]);
  return file;
}
