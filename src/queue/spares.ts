// Spare files: a finished entry's control file is not unlinked but renamed
// into queue_dir/spare, and the daemon renames a spare to the next entry's
// tf<ID> and overwrites it. On ext4 without a journal, allocating an inode
// scans the inodes deleted in the last minutes and is the costliest step of
// accepting a message (more than its fsync when mail flows fast); a rename
// allocates nothing. Spares hold only a finished entry's envelope, in a
// directory only the queue's owner can read, and are truncated when reused.
// The pool is capped; beyond the cap, finished files are unlinked as usual.

import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config/index.ts';

const CAP = 2048;
/** How often a process counts the pool again (others add and take too). */
const RECOUNT_MS = 1000;

interface Pool {
  dir: string;
  names: string[];
  counted: number;
  size: number;
  seq: number;
}

const pools = new Map<string, Pool>();

function poolOf(config: Config): Pool {
  let p = pools.get(config.queueDir);
  if (!p) {
    p = { dir: path.join(config.queueDir, 'spare'), names: [], counted: 0, size: 0, seq: 0 };
    pools.set(config.queueDir, p);
  }
  return p;
}

function recount(p: Pool): void {
  p.counted = Date.now();
  try {
    p.names = fs.readdirSync(p.dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    p.names = [];
  }
  p.size = p.names.length;
}

/** Rename a spare file to `target`; false when the pool is empty. */
export function takeSpare(config: Config, target: string): boolean {
  const p = poolOf(config);
  for (;;) {
    if (p.names.length === 0) {
      if (Date.now() - p.counted < RECOUNT_MS) return false;
      recount(p);
      if (p.names.length === 0) return false;
    }
    const name = p.names.pop()!;
    try {
      fs.renameSync(path.join(p.dir, name), target);
      p.size--;
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // taken by another process: try the next
    }
  }
}

/** Keep a finished file as a spare; false when the pool is full (unlink it then). */
export function keepSpare(config: Config, file: string): boolean {
  const p = poolOf(config);
  if (Date.now() - p.counted >= RECOUNT_MS) recount(p);
  if (p.size >= CAP) return false;
  const name = `s${process.pid}-${Date.now()}-${p.seq++}`;
  try {
    fs.renameSync(file, path.join(p.dir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    fs.mkdirSync(p.dir, { mode: 0o700, recursive: true });
    fs.renameSync(file, path.join(p.dir, name));
  }
  p.size++;
  p.names.push(name);
  return true;
}
