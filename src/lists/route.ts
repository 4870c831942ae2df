// Which of a list's addresses a recipient is, for the lists that exist:
// LIST@DOMAIN (a post), LIST-request (commands), LIST-owner (to the owners),
// LIST-bounces (DSNs about posts), LIST-confirm+TOKEN (a subscription change
// confirmed), LIST-unsubscribe+TOKEN (RFC 8058's one-click, by mail),
// LIST-approve+TOKEN and LIST-reject+TOKEN (the owner on a held post).
// Mailman's and mlmmj's suffixes. Reads only whether the list's directory exists.

import { splitAddress } from '../message/index.ts';
import { isToken } from './store.ts';

export type ListRole = 'post' | 'request' | 'owner' | 'bounces' | 'confirm' | 'unsubscribe' | 'approve' | 'reject';

export interface ListAddress {
  /** LIST@DOMAIN. */
  list: string;
  role: ListRole;
  token?: string;
}

const SUFFIXES: ReadonlyArray<[string, ListRole, boolean]> = [
  ['-request', 'request', false],
  ['-owner', 'owner', false],
  ['-bounces', 'bounces', false],
  ['-confirm', 'confirm', true],
  ['-unsubscribe', 'unsubscribe', true],
  ['-approve', 'approve', true],
  ['-reject', 'reject', true],
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
  for (const [suffix, role, needsToken] of SUFFIXES) {
    if (!base.endsWith(suffix) || needsToken !== (token !== undefined)) continue;
    if (needsToken && !isToken(token!)) return undefined;
    const list = `${base.slice(0, -suffix.length)}@${domain}`;
    if (lists.has(list)) return { list, role, token };
  }
  return undefined;
}

export function roleAddress(list: string, role: ListRole, token?: string): string {
  const at = list.lastIndexOf('@');
  const local = list.slice(0, at);
  const domain = list.slice(at + 1);
  const suffix = role === 'post' ? '' : `-${role}`;
  return `${local}${suffix}${token ? `+${token}` : ''}@${domain}`;
}

/** RFC 2919's list identifier: LIST.DOMAIN. */
export function listId(list: string): string {
  return list.replace('@', '.');
}
