// Envelope addresses (RFC 5321 paths): splitting, qualifying bare local names
// with the host's name, and the canonical forms used in the queue and logs.
// Header address lists (RFC 5322, for -t) live in headers.ts.
// CONTRACT (owned by the message module): keep these signatures.

export interface Address {
  local: string; // local part as written (quotes removed when not needed)
  domain: string; // lower-cased; '' when the address had none
}

/** Split "user@Domain" into parts; the last '@' outside quotes separates. */
export function splitAddress(addr: string): Address {
  let at = -1;
  let quoted = false;
  for (let i = 0; i < addr.length; i++) {
    const c = addr[i];
    if (c === '\\') i++;
    else if (c === '"') quoted = !quoted;
    else if (c === '@' && !quoted) at = i;
  }
  if (at < 0) return { local: addr, domain: '' };
  return { local: addr.slice(0, at), domain: addr.slice(at + 1).toLowerCase().replace(/\.$/, '') };
}

/** "root" -> "root@host" (cron and PHP send bare names; relays want them qualified). */
export function qualify(addr: string, hostname: string): string {
  if (addr === '') return addr;
  const a = splitAddress(addr);
  return a.domain ? `${a.local}@${a.domain}` : `${a.local}@${hostname}`;
}
