// pickup: moves finished files from the maildrop into the queue (Postfix's
// pickup(8)). The file's owner, not its contents, says who submitted it, so
// an ordinary user cannot claim another local user's envelope sender: such a
// sender is replaced by the submitter's own address and the message gets
// sendmail's X-Authentication-Warning header. Run by root only.

import fs from 'node:fs';
import path from 'node:path';
import { type Config, localDomains } from '../config/index.ts';
import { lookupUid } from '../config/users.ts';
import { log } from '../log/index.ts';
import { splitAddress } from '../message/address.ts';
import { parseControl } from './control.ts';
import { enqueue, listDropped, readDropped, removeDropped } from './enqueue.ts';
import { PREFIX } from './state.ts';
import { queuePath } from './files.ts';

const STALE_TMP_MS = 24 * 3600 * 1000;

/** Returns the IDs moved into the queue. */
export async function pickup(config: Config): Promise<string[]> {
  const moved: string[] = [];
  const domains = localDomains(config);
  for (const name of listDropped(config)) {
    try {
      const id = await pickupOne(config, name, domains);
      if (id) moved.push(id);
    } catch (e) {
      log(config, '', `maildrop/${name}: cannot pick up: ${(e as Error).message}`);
    }
  }
  removeStaleTemps(config);
  return moved;
}

async function pickupOne(config: Config, name: string, domains: Set<string>): Promise<string | undefined> {
  const dropped = readDropped(config, name);
  if (dropped === 'busy') return undefined;
  if (!dropped) {
    log(config, '', `maildrop/${name}: not a mailtk submission; removed`);
    removeDropped(config, name);
    return undefined;
  }
  const c = parseControl(dropped.control);
  if (fs.existsSync(queuePath(config, PREFIX.control, c.id))) {
    removeDropped(config, name); // picked up before a crash; the queue has it
    return undefined;
  }
  const user = lookupUid(config, dropped.uid);
  const login = user?.name ?? `#${dropped.uid}`;
  let data = dropped.data;
  let sender = c.sender;
  const a = splitAddress(sender);
  const local = sender !== '' && (a.domain === '' || domains.has(a.domain));
  if (dropped.uid !== 0 && local && a.local.toLowerCase() !== login.toLowerCase()) {
    const warning = `X-Authentication-Warning: ${config.hostname}: ${login} set sender to ${sender} using -f\n`;
    data = Buffer.concat([Buffer.from(warning), data]);
    sender = `${login}@${config.hostname}`;
  }
  const id = await enqueue(config, {
    id: c.id,
    sender,
    submitter: login,
    recipients: c.recipients,
    data,
    envid: c.envid,
    ret: c.ret,
    bodyType: c.bodyType,
    hops: c.hops,
    arrival: c.arrival,
  });
  removeDropped(config, name);
  return id;
}

function removeStaleTemps(config: Config): void {
  let names: string[];
  try {
    names = fs.readdirSync(config.maildropDir).filter((n) => n.startsWith('.tmp.'));
  } catch {
    return;
  }
  const now = Date.now();
  for (const n of names) {
    const p = path.join(config.maildropDir, n);
    try {
      if (now - fs.statSync(p).mtimeMs > STALE_TMP_MS) fs.rmSync(p, { force: true });
    } catch {
      // gone already
    }
  }
}
