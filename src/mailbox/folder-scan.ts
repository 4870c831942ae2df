// The folder scan's call shape, kept for folder.ts: scanFolder() is the one
// mbox scanner (scan.ts) asked for what POP3 and IMAP index (served sizes
// counted by served.ts's converter, header blocks, the From_ line's date).
// HIDDEN lives in served.ts, beside the code that leaves those fields out.

import type fs from 'node:fs';
import { readerOf, scanRange, type ScannedMessage } from './scan.ts';

export { HIDDEN } from './served.ts';
export type { ScannedMessage } from './scan.ts';

/**
 * Scan an open mbox from `start` (0, or the end of a message as an earlier
 * scan found it) to `end` (the size the caller saw, under the dotlock),
 * handing each message to onMessage as soon as it ends; its header is valid
 * only during that call. Returns the number of messages.
 */
export async function scanFolder(fh: fs.promises.FileHandle, file: string, start: number, end: number, onMessage: (m: ScannedMessage) => void): Promise<number> {
  return (await scanRange(readerOf(fh), file, start, end, { headers: true, served: true }, onMessage)).count;
}
