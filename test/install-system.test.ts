// The system install (npm run install-system) into a scratch root: the
// commands point at mailtk, the spool and queue have sendmail's modes, and a
// systemd unit runs `sendmail -bD -q20m`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { IS_ROOT, ROOT } from './helpers.ts';

const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-install-'));
after(() => fs.rmSync(prefix, { recursive: true, force: true }));

test('install-system makes /usr/sbin/sendmail, mailq and newaliases mailtk\'s', { skip: !IS_ROOT && 'needs root' }, () => {
  const r = spawnSync('bash', [path.join(ROOT, 'scripts/install-system.sh')], { env: { ...process.env, PREFIX: prefix }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(fs.readlinkSync(path.join(prefix, 'usr/sbin/sendmail')), path.join(ROOT, 'bin/sendmail'));
  assert.equal(fs.readlinkSync(path.join(prefix, 'usr/bin/mailq')), path.join(ROOT, 'bin/mailq'));
  assert.equal(fs.readlinkSync(path.join(prefix, 'usr/bin/newaliases')), path.join(ROOT, 'bin/newaliases'));
  assert.equal(fs.statSync(path.join(prefix, 'var/spool/mqueue')).mode & 0o7777, 0o711);
  assert.equal(fs.statSync(path.join(prefix, 'var/spool/mqueue/maildrop')).mode & 0o7777, 0o1733);
  assert.match(fs.readFileSync(path.join(prefix, 'etc/systemd/system/mailtk.service'), 'utf8'), /ExecStart=.* -bD -q20m/);
  assert.ok(fs.existsSync(path.join(prefix, 'usr/local/share/man/man8/sendmail.8')));
  // Idempotent: a second run changes nothing and succeeds.
  assert.equal(spawnSync('bash', [path.join(ROOT, 'scripts/install-system.sh')], { env: { ...process.env, PREFIX: prefix } }).status, 0);
});
