// The changes `mailtk` makes to the virtual domains, as data: one
// AdminRequest, checked (checkRequest: every field from a socket is hostile),
// limited to a domain administrator's domains (scopeOf), and performed
// (performRequest) by the same functions whoever asks, root at the command
// line or the daemon for a domain administrator (src/daemon/admin-socket.ts).
// The answer is text and, for listings, rows, which the command prints the
// same way either side.

import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { splitVirtual } from '../virtual/tables.ts';

export type AdminRequest =
  | { op: 'user-add'; user: string; password: string }
  | { op: 'user-del'; user: string }
  | { op: 'user-passwd'; user: string; password: string }
  | { op: 'user-list'; domain?: string }
  | { op: 'alias-add'; address: string; targets: string[] }
  | { op: 'alias-del'; address: string }
  | { op: 'alias-list'; domain?: string }
  | { op: 'quota-set'; user: string; size: string; messages?: string }
  | { op: 'quota-show'; user: string }
  | { op: 'domain-add'; domain: string }
  | { op: 'domain-del'; domain: string }
  | { op: 'domain-list' }
  | { op: 'admin-add'; user: string; domain: string }
  | { op: 'admin-del'; user: string; domain?: string }
  | { op: 'admin-list'; domain?: string };

export type AdminOp = AdminRequest['op'];

export interface AdminAnswer {
  text?: string;
  /** A listing's rows; performRequest may give them one at a time (a generator), the daemon sends them as an array. */
  rows?: Iterable<object>;
  /** quota show: one row, printed as an object in JSON. */
  row?: object;
}

/** Each op's fields: name, and whether it is optional or a list. */
const FIELDS: Record<AdminOp, Array<[string, 'string' | 'optional' | 'list']>> = {
  'user-add': [['user', 'string'], ['password', 'string']],
  'user-del': [['user', 'string']],
  'user-passwd': [['user', 'string'], ['password', 'string']],
  'user-list': [['domain', 'optional']],
  'alias-add': [['address', 'string'], ['targets', 'list']],
  'alias-del': [['address', 'string']],
  'alias-list': [['domain', 'optional']],
  'quota-set': [['user', 'string'], ['size', 'string'], ['messages', 'optional']],
  'quota-show': [['user', 'string']],
  'domain-add': [['domain', 'string']],
  'domain-del': [['domain', 'string']],
  'domain-list': [],
  'admin-add': [['user', 'string'], ['domain', 'string']],
  'admin-del': [['user', 'string'], ['domain', 'optional']],
  'admin-list': [['domain', 'optional']],
};

const MAX_FIELD = 1024;
const MAX_TARGETS = 100;

/** An AdminRequest from untrusted data: known op, exactly its fields, short strings with no control characters. */
export function checkRequest(data: unknown): AdminRequest {
  const bad = (why: string) => new MailError('usage', `bad request: ${why}`);
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('not an object');
  const o = data as Record<string, unknown>;
  if (typeof o.op !== 'string' || !Object.hasOwn(FIELDS, o.op)) throw bad('unknown op');
  const fields = FIELDS[o.op as AdminOp];
  const str = (v: unknown, name: string) => {
    if (typeof v !== 'string' || v.length > MAX_FIELD || /[\x00-\x1f\x7f]/.test(v)) throw bad(`${name}: a string of at most ${MAX_FIELD} characters, no control characters`);
    return v;
  };
  const out: Record<string, unknown> = { op: o.op };
  for (const key of Object.keys(o)) if (key !== 'op' && !fields.some(([f]) => f === key)) throw bad(`unexpected field ${key.slice(0, 40)}`);
  for (const [name, kind] of fields) {
    const v = o[name];
    if (kind === 'optional' && v === undefined) continue;
    if (kind === 'list') {
      if (!Array.isArray(v) || v.length === 0 || v.length > MAX_TARGETS) throw bad(`${name}: a list of 1 to ${MAX_TARGETS} strings`);
      out[name] = v.map((x) => str(x, name));
    } else out[name] = str(v, name);
  }
  return out as AdminRequest;
}

/** The virtual domain a request changes or reads, or undefined when it is a system administrator's (all domains). */
export function domainOf(r: AdminRequest): string | undefined {
  switch (r.op) {
    case 'user-add':
    case 'user-del':
    case 'user-passwd':
    case 'quota-show':
      return splitVirtual(r.user)?.domain ?? '';
    case 'quota-set':
      return splitVirtual(r.user.startsWith('@') ? `x${r.user}` : r.user)?.domain ?? '';
    case 'alias-add':
    case 'alias-del':
      return splitVirtual(r.address.startsWith('@') ? `x${r.address}` : r.address)?.domain ?? '';
    case 'user-list':
    case 'alias-list':
      return r.domain?.toLowerCase().replace(/\.$/, '');
    default:
      return undefined;
  }
}

/**
 * A domain administrator's request, within their domains: refused (77) when
 * it names another domain or is the system administrator's; a listing
 * without a domain is narrowed to theirs.
 */
export function scopeOf(r: AdminRequest, login: string, domains: string[]): AdminRequest {
  const d = domainOf(r);
  const refuse = (what: string) => new MailError('not-allowed', `${login} administers ${domains.join(', ') || 'no domain'}, not ${what}; ask the system administrator`);
  if (d === undefined && (r.op === 'user-list' || r.op === 'alias-list')) return r;
  if (d === undefined) throw refuse(`the whole system (mailtk ${r.op.replace('-', ' ')} is root's)`);
  if (!domains.includes(d)) throw refuse(d || 'that address');
  return r;
}

/** The listing's rows, narrowed to these domains (a domain administrator's listing without a domain). */
function within<T extends { domain?: string; address?: string }>(rows: Iterable<T>, domains: string[] | undefined): Iterable<T> {
  if (!domains) return rows;
  return Array.from(rows).filter((r) => domains.includes((r.domain ?? r.address!.slice(r.address!.lastIndexOf('@') + 1)).toLowerCase()));
}

/** Do it; `domains` limits listings for a domain administrator (the request itself was scoped before). */
export async function performRequest(config: Config, r: AdminRequest, domains?: string[]): Promise<AdminAnswer> {
  switch (r.op) {
    case 'user-add': {
      const { addUser } = await import('./users.ts');
      if ((await addUser(config, r.user, r.password)) === 'exists') throw new MailError('usage', `${r.user} exists already (mailtk user passwd to change the password)`);
      return { text: `user ${r.user.toLowerCase()} added` };
    }
    case 'user-del': {
      const { deleteUser } = await import('./users.ts');
      if ((await deleteUser(config, r.user)) === 'absent') throw new MailError('user-unknown', `${r.user}: no such virtual user`);
      return { text: `user ${r.user.toLowerCase()} deleted` };
    }
    case 'user-passwd': {
      const { changePassword } = await import('./users.ts');
      await changePassword(config, r.user, r.password);
      return { text: `password of ${r.user.toLowerCase()} changed` };
    }
    case 'user-list': {
      const { userRows } = await import('./users.ts');
      return { rows: within(userRows(config, r.domain), domains) };
    }
    case 'alias-add': {
      const { addAlias } = await import('./domains.ts');
      return { text: `alias ${r.address.toLowerCase()} ${await addAlias(config, r.address, r.targets)}` };
    }
    case 'alias-del': {
      const { deleteAlias } = await import('./domains.ts');
      if ((await deleteAlias(config, r.address)) === 'absent') throw new MailError('user-unknown', `${r.address}: no such alias`);
      return { text: `alias ${r.address.toLowerCase()} deleted` };
    }
    case 'alias-list': {
      const { listAliases } = await import('./domains.ts');
      return { rows: within(listAliases(config, r.domain), domains) };
    }
    case 'quota-set': {
      const { setQuota } = await import('./quota.ts');
      await setQuota(config, r.user, r.size, r.messages);
      return { text: `quota of ${r.user.toLowerCase()}: ${r.size}${r.messages ? `, ${r.messages} messages` : ''}` };
    }
    case 'quota-show': {
      const { showQuota } = await import('./quota.ts');
      return { row: showQuota(config, r.user) };
    }
    case 'domain-add': {
      const { addDomain } = await import('./domains.ts');
      return { text: (await addDomain(config, r.domain)) === 'added' ? `domain ${r.domain} added` : `domain ${r.domain} exists already` };
    }
    case 'domain-del': {
      const { deleteDomain } = await import('./domains.ts');
      if ((await deleteDomain(config, r.domain)) === 'absent') throw new MailError('user-unknown', `${r.domain}: no such virtual domain`);
      return { text: `domain ${r.domain} deleted` };
    }
    case 'domain-list': {
      const { listDomains } = await import('./domains.ts');
      return { rows: listDomains(config) };
    }
    case 'admin-add': {
      const { addAdmin } = await import('./admins.ts');
      const done = await addAdmin(config, r.user, r.domain);
      return { text: done === 'added' ? `${r.user.toLowerCase()} administers ${r.domain.toLowerCase()}` : `${r.user.toLowerCase()} administers ${r.domain.toLowerCase()} already` };
    }
    case 'admin-del': {
      const { deleteAdmin } = await import('./admins.ts');
      if ((await deleteAdmin(config, r.user, r.domain)) === 'absent') throw new MailError('user-unknown', `${r.user}: not an administrator${r.domain ? ` of ${r.domain}` : ''}`);
      return { text: `${r.user.toLowerCase()} no longer administers ${r.domain?.toLowerCase() ?? 'any domain'}` };
    }
    case 'admin-list': {
      const { listAdmins } = await import('./admins.ts');
      return { rows: listAdmins(config, r.domain) };
    }
  }
}

/** How the log names a request: its op and target, never a password. */
export function describeRequest(r: AdminRequest): string {
  const target = 'user' in r ? r.user : 'address' in r ? r.address : 'domain' in r ? (r.domain ?? '') : '';
  return `${r.op.replace('-', ' ')}${target ? ` ${target}` : ''}`;
}
