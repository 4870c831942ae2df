// sendmail -bm (the default): read a message, add the headers sendmail adds,
// put it in the queue (or the maildrop when this user may not write the
// queue), then deliver it as the delivery mode says. Exit 0 only after the
// commit point. This is the hot path cron and PHP start once per message:
// nothing here loads yargs, chalk, ora or proper-lockfile.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { type Config, childArgs, childEnv } from '../config/index.ts';
import { invokingUser } from '../config/users.ts';
import { log } from '../log/index.ts';
import { prepareSubmission, qualify, validateEnvelopeAddress } from '../message/index.ts';
import { EX, MailError } from '../message/status.ts';
import { dropMessage, enqueue, mayWriteQueue, newQueueId, type Recipient } from '../queue/index.ts';
import type { SendmailOptions } from './sendmail-args.ts';

/** Read all of stdin; a TTY or pipe alike. */
export function readStdin(): Buffer {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') continue; // a non-blocking pipe not ready yet
      if (code === 'EOF') break;
      throw new MailError('no-input', `cannot read the message from standard input: ${(e as Error).message}`);
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks);
}

/** Without -i, a line holding only "." ends the message, as in sendmail and Postfix. */
export function cutAtDot(data: Buffer): Buffer {
  if (data.subarray(0, 2).toString() === '.\n' || data.subarray(0, 3).toString() === '.\r\n' || data.toString() === '.') {
    return Buffer.alloc(0);
  }
  let from = 0;
  for (;;) {
    const i = data.indexOf('\n.', from);
    if (i < 0) return data;
    const after = data[i + 2];
    if (after === undefined || after === 0x0a || (after === 0x0d && data[i + 3] === 0x0a)) {
      return data.subarray(0, i + 1);
    }
    from = i + 2;
  }
}

function checkAddress(addr: string, what: string): void {
  const err = validateEnvelopeAddress(addr);
  if (err) throw new MailError('bad-address', `${what} <${addr}>: ${err}`);
}

export async function submit(config: Config, o: SendmailOptions): Promise<number> {
  let input = readStdin();
  if (!o.ignoreDots) input = cutAtDot(input);
  if (input.length > config.maxMessageSize) {
    throw new MailError('message-too-big', `message of ${input.length} bytes exceeds max_message_size (${config.maxMessageSize})`);
  }
  const me = invokingUser(config);
  const sender = o.sender === undefined ? `${me.name}@${config.hostname}` : qualify(o.sender, config.hostname);
  if (sender) checkAddress(sender, 'sender');
  const id = newQueueId();
  const prepared = prepareSubmission(input, {
    queueId: id,
    hostname: config.hostname,
    envelopeSender: sender,
    login: me.name,
    fullName: o.fullName ?? (me.gecos.split(',')[0] || undefined),
    extractRecipients: o.extractRecipients,
    receivedFrom: `${me.name}@localhost`,
    now: new Date(),
    bareLocalDomain: config.hostname,
  });
  for (const bad of prepared.badRecipients) process.stderr.write(`sendmail: ${bad.address}... ${bad.error}; not sent there\n`);
  const addresses = [...o.recipients.map((r) => qualify(r, config.hostname)), ...prepared.recipients];
  const seen = new Set<string>();
  const recipients: Recipient[] = [];
  for (const a of addresses) {
    checkAddress(a, 'recipient');
    const k = a.toLowerCase();
    if (seen.has(k)) continue;
    seen.add(k);
    recipients.push({ address: a, notify: o.notify });
  }
  if (recipients.length === 0) {
    throw new MailError('no-recipients', o.extractRecipients ? 'No recipient addresses found in header' : 'Recipient names must be specified');
  }
  const hops = o.hopCount ?? prepared.hops;
  if (hops > config.maxHopCount) throw new MailError('mail-loop', `Too many hops ${hops} (${config.maxHopCount} max)`);
  const message = {
    id,
    sender,
    submitter: me.name,
    recipients,
    data: prepared.data,
    envid: o.envid,
    ret: o.ret,
    bodyType: o.bodyType,
    hops,
  };
  if (!mayWriteQueue(config)) {
    dropMessage(config, message);
    return EX.OK;
  }
  await enqueue(config, message);
  log(config, id, [
    ['from', `<${sender}>`],
    ['size', prepared.data.length],
    ['class', 0],
    ['nrcpts', recipients.length],
    ['msgid', prepared.messageId],
    ['relay', `${me.name}@localhost`],
  ]);
  const mode = o.deliveryMode ?? (o.verbose ? 'interactive' : config.deliveryMode);
  if (mode === 'background') startBackgroundDelivery(config, id);
  if (mode === 'interactive') {
    if (process.getuid?.() === 0) {
      // Root acted as mail_owner for the queue; the delivery needs a root master again
      // (root first: mail_owner may not read a checkout under /root to load it).
      process.setegid!(0);
      process.seteuid!(0);
      const { runQueueAsRoot } = await import('../daemon/master.ts');
      await runQueueAsRoot(config, [`-qI${id}`, ...(o.verbose ? ['-v'] : [])]);
    } else {
      const { runQueue } = await import('../deliver/index.ts');
      await runQueue(config, { ids: [id], force: true, verbose: o.verbose });
    }
  }
  return EX.OK;
}

/** sendmail's default: a detached child delivers while the caller goes on. */
export function startBackgroundDelivery(config: Config, id: string): void {
  // Started by root, the child must be root to be the master of its own run.
  const child = asRoot(() =>
    spawn(process.execPath, [process.argv[1], `-qI${id}`, ...childArgs(config)], {
      detached: true,
      stdio: 'ignore',
      env: childEnv(config),
    }),
  );
  child.unref();
}

/** Run fn with root's effective ids when root only lent them to mail_owner (a root submission). */
function asRoot<T>(fn: () => T): T {
  if (process.getuid?.() !== 0 || process.geteuid?.() === 0) return fn();
  const [euid, egid] = [process.geteuid!(), process.getegid!()];
  process.seteuid!(0);
  process.setegid!(0);
  try {
    return fn();
  } finally {
    process.setegid!(egid);
    process.seteuid!(euid);
  }
}
