// The failed recipients a DSN names (RFC 3464 2.3): each per-recipient block
// of its message/delivery-status part with "Action: failed" gives its
// Final-Recipient and Original-Recipient addresses. Read loosely, as Mailman's
// bounce detectors do: a report of any shape whose blocks say so counts.

const BLOCKS = /\r?\n[ \t]*\r?\n/;

export function failedRecipients(data: Buffer): string[] {
  const text = data.toString('latin1');
  const start = text.search(/content-type:\s*message\/(global-)?delivery-status/i);
  if (start < 0) return [];
  const out = new Set<string>();
  for (const block of text.slice(start).split(BLOCKS)) {
    if (!/^action:\s*failed\b/im.test(block)) continue;
    for (const m of block.matchAll(/^(?:final|original)-recipient:\s*[^;\r\n]*;\s*<?([^\s>]+)>?\s*$/gim)) out.add(m[1].toLowerCase());
  }
  return [...out];
}
