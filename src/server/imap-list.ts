// IMAP LIST (RFC 3501 6.3.8) with LIST-EXTENDED (RFC 5258), SPECIAL-USE
// (RFC 6154) and LIST-STATUS (RFC 5819), and the special-use folders made at
// login.
//
// RFC 5258 section 6's grammar:
//   list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat
//          [SP list-return-opts]
//   list-select-opts: SUBSCRIBED, REMOTE, RECURSIVEMATCH (RFC 5258 3),
//          SPECIAL-USE (RFC 6154 3); RECURSIVEMATCH alone (or with REMOTE only)
//          is BAD, and so is any option not known here (RFC 5258 3).
//   mbox-or-pat = list-mailbox / "(" list-mailbox *(SP list-mailbox) ")"
//   list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")"
//          with SUBSCRIBED, CHILDREN (RFC 5258 4), SPECIAL-USE (RFC 6154 3)
//          and STATUS (items) (RFC 5819).
// A mailbox is listed once however many patterns it matches. Special-use
// attributes (\Drafts, \Junk, \Sent, \Trash) are returned on every LIST, as
// Dovecot does (RFC 6154 2 allows it), for the top-level folders of those
// names; children attributes too (RFC 5258 4: the server MAY). With
// RETURN (STATUS ...), a STATUS line follows the LIST line of each mailbox
// that can be selected (RFC 5819 2); one that cannot be read is just listed.

import type { User } from '../config/users.ts';
import { log } from '../log/index.ts';
import type { HeldDir } from '../mailbox/index.ts';
import { enableCondstore } from './imap-condstore.ts';
import {
  allMailboxes, createFolderFile, folderParent, guarded, type Listed, lstatIn, matcher, readSubscriptions, resolveMailbox, statusItems, statusLine,
} from './imap-mailboxes.ts';
import { bad, type Cmd, type ImapSession, ok, type Result } from './imap-session.ts';
import { mailboxOut, wireName } from './imap-names.ts';
import { astring, isAtom, type Token } from './imap-wire.ts';

/** RFC 6154 2: the special uses made at login, with the folder names they are given. */
export const SPECIAL_USE: ReadonlyArray<[string, string]> = [
  ['Drafts', '\\Drafts'],
  ['Junk', '\\Junk'],
  ['Sent', '\\Sent'],
  ['Trash', '\\Trash'],
];
const SPECIAL = new Map(SPECIAL_USE);

/**
 * At login: the special-use folders that are missing are made, as CREATE
 * makes folders (O_EXCL|O_NOFOLLOW, 0600, owned by the user, never root,
 * below the folder directory reached without symlinks). As in Dovecot's
 * "auto = create", one the user deleted comes back at the next login. A
 * failure (a symlink planted on the way, a full disk) is logged, never a
 * reason to refuse the login.
 */
export function makeSpecialFolders(s: ImapSession): void {
  for (const [name] of SPECIAL_USE) {
    try {
      const r = resolveMailbox(s, name);
      if (typeof r === 'string') continue;
      const dir = folderParent(s, r, true) as HeldDir;
      try {
        if (!lstatIn(dir, name)) createFolderFile(s, dir, name);
      } finally {
        dir.close();
      }
    } catch (e) {
      log(s.ctx.config, '', `imap: ${(s.user as User).name}: cannot make the ${name} folder: ${(e as Error).message.replace(/[\r\n]/g, ' ').slice(0, 200)}`);
      return;
    }
  }
}

interface Options {
  subscribed: boolean;
  specialUse: boolean;
  recursive: boolean;
  retSubscribed: boolean;
  retSpecialUse: boolean;
  status?: string[];
  extended: boolean;
}

/** The command's arguments per RFC 5258 6; a string is the BAD's text. */
function parseList(s: ImapSession, args: Token[]): { o: Options; reference: string; patterns: string[] } | string {
  const o: Options = { subscribed: false, specialUse: false, recursive: false, retSubscribed: false, retSpecialUse: false, extended: false };
  let i = 0;
  let remote = false;
  if (args[0]?.kind === 'list') {
    o.extended = true;
    for (const t of (args[i++] as { items: Token[] }).items) {
      if (!isAtom(t)) return 'selection options are atoms';
      switch (t.value.toUpperCase()) {
        case 'SUBSCRIBED': o.subscribed = true; break;
        case 'REMOTE': remote = true; break;
        case 'RECURSIVEMATCH': o.recursive = true; break;
        case 'SPECIAL-USE': o.specialUse = true; break;
        default: return `unknown LIST selection option ${t.value.slice(0, 30)}`;
      }
    }
    // RFC 5258 3: RECURSIVEMATCH needs another selection option (REMOTE is not one that selects).
    if (o.recursive && !o.subscribed && !o.specialUse) return 'RECURSIVEMATCH needs another selection option';
  }
  void remote; // RFC 5258 3: no remote mailboxes here, so REMOTE changes nothing.
  const reference = astring(args[i++], 'reference');
  const pat = args[i++];
  let patterns: string[];
  if (pat?.kind === 'list') {
    o.extended = true;
    patterns = pat.items.map((t) => astring(t, 'mailbox pattern'));
    if (patterns.length === 0) return 'empty list of patterns';
  } else patterns = [astring(pat, 'mailbox pattern')];
  if (i < args.length) {
    if (!isAtom(args[i], 'RETURN') || args[i + 1]?.kind !== 'list' || i + 2 !== args.length) return 'LIST ends with RETURN (options)';
    o.extended = true;
    const opts = (args[i + 1] as { items: Token[] }).items;
    for (let k = 0; k < opts.length; k++) {
      const t = opts[k];
      if (!isAtom(t)) return 'return options are atoms';
      switch (t.value.toUpperCase()) {
        case 'SUBSCRIBED': o.retSubscribed = true; break;
        case 'CHILDREN': break; // given always
        case 'SPECIAL-USE': o.retSpecialUse = true; break;
        case 'STATUS': {
          const items = opts[++k];
          if (items?.kind !== 'list' || items.items.length === 0) return 'STATUS needs a list of items';
          const names = statusItems(s, items.items);
          if (typeof names === 'string') return names;
          o.status = names;
          break;
        }
        default: return `unknown LIST return option ${t.value.slice(0, 30)}`;
      }
    }
  }
  // RFC 5258 3: SUBSCRIBED selection implies the SUBSCRIBED return option; RFC 6154 3 the same for SPECIAL-USE.
  if (o.subscribed) o.retSubscribed = true;
  if (o.specialUse) o.retSpecialUse = true;
  return { o, reference, patterns };
}

/** The special-use attribute of an existing mailbox, if any. */
function specialOf(m: Listed | undefined): string | undefined {
  return m && !m.dir ? SPECIAL.get(m.name) : undefined;
}

/** A mailbox's LIST attributes: what it is, \Subscribed when `subscribed`, its special use. */
export function listAttributes(m: Listed | undefined, subscribed: boolean): string[] {
  const attrs: string[] = [];
  if (!m) attrs.push('\\NonExistent');
  else if (m.dir) attrs.push('\\Noselect', m.children ? '\\HasChildren' : '\\HasNoChildren');
  // An mbox file (INBOX too) cannot hold other mailboxes: \NoInferiors (RFC 3501 7.2.2,
  // which says as much as \HasNoChildren), as Dovecot's mbox storage lists it.
  else attrs.push('\\NoInferiors');
  if (subscribed) attrs.push('\\Subscribed');
  const special = specialOf(m);
  if (special) attrs.push(special);
  return attrs;
}

export async function listCommand(s: ImapSession, c: Cmd): Promise<Result> {
  const p = parseList(s, c.args);
  if (typeof p === 'string') return bad(p);
  const { o, reference, patterns } = p;
  // RFC 3501 6.3.8: an empty pattern asks for the delimiter and the reference's root.
  if (!o.extended && patterns[0] === '') {
    await s.untagged('LIST (\\Noselect) "/" ""');
    return ok('LIST completed');
  }
  if (o.status?.includes('HIGHESTMODSEQ')) await enableCondstore(s); // as STATUS HIGHESTMODSEQ (RFC 7162 3.1)
  const matchers = patterns.filter((x) => x !== '').map((x) => matcher(reference, x));
  // An IMAP4rev2 client's patterns are UTF-8: matched against the names as it sees them.
  const matches = (name: string) => matchers.some((m) => m(wireName(s, name)));
  return guarded(s, async () => {
    const existing = allMailboxes(s);
    const byName = new Map(existing.map((m) => [m.name, m]));
    const subs = o.retSubscribed || o.subscribed ? new Set(readSubscriptions(s)) : new Set<string>();
    const selecting = o.subscribed || o.specialUse;
    /** The selection criteria (RFC 5258 3; RFC 6154 3): all of those given. */
    const satisfies = (name: string) => (!o.subscribed || subs.has(name)) && (!o.specialUse || specialOf(byName.get(name)) !== undefined);
    // The names that may be listed: every mailbox, and with SUBSCRIBED the subscribed names that do not exist.
    const names = existing.map((m) => m.name);
    if (o.subscribed) for (const n of [...subs].sort()) if (!byName.has(n)) names.push(n);
    // RECURSIVEMATCH (RFC 5258 3, 3.5): a parent that matches the pattern but not the
    // criteria is listed, with CHILDINFO, when a descendant satisfies them; as in
    // Dovecot, only for a descendant the patterns do not match (one they match is
    // listed itself), and a parent that does satisfy them gets CHILDINFO too.
    const withChildren = new Set<string>();
    if (o.recursive) {
      for (const n of names) {
        if (!satisfies(n) || matches(n)) continue;
        const parts = n.split('/');
        for (let k = 1; k < parts.length; k++) withChildren.add(parts.slice(0, k).join('/'));
      }
      for (const n of [...withChildren].sort()) if (!names.includes(n)) names.push(n);
    }
    const criteria = [o.subscribed ? '"SUBSCRIBED"' : '', o.specialUse ? '"SPECIAL-USE"' : ''].filter(Boolean).join(' ');
    for (const name of names) {
      if (!matches(name)) continue;
      const selected = !selecting || satisfies(name);
      const childinfo = o.recursive && withChildren.has(name);
      if (!selected && !childinfo) continue;
      const m = byName.get(name);
      const attrs = listAttributes(m, o.retSubscribed && subs.has(name));
      const ext = childinfo ? ` ("CHILDINFO" (${criteria}))` : '';
      await s.untagged(`LIST (${attrs.join(' ')}) "/" ${mailboxOut(s, name)}${ext}`);
      if (o.status && m && !m.dir) {
        const r = resolveMailbox(s, name);
        if (typeof r === 'string') continue;
        try {
          await s.untagged(await statusLine(s, r, o.status));
        } catch {
          // RFC 5819 2: a mailbox whose status cannot be had is just listed.
        }
      }
    }
    return ok('LIST completed');
  });
}
