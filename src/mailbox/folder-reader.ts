// Reads of a folder's stored bytes through the mbox opened under the lock:
// a message's header block, or a range of it in chunks (into one reused
// buffer when the caller gives one, so a copy loop allocates nothing per
// chunk). Valid only while the lock is held (Folder.read()).

import type fs from 'node:fs';
import { MailError } from '../message/status.ts';
import type { MessageRecord } from './folder-file.ts';

/** Reads of stored bytes, valid inside Folder.read() only. */
export interface FolderReader {
  /** The stored header block (blank line included). */
  header(r: MessageRecord): Promise<Buffer>;
  /** The message's From_ line, its line end included. */
  fromLine(r: MessageRecord): Promise<Buffer>;
  /**
   * Stored bytes [from, to) counted from the first header byte, in chunks.
   * With `into`, each chunk is a view of that buffer, good until the next is
   * asked for: a copy loop then allocates nothing per chunk.
   */
  chunks(r: MessageRecord, from: number, to: number, into?: Buffer): AsyncGenerator<Buffer>;
}

const CHUNK = 256 << 10;

/** Up to `len` bytes at `pos`, read into `buf` (which must hold them) or a new buffer. */
export async function readAt(fh: fs.promises.FileHandle, pos: number, len: number, buf: Buffer = Buffer.allocUnsafe(len)): Promise<Buffer> {
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

export function makeReader(fh: fs.promises.FileHandle | undefined, file: string): FolderReader {
  const need = (): fs.promises.FileHandle => {
    if (!fh) throw new MailError('mailbox-io', 'mailbox vanished', { file });
    return fh;
  };
  return {
    header: (r) => readAt(need(), r.offset + r.fromLen, r.headerLength),
    fromLine: (r) => readAt(need(), r.offset, r.fromLen),
    async *chunks(r, from, to, into) {
      const base = r.offset + r.fromLen;
      const end = Math.min(to, r.length - r.fromLen);
      for (let pos = from; pos < end; ) {
        const piece = await readAt(need(), base + pos, Math.min(into?.length ?? CHUNK, end - pos), into);
        if (piece.length === 0) throw new MailError('mailbox-io', 'mailbox shrank while being read', { file });
        yield piece;
        pos += piece.length;
      }
    },
  };
}
