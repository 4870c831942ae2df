import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { MailError } from '../message/status.ts';
import { KEYS, loadConfig, parseDuration } from './index.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mailtk-config-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function conf(text: string): string {
  const f = path.join(dir, `c${Math.random()}.conf`);
  fs.writeFileSync(f, text);
  return f;
}

test('key = value with comments; relative paths resolve beside the file', () => {
  const c = loadConfig({ file: conf('# c\nhostname = h.test  # trailing\nqueue_dir = q\n\nqueue_warn = 1h30m\n'), env: {} });
  assert.equal(c.hostname, 'h.test');
  assert.equal(c.queueDir, path.join(dir, 'q'));
  assert.equal(c.maildropDir, path.join(dir, 'q', 'maildrop'));
  assert.equal(c.queueWarnMs, 5_400_000);
});

test('unknown keys and bad values name file and line, exit 78', () => {
  const f = conf('hostname = x\nqueue_dri = /tmp\n');
  assert.throws(() => loadConfig({ file: f, env: {} }), (e: unknown) => {
    assert.ok(e instanceof MailError);
    assert.equal(e.exit, 78);
    assert.match(e.message, new RegExp(`${f}:2: unknown key "queue_dri"`));
    return true;
  });
  assert.throws(() => loadConfig({ file: conf('\nqueue_return = soon\n'), env: {} }), /:2: queue_return = soon: not a time interval/);
  assert.throws(() => loadConfig({ file: conf('this is not a setting\n'), env: {} }), /:1: expected "key = value"/);
  assert.throws(() => loadConfig({ file: conf(''), overrides: { nope: '1' }, env: {} }), /-O nope=1: unknown key/);
});

test('MAILTK_CONFIG is used when -C is absent; -O overrides', () => {
  const f = conf('hostname = from-env.test\n');
  const c = loadConfig({ env: { MAILTK_CONFIG: f }, overrides: { queue_return: '2d' } });
  assert.equal(c.hostname, 'from-env.test');
  assert.equal(c.queueReturnMs, 2 * 86_400_000);
});

test('durations', () => {
  assert.equal(parseDuration('20m', 'm'), 1_200_000);
  assert.equal(parseDuration('20', 'm'), 1_200_000);
  assert.equal(parseDuration('45s'), 45_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('x'), undefined);
});

test('every key is documented in man/mailtk.conf.5', () => {
  const man = fs.readFileSync(new URL('../../man/mailtk.conf.5', import.meta.url), 'utf8');
  for (const k of Object.keys(KEYS)) assert.ok(man.includes(`.B ${k}\n`), `${k} missing from mailtk.conf.5`);
});
