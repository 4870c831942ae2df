// Reading mboxes written by Postfix local(8), mail.local, s-nail, mutt and
// mailtk. scanMbox() streams the file through one reused 64 KiB buffer (memory
// stays bounded whatever the message sizes) and indexes each message's place.
// How we do it, as mbox readers do: a line beginning "From " is a separator
// when it is the file's first line or follows a blank line; Content-Length:
// is ignored. A body line "From " after a blank line that a writer failed to
// quote therefore starts a new message; every writer above quotes it. Message
// text is read as mboxrd (mboxrd.ts): a line matching ^>+From  loses one '>'.

import fs from 'node:fs';
import { MailError } from '../message/status.ts';
import { isQuotedFromLine, unquoteFrom } from './mboxrd.ts';

export { unquoteFrom };

export interface MboxEntry {
  /** Byte offset of the From_ line. */
  offset: number;
  /** Bytes from `offset` to the message's end: the From_ line counts, the separating blank line does not. */
  length: number;
  /** Offset of the first header line, just past the From_ line. */
  dataOffset: number;
  /** Bytes of the header block from `dataOffset`, including the blank line that ends it. */
  headerLength: number;
  /** The From_ line without its newline (first 1000 bytes). */
  fromLine: string;
  /** Lines stored matching ^>+From ; the unquoted message is this many bytes shorter. */
  quoted: number;
}

export interface MboxIndex {
  path: string;
  /** Bytes scanned: the file's size when the scan began. */
  size: number;
  mtimeMs: number;
  messages: MboxEntry[];
}

const CHUNK_SIZE = 64 << 10;
const HEAD_MAX = 1000; // bytes of a line we look at; RFC 5322's line limit
const FROM = Buffer.from('From ');
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

interface Draft {
  offset: number;
  dataOffset: number;
  headerLength: number; // -1 until the blank line after the headers is seen
  fromLine: string;
  quoted: number;
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** Splits a stream of chunks into lines and builds the index; lines are seen through their first bytes only. */
class MboxScanner {
  readonly messages: MboxEntry[] = [];
  private cur: Draft | undefined;
  private prevBlank = false;
  private lineStart = 0; // absolute offset of the line not yet ended
  private readonly carry = Buffer.alloc(HEAD_MAX); // head of a line that spans chunks
  private carryLen = 0;

  constructor(private readonly file: string) {}

  feed(chunk: Buffer, base: number): void {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(0x0a, pos);
      if (nl === -1) return this.keepHead(chunk.subarray(pos));
      // A line wholly inside this chunk is looked at in place; one that began earlier, through the carry.
      const head =
        this.carryLen === 0
          ? chunk.subarray(pos, Math.min(nl + 1, pos + HEAD_MAX))
          : this.joinHead(chunk.subarray(pos, nl + 1));
      this.line(this.lineStart, base + nl + 1, head, true);
      this.lineStart = base + nl + 1;
      this.carryLen = 0;
      pos = nl + 1;
    }
  }

  finish(size: number): MboxEntry[] {
    if (this.lineStart < size) this.line(this.lineStart, size, this.carry.subarray(0, this.carryLen), false);
    // The blank line that ends the file is the last message's separator, not its content.
    if (this.cur) this.close(this.prevBlank && size - 1 >= this.cur.dataOffset ? size - 1 : size);
    return this.messages;
  }

  private keepHead(part: Buffer): void {
    const n = Math.min(part.length, HEAD_MAX - this.carryLen);
    part.copy(this.carry, this.carryLen, 0, n);
    this.carryLen += n;
  }

  private joinHead(rest: Buffer): Buffer {
    this.keepHead(rest);
    return this.carry.subarray(0, this.carryLen);
  }

  private line(start: number, end: number, head: Buffer, terminated: boolean): void {
    const blank = terminated && end - start === 1;
    if ((start === 0 || this.prevBlank) && startsWith(head, FROM)) {
      this.open(start, end, head);
    } else if (!this.cur) {
      throw new MailError('mailbox-io', 'not an mbox file: the first line does not begin with "From "', {
        file: this.file,
      });
    } else {
      if (this.cur.headerLength < 0 && blank) this.cur.headerLength = end - this.cur.dataOffset;
      // A run of '>' longer than HEAD_MAX is not seen: `quoted` is for information only.
      if (head[0] === 0x3e && isQuotedFromLine(head)) this.cur.quoted++;
    }
    this.prevBlank = blank;
  }

  private open(start: number, end: number, head: Buffer): void {
    if (this.cur) this.close(start - 1); // start - 1: the blank line before us separates
    const text = head.subarray(0, Math.min(head.length, end - start)).toString('utf8');
    this.cur = { offset: start, dataOffset: end, headerLength: -1, fromLine: text.replace(/\r?\n$/, ''), quoted: 0 };
  }

  private close(end: number): void {
    const c = this.cur!;
    const content = end - c.dataOffset;
    // A message with no blank line after its headers is all header.
    const headerLength = c.headerLength < 0 || c.headerLength > content ? content : c.headerLength;
    this.messages.push({
      offset: c.offset,
      length: end - c.offset,
      dataOffset: c.dataOffset,
      headerLength,
      fromLine: c.fromLine,
      quoted: c.quoted,
    });
    this.cur = undefined;
  }
}

/** Open for reading, refusing symlinks and anything but a regular file (a reader may run as root). */
async function openForRead(file: string): Promise<{ fh: fs.promises.FileHandle; st: fs.Stats }> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP') throw new MailError('mailbox-unsafe', 'mailbox is a symbolic link', { file });
    throw e; // ENOENT and the like, with the path in the message, for the caller to judge
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw new MailError('mailbox-unsafe', 'mailbox is not a regular file', { file });
  }
  return { fh, st };
}

/**
 * Index every message in an mbox. A missing file is an error (ENOENT) for the
 * caller to read as "no mail". The scan takes no lock: a caller wanting a view
 * no delivery is half-way through holds acquireDotlock(path) around it.
 */
export async function scanMbox(file: string): Promise<MboxIndex> {
  const { fh, st } = await openForRead(file);
  try {
    const scanner = new MboxScanner(file);
    const buf = Buffer.allocUnsafe(CHUNK_SIZE);
    let pos = 0;
    // Stop at the size seen at open: bytes appended later belong to the next scan.
    while (pos < st.size) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, st.size - pos), pos);
      if (bytesRead === 0) break; // cut short under us
      scanner.feed(buf.subarray(0, bytesRead), pos);
      pos += bytesRead;
    }
    return { path: file, size: pos, mtimeMs: st.mtimeMs, messages: scanner.finish(pos) };
  } finally {
    await fh.close();
  }
}

/**
 * The stored bytes of one message: headers and body as written (still
 * mboxrd-quoted; see unquoteFrom), without the From_ line or the separating
 * blank line. Throws if the mbox changed so that the entry no longer fits.
 */
export async function readMessageBytes(file: string, entry: MboxEntry): Promise<Buffer> {
  const { fh } = await openForRead(file);
  try {
    const buf = Buffer.alloc(entry.length);
    const { bytesRead } = await fh.read(buf, 0, entry.length, entry.offset);
    if (bytesRead !== entry.length || !startsWith(buf, FROM)) {
      throw new MailError('mailbox-io', 'mailbox changed since it was scanned; scan it again', { file });
    }
    return buf.subarray(entry.dataOffset - entry.offset);
  } finally {
    await fh.close();
  }
}
