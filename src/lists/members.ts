// Membership changes, each under the list's lock: add, remove, and the bounce
// count that disables a member after list_bounce_limit bounces. As Mailman's
// bounce_info_stale_after, a count with no new bounce for
// list_bounce_stale_after starts again from nothing (a member whose mailbox
// was full for a day is not disabled by a bounce a month later); a member
// re-added or re-enabled starts at 0. Unlike Mailman, every bounce counts,
// not one a day. Used alike by the mail path (handle.ts), the runner's
// periodic work (expire.ts) and `mailtk list` (src/admin/lists.ts).

import type { Config } from '../config/index.ts';
import { MailError } from '../message/status.ts';
import { type Member, bounceStaleAfter, readBounces, readMembers, withListLock, writeBounces, writeMembers } from './store.ts';

const ADDRESS = /^[^\s@<>()",;:\\]+@[a-z0-9][a-z0-9.-]*$/i;

/** A member's address as stored: lower case, no angle brackets; undefined when it is no address. */
export function memberAddress(given: string): string | undefined {
  const a = given.trim().replace(/^<(.*)>$/, '$1').toLowerCase();
  return ADDRESS.test(a) ? a : undefined;
}

/** Add (or re-enable) a member; false when it was an enabled member already. */
export async function addMember(config: Config, list: string, given: string): Promise<boolean> {
  return (await addMembers(config, list, [given])) === 1;
}

/** Add (or re-enable) members, under one lock and one write; returns how many changed. */
export async function addMembers(config: Config, list: string, given: string[]): Promise<number> {
  const addresses = given.map((g) => {
    const address = memberAddress(g);
    if (!address) throw new MailError('bad-address', `"${g}" is not an address (user@domain)`);
    if (address === list) throw new MailError('not-allowed', `a list cannot be its own member`);
    return address;
  });
  return withListLock(config, list, () => {
    const members = readMembers(config, list);
    const byAddress = new Map(members.map((m) => [m.address, m]));
    const counts = readBounces(config, list);
    let changed = 0;
    for (const address of addresses) {
      const found = byAddress.get(address);
      if (found && !found.disabled) continue;
      if (found) found.disabled = false;
      else {
        const m = { address, disabled: false };
        members.push(m);
        byAddress.set(address, m);
      }
      counts.delete(address);
      changed++;
    }
    if (changed) {
      writeMembers(config, list, members);
      writeBounces(config, list, counts);
    }
    return changed;
  });
}

/** Remove a member; false when it was none. */
export async function removeMember(config: Config, list: string, given: string): Promise<boolean> {
  const address = memberAddress(given) ?? given.trim().toLowerCase();
  return withListLock(config, list, () => {
    const members = readMembers(config, list);
    const kept = members.filter((m) => m.address !== address);
    if (kept.length === members.length) return false;
    writeMembers(config, list, kept);
    clearBounces(config, list, address);
    return true;
  });
}

function clearBounces(config: Config, list: string, address: string): void {
  const counts = readBounces(config, list);
  if (counts.delete(address)) writeBounces(config, list, counts);
}

export function isMember(config: Config, list: string, address: string): Member | undefined {
  const a = address.toLowerCase();
  return readMembers(config, list).find((m) => m.address === a);
}

/**
 * Count one bounce at `now` for each of these addresses that is an enabled
 * member (a stale count starts again); returns the members that reached the
 * limit now and were disabled.
 */
export async function countBounces(config: Config, list: string, addresses: string[], now: number): Promise<Array<{ address: string; count: number }>> {
  const stale = bounceStaleAfter(config);
  return withListLock(config, list, () => {
    const members = readMembers(config, list);
    const counts = readBounces(config, list, now);
    const disabled: Array<{ address: string; count: number }> = [];
    for (const address of new Set(addresses.map((a) => a.toLowerCase()))) {
      const m = members.find((x) => x.address === address);
      if (!m || m.disabled) continue;
      const before = counts.get(address);
      const n = (before && now - before.last <= stale ? before.count : 0) + 1;
      counts.set(address, { count: n, last: now });
      if (n >= config.listBounceLimit) {
        m.disabled = true;
        disabled.push({ address, count: n });
      }
    }
    writeBounces(config, list, counts);
    if (disabled.length) writeMembers(config, list, members);
    return disabled;
  });
}

/** Forget the bounce counts of enabled members that have gone stale; returns them. */
export async function dropStaleBounces(config: Config, list: string, now: number): Promise<string[]> {
  const stale = bounceStaleAfter(config);
  // Read first without the lock: most runs find nothing to change.
  if (![...readBounces(config, list, now).values()].some((b) => now - b.last > stale)) return [];
  return withListLock(config, list, () => {
    const disabled = new Set(readMembers(config, list).filter((m) => m.disabled).map((m) => m.address));
    const counts = readBounces(config, list, now);
    const gone = [...counts].filter(([a, b]) => !disabled.has(a) && now - b.last > stale).map(([a]) => a);
    if (gone.length === 0) return gone;
    for (const a of gone) counts.delete(a);
    writeBounces(config, list, counts);
    return gone;
  });
}
