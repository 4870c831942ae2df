// The concurrency stress of issue 4 (Dovecot's imaptest is not in Debian, so
// this is our own): 10 clients at once on one mailbox, 8 over IMAP (imapflow)
// and 2 over POP3, doing random fetches, flag changes, searches, deletes,
// expunges and moves, while `sendmail -odi` delivers into it. Every message
// carries a body derived from its subject. Afterwards no message is lost
// (each delivered one is in INBOX or Archive unless a client deleted it), none
// is doubled or damaged, and no client saw a protocol error.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import { scanMbox } from '../src/mailbox/index.ts';
import { runAsync } from './helpers.ts';
import { LineClient, type MailboxServer, PASSWORD, startMailboxServer } from './mailbox/harness.ts';

const DELIVERIES = 40;
const ROUNDS = 12;

let s: MailboxServer;
before(async () => {
  s = await startMailboxServer({ users: ['stress'] });
});
after(() => s.close());

function bodyFor(subject: string): string {
  const h = crypto.createHash('sha256').update(subject).digest('hex');
  return `${h}\nFrom a line mbox quotes\n.a line POP3 stuffs\n${h.repeat(20)}\n`;
}

function check(subject: string, text: string): void {
  const ok = text.replace(/\r\n/g, "\n").endsWith(`\n\n${bodyFor(subject)}`);
  if (!ok) console.error(JSON.stringify(text));
  assert.ok(ok, `message "${subject}" arrived damaged`);
}

const removed = new Set<string>();
const rnd = (n: number) => Math.floor(Math.random() * n);

async function imapClient(id: number): Promise<void> {
  const c = new ImapFlow({ host: '127.0.0.1', port: s.imap, secure: false, auth: { user: 'stress', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
  await c.connect();
  try {
    const lock = await c.getMailboxLock('INBOX');
    try {
      for (let round = 0; round < ROUNDS; round++) {
        const list = [];
        // An empty mailbox has no message numbers: FETCH 1:* there is BAD (RFC 3501 9, as Dovecot answers).
        if (c.mailbox && c.mailbox.exists) for await (const m of c.fetch('1:*', { uid: true, flags: true, envelope: true })) list.push(m);
        if (list.length === 0) continue;
        const pick = list[rnd(list.length)];
        const one = await c.fetchOne(String(pick.uid), { source: true, envelope: true }, { uid: true });
        if (one && one.source) check(one.envelope!.subject!, one.source.toString());
        await c.messageFlagsAdd(String(list[rnd(list.length)].uid), [rnd(2) ? '\\Seen' : '\\Flagged'], { uid: true });
        await c.search({ seen: false }, { uid: true });
        const roll = rnd(10);
        if (roll < 2) {
          removed.add(pick.envelope!.subject!);
          await c.messageDelete(String(pick.uid), { uid: true });
        } else if (roll < 3 && id % 2 === 0) {
          await c.messageMove(String(pick.uid), 'Archive', { uid: true });
        }
      }
    } finally {
      lock.release();
    }
  } finally {
    await c.logout();
  }
}

async function pop3Client(): Promise<void> {
  for (let round = 0; round < ROUNDS / 3; round++) {
    const c = await LineClient.connect(s.pop3);
    try {
      assert.match((await c.line())!, /^\+OK /);
      c.send('USER stress');
      await c.line();
      c.send(`PASS ${PASSWORD}`);
      const r = (await c.line())!;
      if (r.includes('[IN-USE]')) continue; // the other POP3 client has it: allowed
      assert.match(r, /^\+OK stress's maildrop has (\d+) messages?/);
      const n = Number(/has (\d+)/.exec(r)![1]);
      if (n > 0) {
        const k = 1 + rnd(n);
        c.send(`RETR ${k}`);
        const first = (await c.line())!;
        if (first.startsWith('+OK')) {
          const lines: string[] = [];
          for (let l = await c.line(); l !== '.'; l = await c.line()) lines.push(l!.startsWith('.') ? l!.slice(1) : l!);
          const subject = lines.find((l) => l.startsWith('Subject: '))!.slice(9);
          check(subject, `${lines.join('\n')}\n`);
          if (rnd(3) === 0) {
            removed.add(subject);
            c.send(`DELE ${k}`);
            assert.match((await c.line())!, /^\+OK message \d+ deleted$/);
          }
        } else assert.match(first, /^-ERR message was removed by another session$/);
      }
      c.send('QUIT');
      assert.match((await c.line())!, /^\+OK .* signing off/);
    } finally {
      c.close();
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function deliverAll(prefix: string, count: number): Promise<string[]> {
  const subjects: string[] = [];
  for (let i = 0; i < count; i += 4) {
    const batch = [0, 1, 2, 3].map((k) => `${prefix} ${i + k}`);
    subjects.push(...batch);
    const results = await Promise.all(batch.map((subj) => runAsync(s.sb, 'sendmail', ['-odi', '-i', 'stress'], `From: a@mail.test\nSubject: ${subj}\n\n${bodyFor(subj)}`)));
    for (const r of results) assert.equal(r.status, 0, r.stderr);
  }
  return subjects;
}

test('10 clients and a stream of deliveries on one mailbox: nothing lost, doubled or damaged', { timeout: 240_000 }, async () => {
  const setup = new ImapFlow({ host: '127.0.0.1', port: s.imap, secure: false, auth: { user: 'stress', pass: PASSWORD }, logger: false, tls: { rejectUnauthorized: false } });
  await setup.connect();
  await setup.mailboxCreate('Archive');
  await setup.logout();
  const warm = await deliverAll('warm', 8);
  const clients = [...Array.from({ length: 8 }, (_, i) => imapClient(i)), pop3Client(), pop3Client()];
  const [delivered] = await Promise.all([deliverAll('stress', DELIVERIES), ...clients]);
  const all = [...warm, ...delivered];
  const inbox = await subjectsOf(s.sb.mbox('stress'));
  const archive = await subjectsOf(`${s.sb.users.stress.home}/mail/Archive`);
  const present = [...inbox, ...archive];
  const counts = new Map<string, number>();
  for (const p of present) counts.set(p, (counts.get(p) ?? 0) + 1);
  for (const [subj, n] of counts) assert.ok(n === 1 || removed.has(subj), `"${subj}" is there ${n} times`);
  const lost = [...new Set(all)].filter((subj) => !counts.has(subj) && !removed.has(subj));
  assert.deepEqual(lost, [], `messages lost${whyLost(lost)}`);
  assert.ok(present.length > 0);
});

/**
 * Where missing messages are, for the failure message. `sendmail -odi` exits
 * 0 once the message is queued, also when the delivery then defers (a
 * mailbox locked for 20 s, a delivery agent that did not answer), so a
 * message missing from the mailboxes may be waiting in the queue: its entry
 * and its log lines say why.
 */
function whyLost(lost: string[]): string {
  if (lost.length === 0) return '';
  const want = new Set(lost);
  const log = fs.existsSync(s.sb.log) ? fs.readFileSync(s.sb.log, 'utf8').split('\n') : [];
  const out: string[] = [];
  for (const name of fs.readdirSync(s.sb.queue, { recursive: true }) as string[]) {
    const file = path.join(s.sb.queue, name);
    if (!path.basename(name).startsWith('qf') || !fs.statSync(file).isFile()) continue;
    const subject = /^Subject: (.*)$/m.exec(fs.readFileSync(file, 'latin1'))?.[1] ?? '';
    if (!want.has(subject)) continue;
    const id = path.basename(name).slice(2);
    out.push(`"${subject}" is still queued as ${name}:`, ...log.filter((l) => l.includes(`${id}:`)));
  }
  return out.length ? `\n${out.join('\n')}` : ' (and not in the queue either)';
}

/** Subjects of an mbox's messages, each checked whole. */
async function subjectsOf(file: string): Promise<string[]> {
  const fs = await import('node:fs');
  if (!fs.existsSync(file)) return [];
  const index = await scanMbox(file);
  const data = fs.readFileSync(file);
  return index.messages.map((m) => {
    const text = data.subarray(m.dataOffset, m.offset + m.length).toString().replace(/^>From /gm, 'From ');
    const subject = /^Subject: (.*)$/m.exec(text)![1];
    check(subject, text);
    return subject;
  });
}
