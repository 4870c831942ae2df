// Exact SMTP dialogues: every file in test/transcripts/ is replayed against
// a real listener on a loopback port, each with its own sandbox and the
// configuration its "!conf" and "!access" lines ask for (harness.ts).

import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { parseTranscript, replay, startServer } from './transcripts/harness.ts';

const DIR = path.join(import.meta.dirname, 'transcripts');

for (const name of fs.readdirSync(DIR).filter((f) => f.endsWith('.txt')).sort()) {
  test(`transcript ${name}`, async () => {
    const file = path.join(DIR, name);
    const t = parseTranscript(file);
    const server = await startServer({
      extraConf: t.conf.join('\n'),
      access: t.access.length ? t.access.join('\n') + '\n' : undefined,
      submission: true,
      passwords: { alice: 's3cret' },
    });
    try {
      const port = t.port === 'submission' ? (server.submissionPort as number) : server.smtpPort;
      await replay(file, port, t);
    } finally {
      await server.close();
    }
  });
}
