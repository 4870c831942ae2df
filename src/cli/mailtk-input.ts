// Passwords for `mailtk`: at a terminal, asked without echo; otherwise read
// from stdin, one a line, in the order the command needs them: with --login,
// the administrator's own password first, then (user add, user passwd) the
// new one. Stdin is read once, whole, however many are taken.

import { askHidden, readPassword } from './mailpasswd.ts';

let lines: Promise<string[]> | undefined;
let taken = 0;

function stdinLines(): Promise<string[]> {
  lines ??= (async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
  })();
  return lines;
}

/** The next line of stdin, or '' when there is none. */
async function nextLine(): Promise<string> {
  return (await stdinLines())[taken++] ?? '';
}

/** The password of `login` (mailtk --login). */
export async function loginPassword(login: string): Promise<string> {
  return process.stdin.isTTY ? askHidden(`Password for ${login}: `) : nextLine();
}

/** A new password: asked twice at a terminal, else the next line of stdin. */
export async function newPassword(): Promise<string> {
  return process.stdin.isTTY ? readPassword() : nextLine();
}
