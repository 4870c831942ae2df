// Bytes of a message copied out of an mbox under its lock, to be sent after
// the lock is gone: POP3 RETR/TOP and IMAP FETCH hold the dotlock only while
// they read the file, never while a client drains its socket (issue 11), so a
// slow client cannot make deliveries to the mailbox wait and defer. An open
// descriptor is no snapshot: rewrite.ts rewrites in place, and so may mail(1)
// or mutt. Up to MEMORY_MAX bytes stay in memory; the rest goes to a file
// nobody can open by name: O_TMPFILE in os.tmpdir() (Dovecot's mail_temp_dir
// is /tmp too), else a 0600 O_CREAT|O_EXCL|O_NOFOLLOW file removed at once,
// as mkstemp users do. So a 50 MB message costs a few 256 KB buffers of
// memory. Known limit: where the temporary directory is a tmpfs, the copy
// sits in (swappable) memory there until the client has it all.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Copies up to this size stay in memory. */
const MEMORY_MAX = 256 << 10;
/** Read back from the file, and read into scratch, in pieces of this size. */
const READ_CHUNK = 256 << 10;
const { O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY } = fs.constants;
/** Linux's __O_TMPFILE (open(2)); Node does not export it. */
const O_TMPFILE = 0o20000000 | O_DIRECTORY;

export class CopiedBytes {
  private memory: Buffer[] = [];
  private file: fs.promises.FileHandle | undefined;
  private closed = false;
  private spare: Buffer | undefined;
  length = 0;

  /** @param tmpdir where a copy too large for memory goes (default os.tmpdir()) */
  constructor(private readonly tmpdir = os.tmpdir()) {}

  /**
   * A buffer to read the bytes into before add()ing them, the same one each
   * time: copying 50 MB then leaves no 50 MB of garbage for the collector.
   */
  get scratch(): Buffer {
    this.spare ??= Buffer.allocUnsafe(READ_CHUNK);
    return this.spare;
  }

  /** Append bytes. They are copied or written before this returns, so `b` may be used again. */
  async add(b: Buffer): Promise<void> {
    if (b.length === 0) return;
    if (this.closed) throw new Error('CopiedBytes: add after close');
    this.length += b.length;
    if (!this.file && this.length <= MEMORY_MAX) {
      this.memory.push(Buffer.from(b));
      return;
    }
    if (!this.file) {
      this.file = await openAnonymous(this.tmpdir);
      const held = this.memory;
      this.memory = [];
      for (const m of held) await writeAll(this.file, m);
    }
    await writeAll(this.file, b);
  }

  /** The bytes, in order, each chunk a buffer of its own (a socket may keep it queued). */
  async *chunks(): AsyncGenerator<Buffer> {
    if (!this.file) {
      yield* this.memory;
      return;
    }
    for (let pos = 0; pos < this.length; ) {
      const want = Math.min(READ_CHUNK, this.length - pos);
      const buf = Buffer.allocUnsafe(want);
      let got = 0;
      while (got < want) {
        const { bytesRead } = await this.file.read(buf, got, want - got, pos + got);
        if (bytesRead === 0) throw new Error('temporary copy shrank while being read');
        got += bytesRead;
      }
      yield buf;
      pos += want;
    }
  }

  /** Free the memory and the file. Safe to call twice. */
  async close(): Promise<void> {
    this.closed = true;
    this.memory = [];
    this.spare = undefined;
    const f = this.file;
    this.file = undefined;
    await f?.close();
  }
}

/** A read-write file in `dir` that has no name (or lost it at once). */
async function openAnonymous(dir: string): Promise<fs.promises.FileHandle> {
  if (process.platform === 'linux') {
    try {
      return await fs.promises.open(dir, O_TMPFILE | O_RDWR, 0o600);
    } catch (e) {
      // Not supported by this kernel or file system: make a name, then remove it.
      if (!['EOPNOTSUPP', 'EISDIR', 'EINVAL', 'ENOTSUP'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
    }
  }
  const name = path.join(dir, `.mailtk-copy.${process.pid}.${crypto.randomBytes(8).toString('hex')}`);
  const fh = await fs.promises.open(name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
  await fs.promises.unlink(name).catch(async (e) => {
    await fh.close();
    throw e;
  });
  return fh;
}

async function writeAll(fh: fs.promises.FileHandle, b: Buffer): Promise<void> {
  for (let done = 0; done < b.length; ) {
    const { bytesWritten } = await fh.write(b, done, b.length - done, null);
    if (bytesWritten === 0) throw Object.assign(new Error('write returned 0 bytes'), { code: 'EIO' });
    done += bytesWritten;
  }
}
