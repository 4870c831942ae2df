// Writing from inside a session: mail (new message), reply (to the sender and
// everyone it went to, minus me) and Reply (to the sender only), as POSIX
// mailx defines r and R. Replies get "Re: ", In-Reply-To:, References: and the
// original text quoted with "> " under an attribution line. Also the one
// compose-and-send path that send mode (cli/mail.ts) uses: ask, collect, send,
// dead.letter on failure.

import { invokingUser } from '../config/users.ts';
import type { Config } from '../config/index.ts';
import { collect, splitAddrs, type ComposeContext } from './compose.ts';
import { decodeBody } from './display.ts';
import { messageData, type Message } from './folder.ts';
import { decodeHeader, envelopeSender, pickFields, realName, skinAddress } from './headline.ts';
import type { LineInput } from './input.ts';
import { emptyDraft, type Draft } from './mime-out.ts';
import { resolveList } from './msglist.ts';
import { saveDeadLetter, sendMessage } from './send.ts';
import type { Args, Session } from './session.ts';

export interface ComposeSetup {
  config: Config;
  input: LineInput;
  escapes: boolean;
  dotEnds: boolean;
  askSubject: boolean;
  askcc: boolean;
  deadFile: string;
  discardEmpty: boolean;
  out: (s: string) => void;
  err: (s: string) => void;
  quote?: ComposeContext['quote'];
}

/** Ask what is missing, collect the text, send; true when sent (or discarded on purpose). */
export async function composeAndSend(d: Draft, c: ComposeSetup): Promise<boolean> {
  if (c.askSubject && c.input.tty && !d.subject) {
    const subj = await c.input.read('Subject: ');
    if (typeof subj === 'string') d.subject = subj;
  }
  const sender = invokingUser(c.config).name;
  const saveDead = async (draft: Draft) => {
    const file = await saveDeadLetter(draft, sender, c.deadFile);
    return `(message kept in ${file})\n`;
  };
  const end = await collect(d, { input: c.input, escapes: c.escapes, dotEnds: c.dotEnds, out: c.out, quote: c.quote, saveDead, askcc: c.askcc });
  if (end === 'abort') return false;
  if (d.body.trim() === '' && d.attach.length === 0) {
    if (c.discardEmpty) return true;
    if (c.input.tty) c.out('Null message body; hope that\'s ok\n');
  }
  const r = await sendMessage(c.config, d);
  if (r.ok) return true;
  c.err(`mail: ${r.message}\n`);
  c.err(await saveDead(d).catch((e) => `mail: cannot keep the message: ${(e as Error).message}\n`));
  return false;
}

/** The setup for composing inside a session: escapes always (stdin is the command stream), "." ends. */
export function sessionSetup(s: Session): ComposeSetup {
  return {
    config: s.config,
    input: s.input,
    escapes: true,
    dotEnds: true,
    askSubject: s.get('noasksub') === undefined,
    askcc: s.get('askcc') !== undefined,
    deadFile: s.deadFile(),
    discardEmpty: false,
    out: (t) => s.out(t),
    err: (t) => s.err(t),
    quote: (spec, indent) => quoteMessages(s, spec, indent),
  };
}

/** Each line of the text with `prefix` before it, ending in a newline. */
function quoteLines(text: string, prefix: string): string {
  const lines = text.replace(/\r\n/g, '\n').replace(/\n+$/, '').split('\n');
  return lines.map((l) => prefix + l).join('\n') + '\n';
}

/** ~m / ~f: the decoded text of messages, indented with `indentprefix` (default "> ") for ~m. */
async function quoteMessages(s: Session, spec: string, indent: boolean): Promise<string> {
  const prefix = indent ? (s.get('indentprefix') ?? '> ') : '';
  let out = '';
  for (const m of resolveList(spec, s.folder, s.dot)) {
    const body = await decodeBody(await messageData(s.folder, m));
    out += quoteLines(body.text, prefix);
  }
  return out;
}

export async function mail(s: Session, a: Args): Promise<void> {
  const d = emptyDraft();
  d.to = s.expandAliases(splitAddrs(a.raw));
  if (d.to.length === 0) {
    const to = await s.input.read('To: ');
    if (typeof to === 'string') d.to = s.expandAliases(splitAddrs(to));
  }
  if (d.to.length === 0) return s.err('No recipients specified\n');
  await composeAndSend(d, sessionSetup(s));
}

/** Is this address one of mine (to leave out of reply-all)? */
function isMe(s: Session, addr: string): boolean {
  const [local, domain] = addr.toLowerCase().split('@');
  if (local !== s.me.name.toLowerCase()) return false;
  return !domain || domain === s.config.hostname.toLowerCase() || domain === 'localhost';
}

/** The draft of a reply to m: to the sender, and for reply-all to To: and Cc: as well. */
export async function replyDraft(s: Session, m: Message, all: boolean): Promise<Draft> {
  const f = pickFields(m.header, ['from', 'reply-to', 'to', 'cc', 'subject', 'message-id', 'references', 'in-reply-to', 'date']);
  const d = emptyDraft();
  const author = f.get('reply-to') ?? f.get('from') ?? envelopeSender(m.entry.fromLine);
  d.to = splitAddrs(author);
  if (all) {
    const others = splitAddrs(f.get('to') ?? '').filter((x) => !isMe(s, skinAddress(x)));
    d.to.push(...others.filter((x) => !d.to.some((y) => skinAddress(y) === skinAddress(x))));
    d.cc = splitAddrs(f.get('cc') ?? '').filter((x) => !isMe(s, skinAddress(x)));
  }
  const subject = decodeHeader(f.get('subject') ?? '');
  d.subject = /^re:/i.test(subject) ? subject : `Re: ${subject}`;
  const id = f.get('message-id');
  if (id) {
    d.inReplyTo = id;
    d.references = [f.get('references') ?? f.get('in-reply-to'), id].filter(Boolean).join(' ');
  }
  if (s.get('noquote') === undefined) {
    const body = await decodeBody(await messageData(s.folder, m));
    const who = realName(f.get('from') ?? author);
    const prefix = s.get('indentprefix') ?? '> ';
    d.body = `On ${f.get('date') ?? 'an earlier date'}, ${who} wrote:\n` + quoteLines(body.text, prefix);
  }
  return d;
}

export const reply = (all: boolean) => async (s: Session, a: Args) => {
  const m = a.msgs[0];
  const d = await replyDraft(s, m, all);
  s.dot = m.num;
  s.out(`To: ${d.to.join(', ')}\n${d.cc.length ? `Cc: ${d.cc.join(', ')}\n` : ''}Subject: ${d.subject}\n\n`);
  if (s.input.tty && d.body) s.out(d.body);
  const setup = { ...sessionSetup(s), askSubject: false };
  if (await composeAndSend(d, setup)) {
    m.answered = true;
    m.read = true;
    m.isNew = false;
  }
};
