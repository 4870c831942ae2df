// Handing the reply to mailtk's own sendmail (the bin/sendmail beside
// bin/vacation, as mail(1) finds it), with the same config and -O overrides,
// the answered address as the one envelope recipient (never -t: the reply's
// own header is not trusted to say where it goes), and the null reverse-path
// <> unless -R gave one (RFC 3834 3.3), so a bounce of the reply is dropped
// instead of answered. Run as the user, sendmail leaves it in the maildrop.

import { spawn } from 'node:child_process';
import { childArgs, childEnv, type Config } from '../config/index.ts';
import { sendmailPath } from '../mail/send.ts';
import { MailError } from '../message/status.ts';

export function sendReply(config: Config, message: Buffer, to: string, returnPath = '<>'): Promise<void> {
  const args = [...(config.file ? ['-C', config.file] : []), ...childArgs(config), '-i', '-f', returnPath, '--', to];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [sendmailPath(), ...args], { env: childEnv(config), stdio: ['pipe', 'ignore', 'pipe'] });
    let said = '';
    child.stderr.on('data', (b) => (said += b));
    child.on('error', (e) => reject(new MailError('program-tempfail', `cannot run sendmail: ${e.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new MailError('program-tempfail', `sendmail exited with status ${code}${said.trim() ? `: ${said.trim()}` : ''}`));
    });
    child.stdin.on('error', () => {}); // reported through the exit status
    child.stdin.end(message);
  });
}
