// What quit (and changing folders) does to the folder, by POSIX mailx's rules.
// In the system mailbox: deleted messages go; saved ones go too unless
// `keepsave`; preserved (hold) ones stay; those marked with `mbox`, and those
// read this session unless `hold` is set, move to ~/mbox (appended first, so a
// crash between the two steps can duplicate but never lose); everything else
// stays. In any other folder only deleted messages go. What stays gets
// Status: O (R when read) and X-Status:, as mailx writes them. The mailbox is
// rewritten under the dotlock by rewriteMbox, keeping mail that came meanwhile.

import { rewriteMbox, storedMessage, withFlags, appendToFolder, readMessageBytes, type RewriteKeep } from '../mailbox/index.ts';
import type { Folder, Message } from './folder.ts';
import type { Session } from './session.ts';

type Fate = 'delete' | 'mbox' | 'keep';

function fateOf(s: Session, f: Folder, m: Message): Fate {
  if (m.deleted) return 'delete';
  if (!f.system) return 'keep';
  if (m.saved && !m.preserved && s.get('keepsave') === undefined) return 'delete';
  if (m.preserved) return 'keep';
  if (m.mboxed) return 'mbox';
  if (m.touched && m.read && s.get('hold') === undefined) return 'mbox';
  return 'keep';
}

/** The header block with this session's flags; every message that stays is now "old". */
function newHeaders(m: Message): Buffer {
  return withFlags(m.header, { ...m.stored, read: m.read, old: true, answered: m.answered, flagged: m.flagged, deleted: false });
}

function unchanged(m: Message): boolean {
  const s = m.stored;
  return s.old && s.read === m.read && s.answered === m.answered && s.flagged === m.flagged && !s.deleted;
}

const plural = (n: number) => `${n} message${n === 1 ? '' : 's'}`;

/** Apply the session's changes to the folder; false when the folder changed under us and nothing was done. */
export async function commitFolder(s: Session): Promise<boolean> {
  const f = s.folder;
  if (!f || f.readOnly || f.messages.length === 0) return true;
  const fates = f.messages.map((m) => fateOf(s, f, m));
  const keep: RewriteKeep[] = [];
  const toMbox: Message[] = [];
  f.messages.forEach((m, i) => {
    if (fates[i] === 'mbox') toMbox.push(m);
    if (fates[i] === 'keep') keep.push(unchanged(m) ? { entry: m.entry } : { entry: m.entry, headers: newHeaders(m) });
  });
  if (keep.length === f.messages.length && keep.every((k) => !k.headers)) return true; // nothing to do
  if (toMbox.length) await saveToMbox(s, f, toMbox);
  await rewriteMbox(f.path, f.index, keep);
  if (f.system) {
    if (toMbox.length) s.out(`Saved ${plural(toMbox.length)} in ${s.mboxFile()}\n`);
    if (keep.length) s.out(`Held ${plural(keep.length)} in ${f.path}\n`);
  } else if (keep.length !== f.messages.length || keep.some((k) => k.headers)) {
    s.out(`"${f.path}" complete\n`);
  }
  return true;
}

async function saveToMbox(s: Session, f: Folder, ms: Message[]): Promise<void> {
  const out: Buffer[] = [];
  for (const m of ms) {
    const data = await readMessageBytes(f.path, m.entry);
    const headers = withFlags(m.header, { ...m.stored, read: true, old: true, answered: m.answered, flagged: m.flagged, deleted: false });
    const body = data.subarray(m.entry.headerLength);
    out.push(storedMessage(Buffer.concat([Buffer.from(m.entry.fromLine + '\n'), headers, body])));
  }
  await appendToFolder(s.mboxFile(), out);
}
