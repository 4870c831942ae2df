// readListFile's rules on real files owned by other uids (54321 and 54322,
// which need no account), as root; and once in a process running as such a
// uid, as the out-of-process reader will call it, to show that the kernel's
// refusal (EACCES) gives the same answer without the file's content.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { User } from '../config/users.ts';
import { checkoutClosedToOthers } from '../mailbox/fixtures/env.ts';
import { type ListFile, readListFile } from './index.ts';

const IS_ROOT = process.geteuid?.() === 0;
const skip = IS_ROOT ? false : 'needs root to give files to other uids';

const U: User = { name: 'u', uid: 54321, gid: 54321, gecos: '', home: '/nonexistent', shell: '/bin/sh' };
const V: User = { name: 'v', uid: 54322, gid: 54322, gecos: '', home: '/nonexistent', shell: '/bin/sh' };
const SECRET = 'secret-line-7f3a@example.org';

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-listfile-'));
  fs.chmodSync(dir, 0o755);
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A file under dir with that text, owner and mode. */
function file(name: string, text: string, uid: number, mode = 0o644): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, text);
  fs.chownSync(p, uid, uid);
  fs.chmodSync(p, mode);
  return p;
}

function why(l: ListFile): string {
  assert.ok(l.kind === 'ignored', `refused, not ${JSON.stringify(l)}`);
  return l.why;
}

test('.forward: owned by its user or root, one link, not group or world writable', { skip }, () => {
  const own = file('fwd-own', 'bob, "|/usr/bin/vacation u"\n', U.uid);
  assert.deepEqual(readListFile(own, 'forward', U), { kind: 'members', members: ['bob', '|/usr/bin/vacation u'], problems: [], ownerUid: U.uid, unsafe: false });
  assert.equal(readListFile(file('fwd-root', 'bob\n', 0), 'forward', U).kind, 'members');
  assert.equal(why(readListFile(file('fwd-v', 'bob\n', V.uid), 'forward', U)), `${dir}/fwd-v: owned by uid ${V.uid}, not by its user u or root`);
  assert.equal(why(readListFile(file('fwd-g', 'bob\n', U.uid, 0o664), 'forward', U)), `${dir}/fwd-g: group or world writable`);
  assert.equal(why(readListFile(file('fwd-o', 'bob\n', U.uid, 0o646), 'forward', U)), `${dir}/fwd-o: group or world writable`);
  fs.linkSync(own, path.join(dir, 'fwd-link'));
  assert.equal(why(readListFile(own, 'forward', U)), `${own}: has 2 links`);
  fs.rmSync(path.join(dir, 'fwd-link'));
  assert.equal(readListFile(own, 'forward', U).kind, 'members');
  assert.deepEqual(readListFile(path.join(dir, 'none'), 'forward', U), { kind: 'absent' });
});

test('not a regular file, or a symbolic link: refused, and a FIFO is never waited on', { skip }, () => {
  const sub = path.join(dir, 'a-dir');
  fs.mkdirSync(sub);
  assert.equal(why(readListFile(sub, 'forward', U)), `${sub}: not a regular file`);
  const fifo = path.join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
  assert.equal(why(readListFile(fifo, 'include', undefined)), `${fifo}: not a regular file`);
  const link = path.join(dir, 'sym');
  fs.symlinkSync(file('sym-target', 'bob\n', U.uid), link);
  assert.equal(why(readListFile(link, 'forward', U)), `${link}: a symbolic link`);
});

test(':include: read for a user: owned by that user or root, not group or world writable', { skip }, () => {
  assert.equal(readListFile(file('inc-u', '"|/bin/prog"\n', U.uid), 'include', U).kind, 'members');
  assert.equal(readListFile(file('inc-root', '"|/bin/prog"\n', 0), 'include', U).kind, 'members');
  assert.equal(why(readListFile(file('inc-v', '"|/bin/prog"\n', V.uid), 'include', U)), `${dir}/inc-v: owned by uid ${V.uid}, not by u (whose file named it) or root`);
  assert.equal(why(readListFile(file('inc-w', 'bob\n', U.uid, 0o666), 'include', U)), `${dir}/inc-w: group or world writable`);
  const missing = readListFile(path.join(dir, 'nope'), 'include', U);
  assert.deepEqual(missing, { kind: 'failed', why: `cannot open :include: file ${dir}/nope: no such file`, temporary: true });
});

test(':include: of the system alias file: any owner; group or world writable is unsafe', { skip }, () => {
  const l = readListFile(file('sys-v', 'bob\n', V.uid, 0o666), 'include', undefined);
  assert.deepEqual(l, { kind: 'members', members: ['bob'], problems: [], ownerUid: V.uid, unsafe: true });
  const hard = path.join(dir, 'sys-v-2');
  fs.linkSync(path.join(dir, 'sys-v'), hard);
  assert.equal(readListFile(hard, 'include', undefined).kind, 'members');
});

test('root reading for a user reads nothing that user could not read, and says so without the content', { skip }, () => {
  const rootOnly = file('root-only', `${SECRET}\n`, 0, 0o600);
  const r = readListFile(rootOnly, 'include', U);
  assert.equal(why(r), `${rootOnly}: permission denied to u`);
  assert.equal(readListFile(rootOnly, 'include', undefined).kind, 'members'); // the system's own lists: as this process
  const closed = path.join(dir, 'closed');
  fs.mkdirSync(closed, { mode: 0o700 });
  const inside = path.join(closed, 'list');
  fs.writeFileSync(inside, `${SECRET}\n`, { mode: 0o644 });
  assert.equal(why(readListFile(inside, 'include', U)), `${inside}: permission denied to u (directory ${closed})`);
  assert.equal(why(readListFile(inside, 'forward', U)), `${inside}: permission denied to u (directory ${closed})`);
  // Readable through the user's own bits, their primary group's, or others'.
  assert.equal(readListFile(file('mine', 'bob\n', U.uid, 0o400), 'include', U).kind, 'members');
  const groupOnly = file('group-only', 'bob\n', 0, 0o640);
  fs.chownSync(groupOnly, 0, U.gid);
  assert.equal(readListFile(groupOnly, 'include', U).kind, 'members');
  assert.ok(!JSON.stringify(r).includes(SECRET));
});

test('a process running as the user gets the same refusal from the kernel (the out-of-process reader)', { skip: skip || checkoutClosedToOthers() }, () => {
  const rootOnly = file('root-only-2', `${SECRET}\n`, 0, 0o600);
  const script = file('probe.ts', [
    `import { readListFile } from ${JSON.stringify(path.resolve(import.meta.dirname, 'index.ts'))};`,
    `const u = ${JSON.stringify(U)};`,
    `process.stdout.write(JSON.stringify([readListFile(${JSON.stringify(rootOnly)}, 'include', u), readListFile(${JSON.stringify(rootOnly)}, 'forward', u)]));`,
  ].join('\n'), 0);
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], { uid: U.uid, gid: U.gid, cwd: path.resolve(import.meta.dirname, '../..'), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), [
    { kind: 'ignored', why: `${rootOnly}: permission denied` },
    { kind: 'ignored', why: `${rootOnly}: permission denied` },
  ]);
  assert.ok(!r.stdout.includes(SECRET));
});
