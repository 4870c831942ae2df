// Routes for remote mail: the transport_map file (sendmail's mailertable,
// Postfix's transport table) and the smart_host key. A route says where a
// recipient domain's mail goes: an SMTP nexthop, with or without an MX
// lookup, or an error that returns it at once. Lookup order is sendmail's:
// the exact domain, then ".parent" entries from the most specific up, then
// ".", then smart_host, then the domain's own MX records.
// The file is parsed whole into a Map; a bad line is an error naming file:line.

import fs from 'node:fs';
import net from 'node:net';
import type { Config } from '../config/index.ts';
import { type DeliveryStatus, MailError } from '../message/status.ts';

export const SMTP_PORT = 25;

/** Where mail goes: host is a name or an IP; mx says whether to look up host's MX records. */
export type Route =
  | { kind: 'smtp'; host: string; port: number; mx: boolean }
  | { kind: 'error'; status: DeliveryStatus };

/** A nexthop as written, before the recipient domain fills in an empty host ("smtp:"). */
type Entry = Route | { kind: 'smtp'; host: ''; port: number; mx: true };

export type TransportMap = Map<string, Entry>;

const MAILERS = new Set(['smtp', 'esmtp', 'relay']);
const STATUS = /^[45]\.\d{1,3}\.\d{1,3}$/;

/** Parse transport_map text: "domain nexthop" lines, # comments. */
export function parseTransportMap(text: string, file: string): TransportMap {
  const map: TransportMap = new Map();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line === '') return;
    const where = { file, line: i + 1 };
    const m = /^(\S+)\s+(.+)$/.exec(line);
    if (!m) throw new MailError('config', `expected "domain nexthop", found "${line}"`, where);
    const key = m[1].toLowerCase();
    if (!/^(\.|\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?|\[[^\]]+\])$/.test(key)) {
      throw new MailError('config', `"${m[1]}" is not a domain, ".domain" or "."`, where);
    }
    map.set(key.length > 1 ? key.replace(/\.$/, '') : key, parseEntry(m[2], where));
  });
  return map;
}

function parseEntry(value: string, where: { file?: string; line?: number }): Entry {
  const colon = value.indexOf(':');
  const mailer = colon < 0 ? '' : value.slice(0, colon).toLowerCase();
  const rest = value.slice(colon + 1);
  if (mailer === 'error') return { kind: 'error', status: parseError(rest, where) };
  if (!MAILERS.has(mailer)) {
    throw new MailError('config', `"${value}": expected smtp:[host]:port, smtp:host or error:5.x.x text`, where);
  }
  if (rest.trim() === '') return { kind: 'smtp', host: '', port: SMTP_PORT, mx: true };
  const hop = parseNexthop(rest.trim());
  if (!hop) throw new MailError('config', `"${value}": bad host or port after "${mailer}:"`, where);
  return hop;
}

/** "5.7.1 text" (Postfix) or "5.7.1:550 text" (sendmail). */
function parseError(rest: string, where: { file?: string; line?: number }): DeliveryStatus {
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?::\d{3})?(?:\s+(.*))?$/.exec(rest.trim());
  if (!m || !STATUS.test(m[1])) {
    throw new MailError('config', `"error:${rest}": expected error:5.x.x text (or 4.x.x to defer)`, where);
  }
  return { status: m[1], text: m[2]?.trim() || 'Mail to this domain is not accepted' };
}

/** "[host]:port", "[host]", "host:port" or "host"; undefined when malformed. */
export function parseNexthop(v: string): Extract<Route, { kind: 'smtp' }> | undefined {
  const m = /^\[([^\]\s]+)\](?::(\d{1,5}))?$/.exec(v) ?? /^([A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(v);
  if (!m) return undefined;
  const port = m[2] === undefined ? SMTP_PORT : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const bracketed = v.startsWith('[');
  const host = m[1].replace(/^ipv6:/i, '').replace(/\.$/, '');
  if (bracketed && host.includes(':') && net.isIP(host) !== 6) return undefined;
  return { kind: 'smtp', host, port, mx: !bracketed };
}

/** Read transport_map; a missing file is an empty map. */
export function loadTransportMap(config: Config): TransportMap {
  let text: string;
  try {
    text = fs.readFileSync(config.transportMap, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new MailError('config', `cannot read transport_map: ${(e as Error).message}`, { file: config.transportMap, cause: e });
  }
  return parseTransportMap(text, config.transportMap);
}

/** The smart_host key as a route, or undefined when unset. */
export function smartHostRoute(config: Config): Route | undefined {
  if (!config.smartHost) return undefined;
  const hop = parseNexthop(config.smartHost.replace(/^smtp:/i, ''));
  if (!hop) throw new MailError('config', `smart_host = ${config.smartHost}: expected "[host]:port" or "host"`, { file: config.file });
  return hop;
}

/** The route for a recipient domain: transport_map, then smart_host, then the domain's MX. */
export function routeFor(map: TransportMap, smartHost: Route | undefined, domain: string): Route {
  const d = domain.toLowerCase().replace(/\.$/, '');
  const entry = lookup(map, d);
  if (entry) return entry.kind === 'smtp' && entry.host === '' ? { ...entry, host: d } : entry;
  if (smartHost) return smartHost;
  // An address literal (user@[192.0.2.1]) names the host itself: no DNS at all.
  if (d.startsWith('[')) return parseNexthop(d) ?? { kind: 'error', status: { status: '5.1.2', text: `Bad address literal ${domain}` } };
  return { kind: 'smtp', host: d, port: SMTP_PORT, mx: true };
}

function lookup(map: TransportMap, domain: string): Entry | undefined {
  const exact = map.get(domain);
  if (exact) return exact;
  const labels = domain.split('.');
  for (let i = 1; i < labels.length; i++) {
    const hit = map.get('.' + labels.slice(i).join('.'));
    if (hit) return hit;
  }
  return map.get('.');
}
