// Throughput of appendToMbox: 2,000 messages of 1 KB to 10 users, delivered
// in per-mailbox batches (as the queue runner does) and one at a time, one
// mailbox after another and all ten at once. Each call takes a dotlock and
// ends with an fdatasync, so the figures are mostly the disk's sync latency.
// A quick measurement, not a test: `node --import tsx src/mailbox/append-bench.ts [dir]`
// (dir: where the temporary spool goes, to measure another file system).

import fs from 'node:fs';
import { makeEnv, type TestEnv } from './fixtures/env.ts';
import { appendToMbox, mboxPath, scanMbox } from './index.ts';

const USERS = 10;
const MESSAGES = 2000;
const SIZE = 1024;

function message(i: number): Buffer {
  const head = `From: bench@example.org\nTo: user${i % USERS}@test.example\nSubject: message ${i}\n\n`;
  return Buffer.from(head + 'x'.repeat(SIZE - head.length - 1) + '\n');
}

/** Deliver everything in batches of `batch` per user; users one by one or all at once. */
async function run(e: TestEnv, batch: number, parallel: boolean): Promise<number> {
  const perUser = MESSAGES / USERS;
  const deliverUser = async (u: number) => {
    const user = e.user(`user${u}`);
    for (let i = 0; i < perUser; i += batch) {
      const msgs = Array.from({ length: Math.min(batch, perUser - i) }, (_, k) => ({
        sender: 'bench@example.org',
        recipient: `user${u}@test.example`,
        data: message((i + k) * USERS + u),
      }));
      await appendToMbox(e.config, user, msgs);
    }
  };
  const t0 = performance.now();
  if (parallel) await Promise.all(Array.from({ length: USERS }, (_, u) => deliverUser(u)));
  else for (let u = 0; u < USERS; u++) await deliverUser(u);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const where = process.argv[2];
  for (const [batch, parallel] of [[200, false], [200, true], [20, false], [20, true], [1, false], [1, true]] as const) {
    const e = makeEnv(where ? { spoolDir: fs.mkdtempSync(`${where}/mailtk-bench-`) } : {});
    try {
      const ms = await run(e, batch, parallel);
      let count = 0;
      for (let u = 0; u < USERS; u++) count += (await scanMbox(mboxPath(e.config, `user${u}`))).messages.length;
      if (count !== MESSAGES) throw new Error(`expected ${MESSAGES} messages, found ${count}`);
      const label = `batch ${String(batch).padStart(3)}, ${parallel ? '10 users at once ' : 'one user at a time'}`;
      console.log(`${label}: ${ms.toFixed(0).padStart(6)} ms  ${((MESSAGES / ms) * 1000).toFixed(0).padStart(7)} msg/s`);
    } finally {
      e.cleanup();
      if (where) fs.rmSync(e.config.mailSpoolDir, { recursive: true, force: true });
    }
  }
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
