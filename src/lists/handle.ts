// What the queue runner does with mail to a list's addresses (route.ts), in
// its own process as mail_owner: no account and no program per message. A
// post is checked (loop, policy), then either held for the owners or fanned
// out as ONE new queue entry addressed to every enabled member, envelope
// sender LIST-bounces, with the RFC 2369 List-* fields; confirmations,
// notices and forwards to the owners are new entries too, all through the
// queue's one enqueue(). Returns the entries it queued (the run delivers
// them before it ends) or why the message is refused (the sender gets a DSN).
// Known limit: a runner killed after queuing the fan-out and before crossing
// the post off sends the post twice (as a |program alias would run twice).

import type { Config } from '../config/index.ts';
import { systemUser } from '../config/users.ts';
import { log } from '../log/index.ts';
import { appendToFile } from '../mailbox/index.ts';
import {
  type DeliveryStatus,
  FAILURES,
  getAll,
  getHeader,
  joinMessage,
  makeHeader,
  newMessageId,
  normalizeLineEnds,
  removeHeaders,
  rfc5322Date,
  splitMessage,
} from '../message/index.ts';
import { type QueueId, enqueue } from '../queue/index.ts';
import { failedRecipients } from './dsn-parse.ts';
import { addMember, countBounces, isMember, removeMember } from './members.ts';
import { type ListAddress, listId, roleAddress, routeList } from './route.ts';
import {
  type ListSettings,
  allLists,
  listPath,
  readMembers,
  readSettings,
  saveHeld,
  savePending,
  takeHeld,
  takePending,
  unsubscribeToken,
} from './store.ts';

export interface ListOutcome {
  queued: QueueId[];
  /** Set when the message is refused: the sender gets a DSN with it. */
  refused?: DeliveryStatus;
  /** What was done, for the log. */
  note: string;
}

export interface ListMail {
  to: ListAddress;
  sender: string;
  data: Buffer;
  hops: number;
  now: number;
}

export async function deliverToList(config: Config, m: ListMail): Promise<ListOutcome> {
  const s = readSettings(config, m.to.list);
  const data = normalizeLineEnds(m.data);
  const mail = { ...m, data };
  switch (m.to.role) {
    case 'post':
      return post(config, s, mail);
    case 'request':
      return request(config, s, mail);
    case 'owner':
      return toOwners(config, s, mail);
    case 'bounces':
      return bounces(config, s, mail);
    case 'confirm':
      return confirm(config, s, mail);
    case 'unsubscribe':
      return oneClick(config, s, mail);
    case 'approve':
    case 'reject':
      return moderate(config, s, mail);
  }
}

const done = (note: string, queued: QueueId[] = []): ListOutcome => ({ queued, note });
const refuse = (text: string, note: string): ListOutcome => ({ queued: [], refused: { status: FAILURES['not-allowed'].status, text }, note });

/** Our own post come back: its X-Loop names the list, or its List-Id is the list's. */
function cameBack(s: ListSettings, data: Buffer): boolean {
  const { headers } = splitMessage(data);
  if (getAll(headers, 'X-Loop').some((v) => v.trim().toLowerCase() === s.name)) return true;
  return getAll(headers, 'List-Id').some((v) => v.toLowerCase().includes(`<${listId(s.name)}>`));
}

async function post(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  if (cameBack(s, m.data)) return done('own post come back (X-Loop or List-Id); dropped');
  if (m.sender === '') return done('post from the null sender; dropped');
  const member = isMember(config, s.name, m.sender) !== undefined;
  if (s.policy === 'moderated' || (s.policy === 'members' && !member && s.nonmember === 'hold')) return hold(config, s, m, member ? 'moderated list' : 'not a member');
  if (s.policy === 'members' && !member) return refuse(`Only members may post to ${s.name}`, `post from non-member <${m.sender}> refused`);
  return fanOut(config, s, m.data, m.hops);
}

/** Fields the list replaces on the way out (Mailman removes the same). */
const LIST_FIELDS = ['List-Id', 'List-Post', 'List-Help', 'List-Subscribe', 'List-Unsubscribe', 'List-Unsubscribe-Post', 'List-Archive', 'List-Owner', 'X-Loop', 'Return-Path', 'Delivered-To'];

/** RFC 2369 (and RFC 2919's List-Id, RFC 8058's List-Unsubscribe-Post) for a copy of the list's. */
export function listFields(s: ListSettings): ReturnType<typeof makeHeader>[] {
  const request = roleAddress(s.name, 'request');
  const id = s.description ? `${s.description.replace(/[<>\r\n]/g, '')} <${listId(s.name)}>` : `<${listId(s.name)}>`;
  return [
    makeHeader('List-Id', id),
    makeHeader('List-Post', s.policy === 'moderated' ? `<mailto:${s.name}> (moderated)` : `<mailto:${s.name}>`),
    makeHeader('List-Help', `<mailto:${request}?subject=help>`),
    makeHeader('List-Subscribe', `<mailto:${request}?subject=subscribe>`),
    makeHeader('List-Unsubscribe', `<mailto:${request}?subject=unsubscribe>`),
    makeHeader('List-Unsubscribe-Post', 'List-Unsubscribe=One-Click'),
    makeHeader('List-Owner', `<mailto:${roleAddress(s.name, 'owner')}>`),
    makeHeader('Precedence', 'list'),
    makeHeader('X-Loop', s.name),
  ];
}

/** One queue entry to every enabled member (never a list address), from LIST-bounces; the archive gets its copy. */
export async function fanOut(config: Config, s: ListSettings, data: Buffer, hops: number): Promise<ListOutcome> {
  const { headers, body, separator } = splitMessage(data);
  const kept = removeHeaders(headers, ...LIST_FIELDS).filter((h) => !(h.name.toLowerCase() === 'precedence'));
  const out = joinMessage([...listFields(s), ...kept], body, separator);
  const lists = new Set(allLists(config));
  const recipients = readMembers(config, s.name)
    .filter((x) => !x.disabled && !routeList(lists, config.hostname, x.address))
    .map((x) => ({ address: x.address }));
  if (s.archive) await archive(config, s, out);
  if (recipients.length === 0) return done('post archived; no member to send it to');
  const id = await enqueue(config, { sender: roleAddress(s.name, 'bounces'), submitter: config.mailOwner, recipients, data: out, hops: hops + 1 });
  return done(`post sent to ${recipients.length} members as ${id}`, [id]);
}

async function archive(config: Config, s: ListSettings, data: Buffer): Promise<void> {
  const euid = process.geteuid?.() ?? 0;
  const runAs = euid === 0 ? systemUser(config.mailOwner) : { name: config.mailOwner, uid: euid, gid: process.getegid?.() ?? 0, gecos: '', home: '', shell: '' };
  if (!runAs) throw new Error(`mail_owner account "${config.mailOwner}" does not exist`);
  await appendToFile(listPath(config, s.name, 'archive'), runAs, { sender: roleAddress(s.name, 'bounces'), recipient: s.name, data });
}

async function hold(config: Config, s: ListSettings, m: ListMail, why: string): Promise<ListOutcome> {
  const token = saveHeld(config, s.name, m.sender, m.data);
  const subject = getHeader(splitMessage(m.data).headers, 'Subject') ?? '(no subject)';
  const id = await notice(config, s, s.owners, {
    subject: `${s.name}: post from ${m.sender} held for approval`,
    replyTo: roleAddress(s.name, 'approve', token),
    body: [
      `A post to ${s.name} is held (${why}).`,
      '',
      `  From:    ${m.sender}`,
      `  Subject: ${subject}`,
      '',
      `To approve it, reply to this message, or send any mail to`,
      `  ${roleAddress(s.name, 'approve', token)}`,
      `To reject it, send any mail to`,
      `  ${roleAddress(s.name, 'reject', token)}`,
      '',
      'The held message follows.',
      '',
      m.data.toString('utf8'),
    ],
  });
  return done(`post from <${m.sender}> held (${why}) as ${token}`, id);
}

async function moderate(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  if (!s.owners.includes(m.sender.toLowerCase())) return refuse(`Only the owners of ${s.name} may approve or reject posts`, `${m.to.role} from non-owner <${m.sender}> refused`);
  const held = takeHeld(config, s.name, m.to.token!);
  if (!held) return done(`${m.to.role}: no held post ${m.to.token} (decided already?)`);
  if (m.to.role === 'approve') {
    const sent = await fanOut(config, s, held.data, m.hops);
    return done(`held post from <${held.sender}> approved by <${m.sender}>; ${sent.note}`, sent.queued);
  }
  const id = held.sender
    ? await notice(config, s, [held.sender], { subject: `${s.name}: your post was rejected`, body: [`The owners of ${s.name} rejected your post.`, ''] })
    : [];
  return done(`held post from <${held.sender}> rejected by <${m.sender}>`, id);
}

async function toOwners(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  if (s.owners.length === 0) return refuse(`${s.name} has no owner`, 'mail to the owners: none set');
  const id = await enqueue(config, { sender: m.sender, submitter: config.mailOwner, recipients: s.owners.map((address) => ({ address })), data: m.data, hops: m.hops + 1 });
  return done(`forwarded to the owners as ${id}`, [id]);
}

/** The commands of a message to LIST-request: its subject, then the first lines of its body. */
export function commandsOf(data: Buffer): string[][] {
  const { headers, body } = splitMessage(data);
  const subject = (getHeader(headers, 'Subject') ?? '').replace(/^\s*((re|aw|fwd?)\s*:\s*)+/i, '');
  const lines = [subject, ...body.toString('utf8').split('\n').slice(0, 20)];
  const out: string[][] = [];
  for (const line of lines) {
    if (/^--\s*$/.test(line)) break;
    const words = line.trim().split(/\s+/).filter(Boolean);
    if (words.length && /^(subscribe|join|unsubscribe|leave|help|add|remove|del)$/i.test(words[0])) out.push([words[0].toLowerCase(), ...words.slice(1)]);
  }
  return out;
}

async function request(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  if (m.sender === '' || cameBack(s, m.data)) return done('request from the null sender or the list itself; dropped');
  const owner = s.owners.includes(m.sender.toLowerCase());
  const queued: QueueId[] = [];
  const notes: string[] = [];
  for (const [cmd, arg] of commandsOf(m.data).slice(0, 10)) {
    if ((cmd === 'add' || cmd === 'remove' || cmd === 'del') && owner && arg) {
      const changed = cmd === 'add' ? await addMember(config, s.name, arg) : await removeMember(config, s.name, arg);
      notes.push(`${cmd} ${arg} by owner <${m.sender}>: ${changed ? 'done' : 'no change'}`);
      queued.push(...(await notice(config, s, [m.sender], { subject: `${s.name}: ${cmd} ${arg}`, body: [`${cmd} ${arg}: ${changed ? 'done' : 'nothing to change'}.`] })));
    } else if (cmd === 'subscribe' || cmd === 'join' || cmd === 'unsubscribe' || cmd === 'leave') {
      const action = cmd === 'subscribe' || cmd === 'join' ? 'subscribe' : 'unsubscribe';
      const member = isMember(config, s.name, m.sender);
      if ((action === 'subscribe' && member && !member.disabled) || (action === 'unsubscribe' && !member)) {
        const state = member ? 'is a member already' : 'is not a member';
        queued.push(...(await notice(config, s, [m.sender], { subject: `${s.name}: ${action}`, body: [`${m.sender} ${state} of ${s.name}; nothing to change.`] })));
        notes.push(`${action} <${m.sender}>: ${state}`);
      } else {
        queued.push(...(await askConfirmation(config, s, action, m.sender, m.now)));
        notes.push(`${action} <${m.sender}>: confirmation sent`);
      }
      break; // one change a message
    } else if (cmd === 'help') {
      queued.push(...(await notice(config, s, [m.sender], { subject: `${s.name}: help`, body: helpText(s) })));
      notes.push(`help to <${m.sender}>`);
    }
  }
  if (notes.length === 0) {
    queued.push(...(await notice(config, s, [m.sender], { subject: `${s.name}: no command found`, body: ['No command was found in your message.', '', ...helpText(s)] })));
    notes.push(`no command from <${m.sender}>; help sent`);
  }
  return done(notes.join('; '), queued);
}

function helpText(s: ListSettings): string[] {
  const request = roleAddress(s.name, 'request');
  return [
    `Commands for ${s.name}, in the subject or the body of a message to ${request}:`,
    '  subscribe     join the list (you will be asked to confirm)',
    '  unsubscribe   leave the list (you will be asked to confirm)',
    '  help          this text',
    `The owners (${roleAddress(s.name, 'owner')}) may also send "add ADDRESS" and "remove ADDRESS".`,
  ];
}

async function askConfirmation(config: Config, s: ListSettings, action: 'subscribe' | 'unsubscribe', address: string, now: number): Promise<QueueId[]> {
  const token = savePending(config, s.name, { action, address: address.toLowerCase(), created: now });
  const confirm = roleAddress(s.name, 'confirm', token);
  return notice(config, s, [address], {
    subject: `${s.name}: confirm ${action} ${token}`,
    replyTo: confirm,
    body: [
      `Someone asked to ${action} ${address} ${action === 'subscribe' ? 'to' : 'from'} ${s.name}.`,
      '',
      `To confirm, reply to this message, or send any mail to`,
      `  ${confirm}`,
      '',
      'If you did not ask for this, ignore this message: nothing changes without the reply.',
    ],
  });
}

async function confirm(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  if (cameBack(s, m.data)) return done('confirmation from the list itself; dropped');
  const p = takePending(config, s.name, m.to.token!, m.now);
  if (!p) return refuse(`No pending request ${m.to.token} for ${s.name} (expired or used)`, `confirm ${m.to.token}: none pending`);
  if (p.action === 'subscribe') {
    await addMember(config, s.name, p.address);
    const id = await notice(config, s, [p.address], { subject: `Welcome to ${s.name}`, body: welcome(s, p.address) });
    return done(`<${p.address}> subscribed (confirmed)`, id);
  }
  const removed = await removeMember(config, s.name, p.address);
  const id = await notice(config, s, [p.address], { subject: `${s.name}: unsubscribed`, body: [`${p.address} ${removed ? 'has left' : 'was not on'} ${s.name}.`] });
  return done(`<${p.address}> unsubscribed (confirmed)`, id);
}

function welcome(s: ListSettings, address: string): string[] {
  return [
    `${address} is now a member of ${s.name}.`,
    '',
    `Post by mail to ${s.name}.`,
    `To leave, send "unsubscribe" to ${roleAddress(s.name, 'request')},`,
    `or, without confirmation, any mail to`,
    `  ${roleAddress(s.name, 'unsubscribe', unsubscribeToken(s, address))}`,
  ];
}

/** RFC 8058's one-click, by mail: the member's own token address leaves at once. */
async function oneClick(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  const member = readMembers(config, s.name).find((x) => unsubscribeToken(s, x.address) === m.to.token);
  if (!member) return done(`one-click unsubscribe ${m.to.token}: no such member`);
  await removeMember(config, s.name, member.address);
  const id = await notice(config, s, [member.address], { subject: `${s.name}: unsubscribed`, body: [`${member.address} has left ${s.name}.`] });
  return done(`<${member.address}> unsubscribed (one-click)`, id);
}

async function bounces(config: Config, s: ListSettings, m: ListMail): Promise<ListOutcome> {
  const failed = failedRecipients(m.data);
  if (failed.length === 0) return done('mail to the bounce address that is no failure report; dropped');
  const disabled = await countBounces(config, s.name, failed);
  const queued: QueueId[] = [];
  for (const d of disabled) {
    queued.push(
      ...(await notice(config, s, s.owners, {
        subject: `${s.name}: ${d.address} disabled after ${d.count} bounces`,
        body: [`Mail to ${d.address} from ${s.name} bounced ${d.count} times; the member is disabled and sent nothing more.`, '', `Re-enable with: mailtk list add ${s.name} ${d.address}`],
      })),
    );
  }
  const note = `bounce for ${failed.join(', ')}${disabled.length ? `; disabled ${disabled.map((d) => d.address).join(', ')}, owners told` : ''}`;
  return done(note, queued);
}

interface Notice {
  subject: string;
  body: string[];
  replyTo?: string;
}

/** A message from the list's robot (LIST-request), envelope sender LIST-bounces: bounces come back to the list. */
async function notice(config: Config, s: ListSettings, to: string[], n: Notice): Promise<QueueId[]> {
  if (to.length === 0) return [];
  const now = new Date();
  const headers = [
    makeHeader('From', `${s.name} list robot <${roleAddress(s.name, 'request')}>`),
    makeHeader('To', to.join(', ')),
    makeHeader('Subject', n.subject),
    makeHeader('Date', rfc5322Date(now)),
    makeHeader('Message-ID', newMessageId({ queueId: 'list', hostname: config.hostname, now })),
    ...(n.replyTo ? [makeHeader('Reply-To', n.replyTo)] : []),
    makeHeader('Auto-Submitted', 'auto-replied'),
    makeHeader('X-Loop', s.name),
    makeHeader('MIME-Version', '1.0'),
    makeHeader('Content-Type', 'text/plain; charset=utf-8'),
  ];
  const data = joinMessage(headers, Buffer.from(n.body.join('\n') + '\n'));
  const id = await enqueue(config, { sender: roleAddress(s.name, 'bounces'), submitter: config.mailOwner, recipients: to.map((address) => ({ address })), data });
  log(config, id, `list ${s.name}: notice "${n.subject}" to ${to.join(', ')}`);
  return [id];
}
