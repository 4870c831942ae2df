// "|command" delivery: the message on standard input of /bin/sh -c command,
// run as the owner of the alias, :include: or .forward file that named it
// (never root: aliases resolve root-owned entries to default_privs), with a
// clean environment (Postfix's local(8) set: SENDER, RECIPIENT, LOCAL,
// DOMAIN, and MAILTK_CONFIG where Postfix passes MAIL_CONFIG, so that a
// mailtk program such as vacation(1) reaches the same config) and a time
// limit. Exit 0 delivers, EX_TEMPFAIL (75) defers, anything else bounces
// with the program's own words, as sendmail's prog mailer and Postfix's
// local(8) do. Known limit (Postfix's BUGS too):
// a program may run twice if mailtk dies after it ran and before crossing off.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { User } from '../config/users.ts';
import { EX, MailError } from '../message/status.ts';

export interface ProgramJob {
  command: string;
  runAs: User;
  sender: string;
  recipient: string;
  input: Buffer; // the message as the program reads it (From_ line included)
  timeoutMs: number;
  /** The config file the delivering mailtk read, passed on as MAILTK_CONFIG. */
  configFile?: string;
}

const OUTPUT_LIMIT = 2000;

/** The user's home when it exists (nobody's, /nonexistent, does not), else /. */
function usableDir(dir: string): string {
  try {
    return dir && fs.statSync(dir).isDirectory() ? dir : '/';
  } catch {
    return '/';
  }
}

export function runProgram(job: ProgramJob): Promise<void> {
  const root = process.geteuid?.() === 0;
  const [local, domain = ''] = job.recipient.split(/@(?=[^@]*$)/);
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', job.command], {
      cwd: usableDir(job.runAs.home),
      env: {
        PATH: '/usr/local/bin:/usr/bin:/bin',
        HOME: job.runAs.home,
        USER: job.runAs.name,
        LOGNAME: job.runAs.name,
        SHELL: '/bin/sh',
        SENDER: job.sender,
        RECIPIENT: job.recipient,
        LOCAL: local,
        DOMAIN: domain,
        ...(job.configFile ? { MAILTK_CONFIG: job.configFile } : {}),
      },
      ...(root ? { uid: job.runAs.uid, gid: job.runAs.gid } : {}),
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: job.timeoutMs,
      killSignal: 'SIGKILL',
    });
    let output = '';
    const keep = (b: Buffer) => {
      if (output.length < OUTPUT_LIMIT) output += b.toString('utf8');
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // A program that does not read all its input is not an error (sendmail's rule).
    child.stdin.on('error', () => {});
    child.stdin.end(job.input);
    child.on('error', (e) => {
      // A child that never started leaves its pipes open: close them, or they hold the process.
      child.stdin.destroy();
      child.stdout.destroy();
      child.stderr.destroy();
      reject(new MailError('program-tempfail', `cannot run ${job.command}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      const said = output.trim().split('\n').slice(0, 3).join('; ').slice(0, 300);
      if (code === 0) resolve();
      else if (signal) reject(new MailError('program-tempfail', `${job.command}: killed by ${signal}${signal === 'SIGKILL' ? ' (time limit)' : ''}`));
      else if (code === EX.TEMPFAIL) reject(new MailError('program-tempfail', `${job.command}: deferred (exit 75)${said ? `: ${said}` : ''}`));
      else reject(new MailError('program-failed', `${job.command}: exit ${code}${said ? `: ${said}` : ''}`));
    });
  });
}
