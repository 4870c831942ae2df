// BINARY (RFC 3516): FETCH BINARY[part]<partial>, BINARY.PEEK[...] and
// BINARY.SIZE[part] give a part's content with its Content-Transfer-Encoding
// undone (base64 and quoted-printable decoded; 7bit, 8bit and binary as they
// are), so a client need not decode it; imap-fetch.ts parses the items and
// sends the literal (literal8, ~{n}, when the bytes hold a NUL); the session
// reads APPEND's literal8. An encoding not known here is refused with
// [UNKNOWN-CTE] (4.3). Known limit: the decoded part is made in memory, once
// for BINARY and again for BINARY.SIZE, where BODY[] streams from the mbox.

import { type FolderReader, type MessageRecord, ServedConverter } from '../mailbox/index.ts';
import { headerMap } from './imap-envelope.ts';
import { findPart, type Part } from './imap-mime.ts';
import { decodeQuotedPrintable } from './imap-search.ts';

/** A part whose Content-Transfer-Encoding is none of RFC 2045's: answered NO [UNKNOWN-CTE]. */
export class UnknownCte extends Error {}

const IDENTITY = new Set(['', '7bit', '8bit', 'binary']);

/** The content of part `path` (not empty) of a message, decoded from its transfer encoding. */
export async function decodedPart(reader: FolderReader, root: Part, rec: MessageRecord, path: number[]): Promise<Buffer> {
  const part = findPart(root, path);
  if (!part || part.sBodyStart < 0 || part.sBodyEnd <= part.sBodyStart) return Buffer.alloc(0);
  const cte = (headerMap(part.header).get('content-transfer-encoding') ?? '').trim().toLowerCase();
  if (!IDENTITY.has(cte) && cte !== 'base64' && cte !== 'quoted-printable') throw new UnknownCte(`unknown Content-Transfer-Encoding ${cte.slice(0, 30)}`);
  const conv = new ServedConverter();
  const pieces: Buffer[] = [];
  for await (const chunk of reader.chunks(rec, part.sBodyStart, part.sBodyEnd)) pieces.push(conv.push(chunk));
  pieces.push(conv.end());
  const served = Buffer.concat(pieces);
  if (cte === 'base64') return Buffer.from(served.toString('latin1'), 'base64');
  if (cte === 'quoted-printable') return decodeQuotedPrintable(served);
  return served;
}
