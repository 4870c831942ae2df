// A full queue disk ("Nothing acknowledged that is not whole on disk"): the
// queue directory sits on a small tmpfs this test mounts (as root), the
// mailboxes and the log stay outside it, and ~100 KB messages are submitted
// until the tmpfs is full, three ways: over SMTP to a root daemon (several
// sessions at once, so the disk fills while messages are in flight; once
// with the daemon delivering at once, once with delivery_mode = queue so
// that accepted messages sit on the full disk before root's `sendmail -q`
// delivers them), with a root `sendmail -odq`, and with an ordinary user's
// `sendmail` (the maildrop, then root's `sendmail -q`).
// A submission is acknowledged (250 after DATA, exit 0) or refused (a 4xx
// reply, exit 75 with a one-line error); nothing else is acceptable. Once
// the queue has drained (bounded), every acknowledged message must be in
// the mailbox exactly once with its body byte for byte (sha256), nothing
// refused may be there, no stub may be there, and the log must hold no
// internal error and no stack trace. Each case fails with the list of
// everything that went wrong, not only the first.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { type TestContext, after, describe, test } from 'node:test';
import { binFor, IS_ROOT, type RunningDaemon, type Sandbox, makeSandbox, splitMbox, startDaemon } from './helpers.ts';

/** The queue's file system: small enough that a few dozen 100 KB messages fill it. */
const TMPFS_SIZE = '2m';
const BODY_BYTES = 100 * 1024;
/** How long the queue may take to drain once submission is over. */
const DRAIN_MS = 45_000;
/** How long held messages sit on the full disk before the queue runs start. */
const HOLD_MS = 6_000;
const CASE_TIMEOUT_MS = 110_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Can this process mount a tmpfs here? A reason to skip when not. */
function mountProbe(): string | false {
  if (!IS_ROOT) return 'needs root: mounts a tmpfs for the queue and runs mailtk as root';
  const dir = fs.mkdtempSync('/tmp/mailtk-mount-probe-');
  try {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0755', 'tmpfs', dir], { encoding: 'utf8' });
    if (r.status !== 0) return `cannot mount a tmpfs: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`;
    umount(dir);
    return false;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const skip = mountProbe();

// ------------------------------------------------------------- one sandbox with its queue on a tmpfs

interface Disk {
  sb: Sandbox;
  /** Where the tmpfs is mounted; queue_dir is mnt/mqueue. */
  mnt: string;
  daemon?: RunningDaemon;
}

const live = new Set<Disk>();

function umount(mnt: string): void {
  for (let i = 0; i < 20; i++) {
    if (spawnSync('umount', [mnt]).status === 0) return;
    spawnSync('sleep', ['0.1']);
  }
  // Something still holds it (a child we did not start?): detach it so that the sandbox can go.
  spawnSync('umount', ['-l', mnt]);
}

async function teardown(d: Disk): Promise<void> {
  if (!live.delete(d)) return;
  try {
    await d.daemon?.stop();
  } finally {
    umount(d.mnt);
    d.sb.cleanup();
  }
}

// Even after a timeout, nothing stays mounted and no daemon stays up.
after(async () => {
  for (const d of [...live]) await teardown(d);
});

/** A sandbox whose queue_dir is inside a fresh tmpfs; undefined (and a skip) when it cannot be mounted. */
function fullDiskSandbox(t: TestContext, extraConf = ''): Disk | undefined {
  const sb = makeSandbox({ users: ['alice', 'bob'] });
  const mnt = path.join(sb.dir, 'qdisk');
  fs.mkdirSync(mnt);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${TMPFS_SIZE},mode=0755`, 'tmpfs', mnt], { encoding: 'utf8' });
  if (r.status !== 0) {
    sb.cleanup();
    t.skip(`cannot mount a tmpfs: ${(r.stderr || `exit ${r.status}`).trim()}`);
    return undefined;
  }
  const d: Disk = { sb, mnt };
  live.add(d);
  sb.queue = path.join(mnt, 'mqueue');
  // The mailboxes (mail_spool_dir) and the log stay in the sandbox, off the tmpfs. Short backoffs,
  // so that an entry deferred while the disk was full is tried again within the test's bounds.
  fs.appendFileSync(sb.conf, [`queue_dir = ${sb.queue}`, 'min_backoff = 1s', 'max_backoff = 3s', extraConf, ''].join('\n'));
  // An ordinary user's sendmail reads these (case 3).
  fs.chmodSync(sb.conf, 0o644);
  fs.chmodSync(path.join(sb.dir, 'etc', 'passwd'), 0o644);
  return d;
}

// ------------------------------------------------------------------------------- the messages

type Outcome = 'accepted' | 'refused' | 'unknown';

interface Sent {
  n: number;
  msgid: string;
  /** sha256 of the body as LF text, as an mbox keeps it. */
  sha: string;
  bytes: number;
  /** The whole message, LF line ends. */
  text: string;
  outcome?: Outcome;
  /** The reply or exit status that decided the outcome. */
  how?: string;
  /** For a refusal: "STEP CODE ENHANCED", e.g. "end of data 452 4.3.1", or "exit 75". */
  refusal?: string;
}

/**
 * A message of about BODY_BYTES with a unique Message-ID. No body line starts
 * with "From " (no >From quoting) or "." (no dot-stuffing), and the body ends
 * with a line end.
 */
function makeMessage(tag: string, n: number, from: string): Sent {
  const msgid = `<${tag}.${n}.${randomBytes(6).toString('hex')}@client.test>`;
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < BODY_BYTES; i++) {
    const line = `L${String(i).padStart(5, '0')} ${tag}-${n} ${randomBytes(30).toString('hex')}`;
    lines.push(line);
    size += line.length + 1;
  }
  const body = lines.join('\n') + '\n';
  const head = [`From: ${from}`, 'To: bob@mail.test', `Subject: queue-full ${tag} ${n}`, `Message-ID: ${msgid}`, ''].join('\n');
  return { n, msgid, sha: sha256(body), bytes: Buffer.byteLength(body), text: `${head}\n${body}` };
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

// ------------------------------------------------------------------------------- SMTP

interface Reply {
  code: number;
  text: string;
}

/** A raw SMTP client: whole replies (multi-line included), or undefined when the server hung up or fell silent. */
class Smtp {
  private buf = '';
  private closed = false;
  private wake?: () => void;

  private constructor(private sock: net.Socket) {
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => {
      this.buf += d;
      this.wake?.();
    });
    sock.on('close', () => {
      this.closed = true;
      this.wake?.();
    });
    sock.on('error', () => undefined); // EPIPE / ECONNRESET: seen as the close that follows
  }

  static connect(port: number): Promise<Smtp> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(port, '127.0.0.1');
      sock.once('connect', () => resolve(new Smtp(sock)));
      sock.once('error', reject);
    });
  }

  send(text: string): void {
    if (!this.closed) this.sock.write(text);
  }

  async reply(ms = 30_000): Promise<Reply | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.buf);
      if (m) {
        const all = this.buf.slice(0, m.index + m[0].length);
        this.buf = this.buf.slice(all.length);
        const lines = all.split('\r\n').filter(Boolean);
        return { code: Number(m[1]), text: lines.join(' | ') };
      }
      if (this.closed || Date.now() >= end) return undefined;
      await new Promise<void>((r) => {
        const timer = setTimeout(r, Math.max(1, end - Date.now()));
        this.wake = () => {
          clearTimeout(timer);
          r();
        };
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.sock.destroy();
  }
}

/**
 * One message in its own session. accepted: 250 after DATA. refused: a 4xx
 * at any step (a full disk may be told at MAIL, RCPT, DATA or after the
 * text; 421 and a hang-up is allowed). Anything else (a 5xx, a hang-up or
 * silence without a reply) is a problem, and the outcome "unknown".
 */
async function smtpSubmit(port: number, m: Sent, problems: string[]): Promise<void> {
  let c: Smtp;
  try {
    c = await Smtp.connect(port);
  } catch (e) {
    m.outcome = 'unknown';
    m.how = `connect: ${(e as Error).message}`;
    problems.push(`message ${m.n}: cannot connect: ${(e as Error).message}`);
    return;
  }
  try {
    const steps: Array<[string, string | undefined, number]> = [
      ['greeting', undefined, 220],
      ['EHLO', 'EHLO client.test\r\n', 250],
      ['MAIL', 'MAIL FROM:<alice@mail.test>\r\n', 250],
      ['RCPT', 'RCPT TO:<bob@mail.test>\r\n', 250],
      ['DATA', 'DATA\r\n', 354],
      ['end of data', m.text.replace(/\n/g, '\r\n') + '.\r\n', 250],
    ];
    for (const [step, line, want] of steps) {
      if (line !== undefined) c.send(line);
      const r = await c.reply();
      if (!r) {
        m.outcome = 'unknown';
        m.how = `no reply to ${step}`;
        problems.push(`message ${m.n}: the connection closed (or stayed silent 30 s) without a reply to ${step}`);
        return;
      }
      if (r.code >= 400 && r.code < 500) {
        m.outcome = 'refused';
        m.how = `${step}: ${r.text}`;
        const enhanced = /^\d{3}[ -](\d\.\d{1,3}\.\d{1,3})\b/.exec(r.text)?.[1];
        m.refusal = `${step} ${r.code}${enhanced ? ` ${enhanced}` : ''}`;
        // RFC 3463: an enhanced code, when given, says the same class as the reply.
        if (enhanced && enhanced[0] !== '4') problems.push(`message ${m.n}: ${step} answered "${r.text}": a 4xx reply with a class ${enhanced[0]} enhanced code`);
        return;
      }
      if (r.code !== want) {
        m.outcome = 'unknown';
        m.how = `${step}: ${r.text}`;
        problems.push(`message ${m.n}: ${step} answered "${r.text}" (expected ${want}, or a 4xx when the disk is full)`);
        return;
      }
    }
    m.outcome = 'accepted';
    m.how = 'end of data: 250';
    c.send('QUIT\r\n');
    await c.reply(5_000);
  } finally {
    c.close();
  }
}

// ------------------------------------------------------------------------------- the command line

/** bin/sendmail with the sandbox's config; as root unless a user is given. */
function sendmail(d: Disk, args: string[], input = '', as?: { uid: number; gid: number; home: string }) {
  return spawnSync(path.join(binFor(as?.uid), 'sendmail'), ['-C', d.sb.conf, ...args], {
    input,
    env: as ? { ...d.sb.env, HOME: as.home } : d.sb.env,
    encoding: 'utf8',
    timeout: 30_000,
    ...(as ? { uid: as.uid, gid: as.gid, cwd: as.home } : {}),
  });
}

/**
 * Submit messages with the command line until the disk is full (three
 * refusals in a row). Exit 0 is accepted, 75 refused with a one-line error
 * on stderr; anything else is a problem.
 */
function cliSubmitUntilFull(d: Disk, tag: string, args: string[], from: string, problems: string[], as?: { uid: number; gid: number; home: string }): Sent[] {
  const sent: Sent[] = [];
  let refusedInARow = 0;
  for (let n = 0; n < 80 && refusedInARow < 3; n++) {
    const m = makeMessage(tag, n, from);
    sent.push(m);
    const r = sendmail(d, args, m.text, as);
    const err = (r.stderr ?? '').trim();
    if (r.status === 0) {
      m.outcome = 'accepted';
      m.how = 'exit 0';
      refusedInARow = 0;
      continue;
    }
    m.outcome = r.status === 75 ? 'refused' : 'unknown';
    m.how = `exit ${r.status ?? r.signal}: ${err}`;
    m.refusal = `exit ${r.status ?? r.signal}`;
    if (r.status !== 75) {
      problems.push(`message ${n}: sendmail exited ${r.status ?? `on ${r.signal}`} (0 or 75 expected): ${err.slice(0, 600)}`);
      refusedInARow++;
      continue;
    }
    refusedInARow++;
    if (err.split('\n').length !== 1 || err === '') problems.push(`message ${n}: exit 75 without a one-line error on stderr: ${JSON.stringify(err.slice(0, 600))}`);
    if (/^\s+at /m.test(err)) problems.push(`message ${n}: a stack trace on stderr`);
  }
  return sent;
}

// ------------------------------------------------------------------------------- the queue and the checks

/** What is still to be delivered: qf<ID> in queue_dir (not its subfolders), and anything left in maildrop or pickup. */
function queueLeft(d: Disk): string[] {
  const names = (dir: string) => {
    try {
      return fs.readdirSync(dir);
    } catch {
      return [];
    }
  };
  return [
    ...names(d.sb.queue).filter((n) => n.startsWith('qf') && !n.endsWith('.lock')),
    // Not a writer's temporary name (.tmp.NAME: never acknowledged) nor what pickup refused in place.
    ...names(path.join(d.sb.queue, 'maildrop')).filter((n) => !n.startsWith('.')).map((n) => `maildrop/${n}`),
    ...names(path.join(d.sb.queue, 'pickup')).map((n) => `pickup/${n}`),
  ];
}

/** Root's `sendmail -q`, again and again, until the queue is empty (or DRAIN_MS). */
async function drainWithQueueRuns(d: Disk, problems: string[]): Promise<{ runs: number; drained: boolean }> {
  const end = Date.now() + DRAIN_MS;
  for (let runs = 1; ; runs++) {
    const r = sendmail(d, ['-q']);
    // 75 is allowed while the disk is still full; anything else, or a trace, is not.
    if ((r.status !== 0 && r.status !== 75) || /^\s+at /m.test(r.stderr ?? '')) {
      problems.push(`queue run ${runs}: sendmail -q exited ${r.status ?? r.signal}: ${(r.stderr ?? '').trim().slice(0, 600)}`);
    }
    if (queueLeft(d).length === 0) return { runs, drained: true };
    if (Date.now() >= end) return { runs, drained: false };
    await sleep(500);
  }
}

async function waitDrained(d: Disk, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (queueLeft(d).length === 0) return true;
    await sleep(200);
  }
  return queueLeft(d).length === 0;
}

/** Whatever else is on the tmpfs, for the report. */
function queueListing(d: Disk): string {
  const out: string[] = [];
  const walk = (dir: string, rel: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p, `${rel}${e.name}/`);
      else out.push(`${rel}${e.name} (${fs.lstatSync(p).size} B)`);
    }
  };
  try {
    walk(d.sb.queue, '');
  } catch {
    // no queue
  }
  const df = spawnSync('df', ['-k', d.mnt], { encoding: 'utf8' }).stdout.trim().split('\n').at(-1);
  return `${out.length} files: ${out.slice(0, 40).join(', ')}${out.length > 40 ? ', ...' : ''}; df: ${df}`;
}

/**
 * The mailbox against what was submitted: each accepted message delivered
 * exactly once and whole, nothing refused delivered, no stub or stranger,
 * no other mailbox written (a bounce), and a log with no internal error and
 * no stack trace.
 */
function verify(d: Disk, sent: Sent[], problems: string[]): string {
  const accepted = sent.filter((m) => m.outcome === 'accepted');
  const refused = sent.filter((m) => m.outcome === 'refused');
  if (accepted.length === 0) problems.push('no message was accepted at all');
  if (refused.length === 0) problems.push(`no message was refused: the ${TMPFS_SIZE} tmpfs never filled (send more, or bigger)`);

  const byId = new Map(sent.map((m) => [m.msgid, m]));
  const whole = new Map<string, number>();
  const mbox = splitMbox(d.sb.readMbox('bob'));
  for (const [i, text] of mbox.entries()) {
    const cut = text.indexOf('\n\n');
    const head = cut < 0 ? text : text.slice(0, cut);
    const body = cut < 0 ? '' : text.slice(cut + 2);
    const msgid = /^Message-ID:[ \t]*(<[^>\s]+>)/im.exec(head)?.[1];
    const m = msgid ? byId.get(msgid) : undefined;
    if (!m) {
      problems.push(`mbox message ${i}: a stub or a stranger (no Message-ID of ours), ${text.length} bytes: ${JSON.stringify(text.slice(0, 300))}`);
      continue;
    }
    // The body as sent; mbox delivery may only end it with the separating empty line.
    const got = body.replace(/\n+$/, '\n');
    if (sha256(got) !== m.sha) {
      problems.push(`mbox message ${i} (${m.outcome} message ${m.n} ${m.msgid}): body of ${Buffer.byteLength(got)} bytes, not the ${m.bytes} sent (sha256 differs): a stub or a torn copy`);
      continue;
    }
    whole.set(m.msgid, (whole.get(m.msgid) ?? 0) + 1);
  }
  for (const m of sent) {
    const n = whole.get(m.msgid) ?? 0;
    if (m.outcome === 'accepted' && n !== 1) problems.push(`accepted message ${m.n} ${m.msgid}: delivered whole ${n} times (exactly once expected)`);
    if (m.outcome === 'refused' && n !== 0) problems.push(`refused message ${m.n} ${m.msgid} (${m.how}): delivered ${n} times`);
    // Unknown (no reply): the sender will try again; at most one copy.
    if (m.outcome === 'unknown' && n > 1) problems.push(`message ${m.n} ${m.msgid} (${m.how}): delivered ${n} times`);
  }

  for (const name of fs.readdirSync(d.sb.spool)) {
    const p = path.join(d.sb.spool, name);
    if (name === 'bob' || !fs.lstatSync(p).isFile() || fs.lstatSync(p).size === 0 || name.endsWith('.lock')) continue;
    const subjects = splitMbox(fs.readFileSync(p, 'utf8')).map((t) => /^Subject: (.*)$/m.exec(t)?.[1] ?? '?');
    problems.push(`mail for ${name} (a bounce or notice?): ${subjects.join('; ').slice(0, 400)}`);
  }

  const log = fs.existsSync(d.sb.log) ? fs.readFileSync(d.sb.log, 'utf8') : '';
  const internal = log.split('\n').filter((l) => /internal error/i.test(l));
  const trace = log.split('\n').filter((l) => /^\s+at \S/.test(l));
  if (internal.length) problems.push(`${internal.length} "internal error" log lines, e.g. ${internal.slice(0, 3).join(' // ')}`);
  if (trace.length) problems.push(`${trace.length} stack trace lines in the log, e.g. ${trace.slice(0, 3).join(' // ')}`);

  const codes = new Map<string, number>();
  for (const m of refused) codes.set(m.refusal!, (codes.get(m.refusal!) ?? 0) + 1);
  const texts = [...new Set(refused.map((m) => m.how!.slice(0, 200)))].slice(0, 3);
  return (
    `${sent.length} submitted: ${accepted.length} accepted, ${refused.length} refused ` +
    `(${[...codes].map(([k, v]) => `${v}x ${k}`).join(', ')}; e.g. ${texts.join(' // ')}), ` +
    `${sent.length - accepted.length - refused.length} unknown; ` +
    `mbox holds ${mbox.length} messages, ${[...whole.values()].reduce((a, b) => a + b, 0)} whole`
  );
}

/** The summary, what is left on the tmpfs and the log's complaints as diagnostics; then every problem in one failure. */
function report(t: TestContext, summary: string, problems: string[], d: Disk): void {
  t.diagnostic(summary);
  t.diagnostic(`queue after: ${queueListing(d)}`);
  const log = fs.existsSync(d.sb.log) ? fs.readFileSync(d.sb.log, 'utf8').split('\n') : [];
  const complaints = log.filter((l) => /SYSERR|ENOSPC|cannot|stat=Deferred/i.test(l));
  t.diagnostic(`log: ${log.length} lines, ${complaints.length} complaints${complaints.length ? ', e.g.:' : ''}`);
  for (const l of complaints.slice(0, 6)) t.diagnostic(`  ${l}`);
  const shown = problems.length > 40 ? [...problems.slice(0, 40), `... and ${problems.length - 40} more`] : problems;
  assert.equal(problems.length, 0, `${summary}\n${problems.length} problems:\n  ${shown.join('\n  ')}`);
}

/**
 * The SMTP case: a root daemon, COUNT messages over PARALLEL sessions at
 * once. Delivered at once (sendmail's default), the runner takes messages
 * away as they come; held (delivery_mode = queue), they sit in the queue on
 * the full disk for longer than the daemon keeps them in its own buffers
 * (its commit log writes them out about 4 s after acceptance), and root's
 * `sendmail -q`, run while the daemon still runs, delivers them.
 */
async function smtpCase(t: TestContext, held: boolean): Promise<void> {
  const d = fullDiskSandbox(t, held ? 'delivery_mode = queue' : '');
  if (!d) return;
  try {
    const problems: string[] = [];
    // Delivered at once: periodic runs too, so that an entry deferred while the disk was full is retried.
    d.daemon = await startDaemon(d.sb, ['-bD', held ? '-q1h' : '-q2s']);
    const port = d.daemon.ports.smtp;
    const COUNT = 50;
    const PARALLEL = 10;
    const sent = Array.from({ length: COUNT }, (_, n) => makeMessage(held ? 'held' : 'smtp', n, 'alice@mail.test'));
    let next = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        while (next < sent.length) await smtpSubmit(port, sent[next++], problems);
      }),
    );
    let runs = 0;
    if (held) {
      await sleep(HOLD_MS);
      const drain = await drainWithQueueRuns(d, problems);
      runs = drain.runs;
      if (!drain.drained) problems.push(`${runs} queue runs in ${DRAIN_MS / 1000} s did not empty the queue: ${queueLeft(d).slice(0, 20).join(' ')}`);
    } else if (!(await waitDrained(d, DRAIN_MS))) {
      problems.push(`the queue did not drain in ${DRAIN_MS / 1000} s: ${queueLeft(d).slice(0, 20).join(' ')}`);
    }
    if (d.daemon.child.exitCode !== null || d.daemon.child.signalCode !== null) {
      problems.push(`the daemon died (exit ${d.daemon.child.exitCode ?? d.daemon.child.signalCode}): ${d.daemon.stderr().slice(-600)}`);
    }
    const code = await d.daemon.stop();
    if (code !== 0) problems.push(`the daemon exited ${code} on SIGTERM: ${d.daemon.stderr().slice(-600)}`);
    // What a later queue run (recovering whatever the daemon left) finds must add nothing.
    const r = sendmail(d, ['-q']);
    if (r.status !== 0) problems.push(`sendmail -q after the daemon: exit ${r.status}: ${(r.stderr ?? '').trim().slice(0, 600)}`);
    report(t, `${verify(d, sent, problems)}${held ? `; ${runs} queue runs` : ''}`, problems, d);
  } finally {
    await teardown(d);
  }
}

// ------------------------------------------------------------------------------- the cases

describe('a full queue disk: nothing acknowledged that is not whole on disk', { skip, concurrency: false }, () => {
  test('SMTP, delivered at once: 250 only for what is whole on disk, 4xx for the rest; every 250 delivered once and whole', { timeout: CASE_TIMEOUT_MS }, (t) =>
    smtpCase(t, false));

  test('SMTP, delivery held while the disk is full: every 250 delivered once and whole by the queue runs after', { timeout: CASE_TIMEOUT_MS }, (t) =>
    smtpCase(t, true));

  test('sendmail -odq as root: exit 0 only for what is whole on disk, 75 for the rest; sendmail -q delivers every 0 once and whole', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const d = fullDiskSandbox(t);
    if (!d) return;
    try {
      const problems: string[] = [];
      const sent = cliSubmitUntilFull(d, 'cli', ['-odq', '-i', 'bob'], 'root@mail.test', problems);
      const { runs, drained } = await drainWithQueueRuns(d, problems);
      if (!drained) problems.push(`${runs} queue runs in ${DRAIN_MS / 1000} s did not empty the queue: ${queueLeft(d).slice(0, 20).join(' ')}`);
      report(t, `${verify(d, sent, problems)}; ${runs} queue runs`, problems, d);
    } finally {
      await teardown(d);
    }
  });

  test('the maildrop: an ordinary user’s sendmail exits 0 only for what is whole on disk, 75 for the rest; root’s sendmail -q delivers every 0 once and whole', { timeout: CASE_TIMEOUT_MS }, async (t) => {
    const d = fullDiskSandbox(t);
    if (!d) return;
    try {
      const problems: string[] = [];
      const alice = d.sb.users.alice;
      // Root makes the queue (mail_owner's, with its 1733 maildrop) before alice submits.
      const first = sendmail(d, ['-q']);
      assert.equal(first.status, 0, `the first queue run: ${first.stderr}`);
      assert.ok(fs.statSync(path.join(d.sb.queue, 'maildrop')).isDirectory(), 'the maildrop exists');
      const sent = cliSubmitUntilFull(d, 'drop', ['-i', 'bob'], 'alice@mail.test', problems, alice);
      // alice may not write the queue itself: her messages went to the maildrop.
      const accepted = sent.filter((m) => m.outcome === 'accepted').length;
      const dropped = queueLeft(d).filter((n) => n.startsWith('maildrop/')).length;
      if (dropped !== accepted) problems.push(`${accepted} submissions exited 0 but the maildrop holds ${dropped} entries`);
      const { runs, drained } = await drainWithQueueRuns(d, problems);
      if (!drained) problems.push(`${runs} queue runs in ${DRAIN_MS / 1000} s did not empty the queue: ${queueLeft(d).slice(0, 20).join(' ')}`);
      report(t, `${verify(d, sent, problems)}; ${runs} queue runs`, problems, d);
    } finally {
      await teardown(d);
    }
  });
});
