// Starting the two modes once the command line is read. Send mode: the draft
// from -s/-c/-b/-r/-a and the addresses, the text from the terminal (Subject:
// prompt, tilde escapes, "." or ^D ends) or from the pipe (as it is, to EOF).
// Read mode: ~/.mailrc (MAILRC) and -S settings, the banner and summary, then
// the command loop on the terminal or on stdin. -i ignores interrupts.

import type { Config } from '../config/index.ts';
import type { User } from '../config/users.ts';
import type { MailArgs } from './args.ts';
import { composeAndSend } from './cmd-compose.ts';
import { COMMANDS } from './commands.ts';
import { splitAddrs } from './compose.ts';
import type { Folder } from './folder.ts';
import { LineInput } from './input.ts';
import { emptyDraft } from './mime-out.ts';
import { Session } from './session.ts';
import { colourWanted, paintFor } from './term.ts';
import { VERSION } from './cmd-misc.ts';
import { loadWordDecoder } from './headline.ts';

function mailrc(home: string): string {
  return process.env.MAILRC || `${home}/.mailrc`;
}

async function newSession(config: Config, me: User, a: MailArgs, input: LineInput): Promise<Session> {
  await loadWordDecoder(); // messages shown, replied to or arriving later may hold encoded-words
  const s = new Session(config, me, a, input, await paintFor(colourWanted()), COMMANDS);
  s.vars.set('header', '');
  await s.source(mailrc(s.home), true);
  for (const v of a.sets) await s.execute(`set ${v}`);
  if (a.noHeader) s.vars.delete('header');
  return s;
}

export async function runSend(config: Config, me: User, a: MailArgs): Promise<number> {
  const input = new LineInput();
  try {
    const s = await newSession(config, me, a, input);
    const d = emptyDraft();
    d.to = s.expandAliases(a.recipients.flatMap(splitAddrs));
    d.cc = s.expandAliases(a.cc.flatMap(splitAddrs));
    d.bcc = s.expandAliases(a.bcc.flatMap(splitAddrs));
    d.subject = a.subject ?? '';
    d.attach = a.attach.map((f) => s.expandName(f));
    if (a.from) d.from = a.from;
    if (a.ignoreInterrupts) process.on('SIGINT', () => {});
    const sent = await composeAndSend(d, {
      config,
      input,
      escapes: input.tty,
      dotEnds: input.tty,
      askSubject: a.subject === undefined,
      askcc: s.get('askcc') !== undefined,
      deadFile: s.deadFile(),
      discardEmpty: a.discardEmpty,
      out: (t) => process.stdout.write(t),
      err: (t) => process.stderr.write(t),
    });
    return sent ? 0 : 1;
  } finally {
    input.close();
  }
}

export async function runSession(config: Config, me: User, a: MailArgs, folder: Folder): Promise<number> {
  const input = new LineInput();
  try {
    const s = await newSession(config, me, a, input);
    s.folder = folder;
    s.dot = s.firstDot();
    if (input.tty) s.out(`${VERSION}.  Type ? for help.\n`);
    if (s.get('header') !== undefined) s.out(s.folderLine() + s.screenful(s.dot));
    await s.loop();
    return s.exitCode;
  } finally {
    input.close();
  }
}
