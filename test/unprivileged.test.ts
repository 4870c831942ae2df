// The quick start's layout: an ordinary user with no configuration file at
// all gets a private installation under ./mailtk-data and can send, deliver
// and list the queue without root. Runs as `nobody` in a scratch directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { binFor, IS_ROOT } from './helpers.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-unpriv-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const nobody = spawnSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).stdout.split(':');
const skip = !IS_ROOT ? 'needs root to become nobody' : fs.existsSync('/etc/mail/mailtk.conf') ? 'a system config exists' : nobody.length < 7 ? 'no nobody user' : false;

function asNobody(cmd: string, args: string[], input = '') {
  const env = { PATH: process.env.PATH, HOME: dir, LOGNAME: 'nobody', NO_COLOR: '1' };
  return spawnSync(path.join(binFor(Number(nobody[2])), cmd), args, { cwd: dir, env, input, encoding: 'utf8', uid: Number(nobody[2]), gid: Number(nobody[3]) });
}

test('sendmail, mailq and mail work unprivileged under ./mailtk-data', { skip }, () => {
  fs.chownSync(dir, Number(nobody[2]), Number(nobody[3]));
  // A queue run (cron's sendmail -q) before any mail: there is no queue yet, and the one who
  // would create it runs it, not the daemon (no daemon runs here).
  const q0 = asNobody('sendmail', ['-q']);
  assert.equal(q0.status, 0, q0.stderr);
  const r = asNobody('sendmail', ['-odi', '-i', 'nobody'], 'Subject: unprivileged\n\nhello\n');
  assert.equal(r.status, 0, r.stderr);
  const mbox = fs.readFileSync(path.join(dir, 'mailtk-data/spool/mail/nobody'), 'utf8');
  assert.match(mbox, /\nSubject: unprivileged\n\nhello\n/);
  const q = asNobody('mailq', []);
  assert.equal(q.stdout, `${path.join(dir, 'mailtk-data/spool/mqueue')} is empty\n\t\tTotal requests: 0\n`);
  const h = asNobody('mail', ['-H']);
  assert.equal(h.status, 0, h.stderr);
  assert.match(h.stdout, /unprivileged/);
});
