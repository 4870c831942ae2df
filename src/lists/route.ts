// Which of a list's addresses a recipient is, for the lists that exist:
// LIST@DOMAIN (a post), LIST-request (commands), LIST-owner (to the owners),
// LIST-bounces (DSNs about posts), LIST-bounces+MEMBER=DOMAIN (the same,
// VERP: the address names the member whose copy bounced, as Postfix's and
// qmail's VERP write it), LIST-confirm+TOKEN (a subscription change
// confirmed), LIST-unsubscribe+TOKEN (RFC 8058's one-click, by mail),
// LIST-approve+TOKEN and LIST-reject+TOKEN (the owner on a held post).
// Mailman's and mlmmj's suffixes. Reads only whether the list's directory exists.

import { splitAddress } from '../message/index.ts';
import { memberAddress } from './members.ts';
import { isToken } from './store.ts';

export type ListRole = 'post' | 'request' | 'owner' | 'bounces' | 'confirm' | 'unsubscribe' | 'approve' | 'reject';

export interface ListAddress {
  /** LIST@DOMAIN. */
  list: string;
  role: ListRole;
  token?: string;
  /** LIST-bounces+MEMBER=DOMAIN: the member the VERP address names. */
  member?: string;
}

/** After "+": nothing, a token (32 hex digits), or a VERP member (bounces only). */
type Tail = 'none' | 'token' | 'verp';

const SUFFIXES: ReadonlyArray<[string, ListRole, Tail]> = [
  ['-request', 'request', 'none'],
  ['-owner', 'owner', 'none'],
  ['-bounces', 'bounces', 'verp'],
  ['-confirm', 'confirm', 'token'],
  ['-unsubscribe', 'unsubscribe', 'token'],
  ['-approve', 'approve', 'token'],
  ['-reject', 'reject', 'token'],
];

/**
 * The list address this recipient is, or undefined. `lists` are the lists
 * that exist (allLists(), read once a run); `hostname` qualifies a bare name.
 */
export function routeList(lists: ReadonlySet<string>, hostname: string, recipient: string): ListAddress | undefined {
  if (lists.size === 0) return undefined;
  const bare = recipient.trim().replace(/^<(.*)>$/, '$1').toLowerCase();
  const { local, domain: given } = splitAddress(bare);
  const domain = given || hostname.toLowerCase();
  if (!local || local.startsWith('|') || local.startsWith('/')) return undefined;
  if (lists.has(`${local}@${domain}`)) return { list: `${local}@${domain}`, role: 'post' };
  const plus = local.indexOf('+');
  const base = plus < 0 ? local : local.slice(0, plus);
  const token = plus < 0 ? undefined : local.slice(plus + 1);
  for (const [suffix, role, tail] of SUFFIXES) {
    if (!base.endsWith(suffix)) continue;
    const list = `${base.slice(0, -suffix.length)}@${domain}`;
    if (!lists.has(list)) continue;
    if (token === undefined) return tail === 'token' ? undefined : { list, role };
    if (tail === 'token') return isToken(token) ? { list, role, token } : undefined;
    const member = tail === 'verp' ? verpMember(token) : undefined;
    return member ? { list, role, member } : undefined;
  }
  return undefined;
}

/** The VERP tail for a member: "user@host" as "user=host". */
export function verpTail(member: string): string {
  const at = member.lastIndexOf('@');
  return `${member.slice(0, at)}=${member.slice(at + 1)}`;
}

/** The member a VERP tail names, or undefined. */
function verpMember(tail: string): string | undefined {
  const eq = tail.lastIndexOf('=');
  return eq > 0 ? memberAddress(`${tail.slice(0, eq)}@${tail.slice(eq + 1)}`) : undefined;
}

/** A role's address; `tail` goes after "+" (a token, or verpTail(member)). */
export function roleAddress(list: string, role: ListRole, tail?: string): string {
  const at = list.lastIndexOf('@');
  const local = list.slice(0, at);
  const domain = list.slice(at + 1);
  const suffix = role === 'post' ? '' : `-${role}`;
  return `${local}${suffix}${tail ? `+${tail}` : ''}@${domain}`;
}

/** RFC 2919's list identifier: LIST.DOMAIN. */
export function listId(list: string): string {
  return list.replace('@', '.');
}
