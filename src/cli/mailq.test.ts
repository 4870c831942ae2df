// mailq's output against golden files (Postfix's .in/.ref habit): the empty
// queue, and a queue with a deferred, an active and a held entry.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { loadConfig } from '../config/index.ts';
import { type QueueListing, newControl } from '../queue/index.ts';
import { formatQueue } from './mailq.ts';

process.env.TZ = 'UTC';
const config = loadConfig({ overrides: { queue_dir: '/var/spool/mqueue' }, env: {} });
const ref = (name: string) => fs.readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8');

function entry(id: string, state: QueueListing['state'], over: Partial<NonNullable<QueueListing['control']>> = {}): QueueListing {
  return {
    id,
    count: 3,
    state,
    control: newControl({
      id,
      arrival: Date.UTC(2026, 7, 5, 9, 34),
      sender: 'root@linux-2.cu.edu.tw',
      submitter: 'root',
      size: 598,
      recipients: [{ address: 'u1@linux-2.cu.edu.tw' }],
      ...over,
    }),
  };
}

test('an empty queue', () => {
  assert.equal(formatQueue(config, []), ref('mailq-empty.ref'));
});

test('deferred, active and held entries; crossed-off recipients are not shown', () => {
  const out = formatQueue(config, [
    entry('g752Uks0255800', 'deferred', { attempts: 2, reason: 'Deferred: Connection refused by b.test' }),
    entry('g752Ukt0255801', 'active', {
      size: 12345,
      recipients: [{ address: 'done@x.test' }, { address: 'left@x.test' }],
      journal: { done: new Map([[0, new Set(['local:done'])]]), failed: new Map(), placed: new Map() },
    }),
    entry('g752Uku0255802', 'held', { sender: '' }),
  ]);
  assert.equal(out, ref('mailq-three.ref'));
});
