// The daemon's first start on a machine with nothing configured: an aliases
// file with postmaster is written and compiled when there is none, so mail
// to postmaster@localhost reaches root's mailbox (RFC 5321 4.5.1), and the
// commented mailtk.conf a root start writes sets nothing: every key in it is
// commented out at its default, and read back it changes no value.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { KEYS, loadConfig } from '../src/config/index.ts';
import { DEFAULT_ALIASES, writeFirstConfig } from '../src/daemon/first-start.ts';
import { makeSandbox, splitMbox, startDaemon, waitFor } from './helpers.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-first-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('the commented config lists every key at its default and changes nothing', () => {
  const empty = path.join(tmp, 'empty.conf');
  fs.writeFileSync(empty, '');
  const written = path.join(tmp, 'mailtk.conf');
  const defaults = loadConfig({ file: empty, overrides: {} });
  assert.equal(writeFirstConfig(written, defaults, path.join(tmp, 'no-etc-aliases')), true);
  assert.equal(writeFirstConfig(written, defaults), false, 'an existing file is left alone');
  const text = fs.readFileSync(written, 'utf8');
  for (const key of Object.keys(KEYS)) assert.match(text, new RegExp(`^#${key} =`, 'm'), key);
  assert.doesNotMatch(text, /^[a-z_]+ =/m, 'no key is set');
  assert.equal(fs.statSync(written).mode & 0o777, 0o644);
  assert.deepEqual({ ...loadConfig({ file: written, overrides: {} }), file: '' }, { ...defaults, file: '' });
});

test("Debian's /etc/aliases is named in the config when the default aliases file does not exist", () => {
  const debian = path.join(tmp, 'etc-aliases');
  fs.writeFileSync(debian, 'postmaster: root\n');
  const written = path.join(tmp, 'debian.conf');
  const defaults = loadConfig({ file: path.join(tmp, 'empty.conf'), overrides: { alias_file: path.join(tmp, 'none/aliases') } });
  writeFirstConfig(written, defaults, debian);
  assert.match(fs.readFileSync(written, 'utf8'), new RegExp(`^alias_file = ${debian}$`, 'm'));
});

test('a daemon started with no aliases file writes one with postmaster and delivers postmaster@localhost to root', async () => {
  const sb = makeSandbox({ users: ['alice'] });
  try {
    fs.rmSync(sb.aliases);
    const d = await startDaemon(sb, ['-bD', '-q1h'], ['smtp']);
    try {
      assert.equal(fs.readFileSync(sb.aliases, 'utf8'), DEFAULT_ALIASES);
      assert.match(fs.readFileSync(sb.log, 'utf8'), /wrote .*aliases with postmaster/);
      const r = spawnSync('python3', ['-c', `
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', ${d.ports.smtp})
s.sendmail('someone@example.org', ['postmaster@localhost'], 'Subject: to postmaster\\r\\n\\r\\nhello\\r\\n')
s.quit()`], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      await waitFor(() => splitMbox(sb.readMbox('root')).some((m) => m.includes('Subject: to postmaster')), 20_000, 'mail in root\'s mailbox');
    } finally {
      await d.stop();
    }
  } finally {
    sb.cleanup();
  }
});
