// giveQueueTo as root: the queue becomes mail_owner's, but nothing a user
// made (the maildrop's entries, what pickup claimed or quarantined) and no
// file with a second link (which could be anyone's) changes owner.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { giveQueueTo, mailOwnerAccount } from './privs.ts';

test('the first start as root gives the queue to mail_owner and leaves users\' files alone', { skip: process.geteuid?.() !== 0 && 'needs root' }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-privs-'));
  fs.chmodSync(dir, 0o755);
  try {
    const conf = path.join(dir, 'mailtk.conf');
    fs.writeFileSync(conf, `queue_dir = ${dir}/q\nlog_file = ${dir}/log\nmail_spool_dir = ${dir}/mail\n`);
    const config = loadConfig({ file: conf });
    const q = config.queueDir;
    for (const d of ['maildrop', 'corrupt/evil', 'pickup', 'spare']) fs.mkdirSync(path.join(q, d), { recursive: true });
    const canary = path.join(dir, 'canary');
    fs.writeFileSync(canary, 'root only\n', { mode: 0o600 });
    fs.linkSync(canary, path.join(q, 'qfLINKED'));
    const planted = [path.join(q, 'corrupt/evil/x'), path.join(q, 'maildrop/y'), path.join(q, 'pickup/z')];
    for (const f of planted) {
      fs.writeFileSync(f, 'dropped\n');
      fs.chownSync(f, 54321, 54321);
    }
    fs.writeFileSync(path.join(q, 'spare/old'), 'x');
    const owner = mailOwnerAccount(config);
    giveQueueTo(config, owner);
    assert.equal(fs.statSync(q).uid, owner.uid);
    assert.equal(fs.statSync(path.join(q, 'spare/old')).uid, owner.uid, 'mailtk\'s own files are given');
    for (const f of planted) assert.equal(fs.statSync(f).uid, 54321, `${f} keeps its owner`);
    assert.equal(fs.statSync(canary).uid, 0, 'a hard-linked file keeps its owner');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
