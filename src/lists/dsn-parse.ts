// The failed recipients a DSN names (RFC 3464 2.3): each per-recipient block
// of its message/delivery-status part with "Action: failed" gives its
// Final-Recipient and Original-Recipient addresses. Read loosely, as Mailman's
// bounce detectors do: a report of any shape whose blocks say so counts. The
// blocks are groups of header fields, each read by src/message's header
// tokenizer (so a folded field is one field), one after another.

import { HeaderTokens } from '../message/index.ts';

const DELIVERY_STATUS = /content-type:\s*message\/(global-)?delivery-status/i;
const RECIPIENT = /^[^;]*;\s*<?([^\s>]+)>?$/;

export function failedRecipients(data: Buffer): string[] {
  const start = data.toString('latin1').search(DELIVERY_STATUS);
  if (start < 0) return [];
  const out = new Set<string>();
  for (let pos = start; pos < data.length; ) {
    const t = new HeaderTokens(data, false, pos);
    let failed = false;
    const named: string[] = [];
    while (t.next()) {
      if (t.nameIs('action')) failed ||= /^failed\b/i.test(t.value());
      else if (t.nameIs('final-recipient') || t.nameIs('original-recipient')) {
        const m = RECIPIENT.exec(t.value());
        if (m) named.push(m[1].toLowerCase());
      }
    }
    if (failed) for (const r of named) out.add(r);
    pos = t.headerEnd;
  }
  return [...out];
}
