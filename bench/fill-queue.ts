// Fills a mailtk queue with COUNT 1 KB messages to USERS users (lbench0..),
// through the real enqueue(), for the local delivery benchmark.
// Usage: node --import tsx bench/fill-queue.ts CONF COUNT USERS
import { loadConfig } from '../src/config/index.ts';
import { enqueue } from '../src/queue/index.ts';

const [conf, count, users] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const config = loadConfig({ file: conf });
const body = Buffer.from(`From: sender@bench.test\nSubject: local bench\n\n${('x'.repeat(71) + '\n').repeat(13)}`);
for (let i = 0; i < count; i++) {
  await enqueue(config, { sender: 'sender@bench.test', submitter: 'root', recipients: [{ address: `lbench${i % users}@bench.test` }], data: body });
}
console.log(`queued ${count}`);
