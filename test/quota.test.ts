// Virtual domains and quotas, in-process: the tables' parsing, the routing of
// a virtual domain's addresses (virtusertable entry, then user, then
// catch-all), the mbox writer's quota check (bytes and messages, 4.2.2 or
// 5.2.2, nothing written when over), the count of messages, and when a
// warning is due (a crossing only).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { expandRecipient, inProcessLists, openAliases } from '../src/aliases/index.ts';
import { CdbFile } from '../src/aliases/cdb.ts';
import { writeCdbTable } from '../src/aliases/compile.ts';
import { virtualAlias } from '../src/aliases/virtual-table.ts';
import { type Config, loadConfig, localDomains } from '../src/config/index.ts';
import { appendToMbox, mailboxUsage, mboxPath } from '../src/mailbox/index.ts';
import { MailError } from '../src/message/status.ts';
import { crossed } from '../src/virtual/quota.ts';
import { checkVirtualAliases, parseQuota, parseTarget, quotaOf, virtualUser } from '../src/virtual/tables.ts';
import { addAlias, addDomain, deleteDomain, listAliases } from '../src/admin/domains.ts';
import { setQuota } from '../src/admin/quota.ts';
import { type Sandbox, makeSandbox, run } from './helpers.ts';

let sb: Sandbox;
let config: Config;

before(() => {
  sb = makeSandbox({ extraConf: 'virtual_domains_file = vd\nvirtual_users_file = vu\nvirtual_alias_file = va\nquota_file = vq' });
  const etc = `${sb.dir}/etc`;
  fs.writeFileSync(`${etc}/vd`, '# domains\na.test\nB.test\n');
  fs.writeFileSync(`${etc}/vu`, 'bob@a.test\nbob@b.test\ncatch@a.test\n');
  fs.writeFileSync(`${etc}/va`, '@a.test catch@a.test\ngone@a.test error:5.1.1 Left us\nsales@a.test bob@a.test, bob@b.test, alice\nself@a.test self@a.test\n');
  fs.writeFileSync(`${etc}/vq`, '@a.test 1M\nbob@a.test 2k 3\n');
  config = loadConfig({ file: sb.conf });
});

after(() => sb.cleanup());

async function route(address: string): Promise<string[]> {
  const aliases = openAliases(config);
  try {
    const dests = await expandRecipient({ config, aliases, localDomains: localDomains(config), lists: inProcessLists }, address);
    return dests.map((d) => (d.kind === 'error' ? `error:${d.status.status} ${d.status.text}` : d.key)).sort();
  } finally {
    aliases.close();
  }
}

describe('the tables', () => {
  test('targets and quotas parse; bad ones name the file and line', () => {
    assert.deepEqual(parseTarget('error:5.1.1 Gone', 'f', 1), { kind: 'error', status: '5.1.1', text: 'Gone' });
    assert.deepEqual(parseTarget('error:4.2.1', 'f', 1), { kind: 'error', status: '4.2.1', text: 'Try again later' });
    assert.deepEqual(parseTarget('a, b@c.test', 'f', 1), { kind: 'members', members: ['a', 'b@c.test'] });
    assert.throws(() => parseTarget('error:nope', 'f', 7), /f:7/);
    assert.deepEqual(parseQuota(['10M', '5']), { bytes: 10 * 1024 * 1024, messages: 5 });
    assert.throws(() => parseQuota(['lots']), MailError);
  });

  test('a user of one domain is not one of another; the quota is the user own, else the domain default', () => {
    assert.equal(virtualUser(config, 'BOB@A.test')?.name, 'bob@a.test');
    assert.equal(virtualUser(config, 'catch@b.test'), undefined);
    assert.equal(virtualUser(config, 'bob@c.test'), undefined);
    assert.equal(mboxPath(config, 'bob@a.test'), `${sb.spool}/virtual/a.test/bob`);
    assert.deepEqual(quotaOf(config, 'bob@a.test'), { bytes: 2048, messages: 3, from: 'bob@a.test' });
    assert.deepEqual(quotaOf(config, 'catch@a.test'), { bytes: 1024 * 1024, messages: 0, from: '@a.test' });
    assert.equal(quotaOf(config, 'bob@b.test'), undefined);
  });
});

test('newaliases checks the alias table: each error names the file and line', () => {
  const file = `${sb.dir}/etc/va`;
  const good = fs.readFileSync(file, 'utf8');
  try {
    fs.writeFileSync(file, good + 'x@c.test bob@a.test\nbad@a.test error:oops\n');
    const v = checkVirtualAliases(config);
    assert.equal(v.count, 6);
    assert.deepEqual(v.errors.map((e) => /:(\d+):/.exec(e)?.[1]), ['5', '6']);
    const r = run(sb, 'newaliases', []);
    assert.equal(r.status, 78, r.stderr);
    assert.match(r.stderr, /va:5: c\.test is not in/);
  } finally {
    fs.writeFileSync(file, good);
  }
  const r = run(sb, 'newaliases', []);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /4 virtual aliases/);
});

test('newaliases compiles the alias table to FILE.cdb; a lookup reads it while it matches the text, the text once edited by hand', async () => {
  const file = `${sb.dir}/etc/va`;
  const db = CdbFile.open(`${file}.cdb`);
  let meta: object;
  try {
    assert.equal(db.get(Buffer.from('gone@a.test'))?.toString(), 'error:5.1.1 Left us');
    assert.equal(db.get(Buffer.from('@a.test'))?.toString(), 'catch@a.test');
    meta = JSON.parse(db.get(Buffer.from('@'))!.toString());
    assert.equal((meta as { format: string }).format, 'mailtk-virtusertable/1');
  } finally {
    db.close();
  }
  assert.deepEqual(virtualAlias(config, 'GONE@a.test'), { kind: 'error', status: '5.1.1', text: 'Left us' });
  // The compiled table is what a lookup reads: a database made for this text but saying otherwise is believed.
  await writeCdbTable(`${file}.cdb`, () => ({ records: [['gone@a.test', 'error:5.1.1 From the database']], meta, result: undefined }));
  assert.deepEqual(virtualAlias(config, 'gone@a.test'), { kind: 'error', status: '5.1.1', text: 'From the database' });
  const good = fs.readFileSync(file, 'utf8');
  try {
    fs.writeFileSync(file, good.replace('Left us', 'Moved away'));
    assert.deepEqual(virtualAlias(config, 'gone@a.test'), { kind: 'error', status: '5.1.1', text: 'Moved away' }, 'a hand edit counts at once');
    assert.equal(run(sb, 'newaliases', []).status, 0);
    const again = CdbFile.open(`${file}.cdb`);
    assert.equal(again.get(Buffer.from('gone@a.test'))?.toString(), 'error:5.1.1 Moved away');
    again.close();
    assert.deepEqual(virtualAlias(config, 'gone@a.test'), { kind: 'error', status: '5.1.1', text: 'Moved away' });
  } finally {
    fs.writeFileSync(file, good);
  }
  assert.equal(run(sb, 'newaliases', []).status, 0);
  assert.deepEqual(virtualAlias(config, 'gone@a.test'), { kind: 'error', status: '5.1.1', text: 'Left us' });
});

describe('routing', () => {
  test('user, catch-all, error:, a list of targets, self-reference, unknown in a domain with no catch-all', async () => {
    assert.deepEqual(await route('bob@a.test'), ['local:bob@a.test']);
    assert.deepEqual(await route('bob@b.test'), ['local:bob@b.test']);
    assert.deepEqual(await route('whoever@a.test'), ['local:catch@a.test']);
    assert.deepEqual(await route('gone@a.test'), ['error:5.1.1 Left us']);
    assert.deepEqual(await route('sales@a.test'), ['local:alice', 'local:bob@a.test', 'local:bob@b.test']);
    assert.deepEqual(await route('self@a.test'), ['error:5.1.1 User unknown']);
    assert.deepEqual(await route('whoever@b.test'), ['error:5.1.1 User unknown']);
  });
});

describe('the quota check in the mbox writer', () => {
  const user = () => virtualUser(config, 'bob@a.test')!;
  const msg = (n: number) => ({ sender: 's@x.test', recipient: 'bob@a.test', data: Buffer.from(`Subject: ${n}\n\n${'x'.repeat(300)}\n`) });
  const quota = (bounce: boolean) => ({ bytes: 2048, messages: 3, bounce });

  test('messages are counted; over the message limit nothing is written, 4.2.2 or 5.2.2', async () => {
    for (const n of [1, 2, 3]) await appendToMbox(config, user(), [msg(n)], { quota: quota(false) });
    const file = mboxPath(config, 'bob@a.test');
    const size = fs.statSync(file).size;
    assert.deepEqual(mailboxUsage(config, 'bob@a.test'), { bytes: size, messages: 3 });
    await assert.rejects(appendToMbox(config, user(), [msg(4)], { quota: quota(false) }), (e: MailError) => e.status === '4.2.2' && e.temporary);
    await assert.rejects(appendToMbox(config, user(), [msg(4)], { quota: quota(true) }), (e: MailError) => e.status === '5.2.2' && e.reply === 552);
    assert.equal(fs.statSync(file).size, size);
  });

  test('a warning is due only when a limit is crossed upward', () => {
    const q = { bytes: 1000, messages: 10 };
    assert.equal(crossed(q, 90, { bytes: 800, messages: 1 }, { bytes: 950, messages: 2 }), true);
    assert.equal(crossed(q, 90, { bytes: 950, messages: 2 }, { bytes: 990, messages: 3 }), false);
    assert.equal(crossed(q, 90, { bytes: 10, messages: 8 }, { bytes: 20, messages: 9 }), true);
    assert.equal(crossed(q, 0, { bytes: 800, messages: 1 }, { bytes: 950, messages: 2 }), false);
    assert.equal(crossed({ bytes: 0, messages: 0 }, 90, { bytes: 800, messages: 1 }, { bytes: 950, messages: 2 }), false);
  });
});

test('a deleted domain takes its alias and quota lines with it; one with users is kept', async () => {
  assert.equal(await addDomain(config, 'c.test'), 'added');
  assert.equal(await addDomain(config, 'C.test'), 'exists');
  await addAlias(config, '@c.test', ['bob@a.test']);
  await setQuota(config, '@c.test', '1M');
  assert.equal(quotaOf(config, 'x@c.test')?.bytes, 1024 * 1024);
  assert.equal(await deleteDomain(config, 'c.test'), 'deleted');
  assert.deepEqual(listAliases(config, 'c.test'), []);
  assert.equal(quotaOf(config, 'x@c.test'), undefined);
  assert.equal(listAliases(config, 'a.test').length, 4);
  await assert.rejects(deleteDomain(config, 'a.test'), /still has 2 users/);
  await assert.rejects(addDomain(config, 'mail.test'), /one of this host's own domains/);
});
