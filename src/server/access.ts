// The access file (access_file): sendmail's access database as plain text,
// "key value" a line, read at start and on SIGHUP. Keys: Connect: (an IP,
// prefix "10.1" / "IPv6:2001:db8", CIDR, or host name and parents), From:
// and To: ("user@host", a domain and its parents, "user@"); untagged keys
// apply to all three after the tagged ones. Values: OK, RELAY, REJECT,
// DISCARD, SKIP, or ERROR with both codes ("ERROR:5.7.1:550 text"): the
// administrator names the enhanced code, mailtk never guesses it. A
// Connect: or From: OK (or RELAY) is also the DNS block lists' allow-list
// (Policy.blockLists, dnsbl.ts). Every rule remembers its file and line,
// for the log and for errors.

import fs from 'node:fs';
import net from 'node:net';
import { MailError } from '../message/status.ts';
import { type Reply, reply } from './replies.ts';

export type AccessTag = 'connect' | 'from' | 'to';

export type AccessAction =
  | { kind: 'OK' | 'RELAY' | 'REJECT' | 'DISCARD' | 'SKIP' }
  | { kind: 'ERROR'; reply: Reply };

export interface AccessRule {
  key: string;
  action: AccessAction;
  file: string;
  line: number;
}

/** Where a rule came from: "/etc/mail/access:12". */
export function ruleName(rule: AccessRule): string {
  return `${rule.file}:${rule.line}`;
}

interface CidrRule {
  block: net.BlockList;
  bits: number;
  rule: AccessRule;
}

export class AccessTable {
  private readonly exact = new Map<string, AccessRule>();
  private readonly cidrs: CidrRule[] = [];

  /** An empty table when the file does not exist. */
  static load(file: string): AccessTable {
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return new AccessTable();
      throw new MailError('config', `cannot read access file: ${(e as Error).message}`, { file, cause: e });
    }
    return AccessTable.parse(text, file);
  }

  static parse(text: string, file: string): AccessTable {
    const table = new AccessTable();
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/\r$/, '').trim();
      if (line === '' || line.startsWith('#')) return;
      const m = /^(\S+)\s+(.+)$/.exec(line);
      if (!m) throw new MailError('config', `expected "key value", found "${line}"`, { file, line: i + 1 });
      table.add(m[1], parseAction(m[2], file, i + 1), file, i + 1);
    });
    return table;
  }

  private add(rawKey: string, action: AccessAction, file: string, line: number): void {
    const colon = /^(connect|from|to):/i.exec(rawKey);
    if (!colon && /^[A-Za-z]+:/.test(rawKey) && !/^ipv6:/i.test(rawKey)) {
      throw new MailError('config', `unknown tag in "${rawKey}": use Connect:, From: or To:`, { file, line });
    }
    const tag = colon ? colon[1].toLowerCase() : '';
    const key = normalizeKey(rawKey.slice(colon ? colon[0].length : 0));
    const rule: AccessRule = { key: rawKey, action, file, line };
    if (key.includes('/') && tag !== 'from' && tag !== 'to') {
      this.cidrs.push({ ...parseCidr(key, file, line), rule });
      this.cidrs.sort((a, b) => b.bits - a.bits);
      return;
    }
    this.exact.set(`${tag}:${key}`, rule);
  }

  /** The rule for a client: its IP, IP prefixes, CIDRs, then its (confirmed) host name and parents. */
  connect(ip: string, name?: string): AccessRule | undefined {
    const keys = [...ipKeys(ip), ...(name ? domainKeys(name.toLowerCase()) : [])];
    return this.find('connect', keys) ?? this.cidr(ip);
  }

  from(address: string): AccessRule | undefined {
    return this.find('from', address === '' ? ['<>'] : addressKeys(address));
  }

  to(address: string): AccessRule | undefined {
    return this.find('to', addressKeys(address));
  }

  private find(tag: AccessTag, keys: string[]): AccessRule | undefined {
    for (const prefix of [tag, '']) {
      for (const k of keys) {
        const rule = this.exact.get(`${prefix}:${k}`);
        if (rule) return rule;
      }
    }
    return undefined;
  }

  private cidr(ip: string): AccessRule | undefined {
    const plain = unmapped(ip);
    const family = net.isIPv4(plain) ? 'ipv4' : 'ipv6';
    return this.cidrs.find((c) => c.block.check(plain, family))?.rule;
  }
}

function parseAction(value: string, file: string, line: number): AccessAction {
  const m = /^ERROR:\s*(.*)$/i.exec(value);
  if (m) return { kind: 'ERROR', reply: parseError(m[1].replace(/^"(.*)"$/, '$1'), file, line) };
  const word = value.replace(/\s+#.*$/, '').toUpperCase();
  if (word === 'OK' || word === 'RELAY' || word === 'REJECT' || word === 'DISCARD' || word === 'SKIP') return { kind: word };
  throw new MailError('config', `unknown action "${value}": use OK, RELAY, REJECT, DISCARD, SKIP or ERROR:5.7.1:550 text`, {
    file,
    line,
  });
}

/** "5.7.1:550 text" or "550 5.7.1 text"; the two codes' classes must agree. */
function parseError(s: string, file: string, line: number): Reply {
  const a = /^([245]\.\d{1,3}\.\d{1,3}):([45]\d\d)(?:\s+(.*))?$/.exec(s);
  const b = /^([45]\d\d)\s+([245]\.\d{1,3}\.\d{1,3})(?:\s+(.*))?$/.exec(s);
  const [code, status, text] = a ? [a[2], a[1], a[3]] : b ? [b[1], b[2], b[3]] : [];
  if (!code || !status) {
    throw new MailError('config', `ERROR needs a reply code and an enhanced status code, e.g. "ERROR:5.7.1:550 Go away"`, { file, line });
  }
  if (code[0] !== status[0]) throw new MailError('config', `ERROR: reply ${code} and status ${status} disagree`, { file, line });
  return reply(Number(code), status, text?.trim() || 'Access denied');
}

function normalizeKey(k: string): string {
  const lower = k.toLowerCase().replace(/\.$/, '');
  const v6 = /^ipv6:(.*)$/.exec(lower);
  if (v6) return `ipv6:${v6[1].includes('/') ? v6[1] : expandV6Prefix(v6[1])}`;
  return lower;
}

function parseCidr(key: string, file: string, line: number): { block: net.BlockList; bits: number } {
  const [addr, bits] = key.replace(/^ipv6:/, '').split('/');
  const family = net.isIP(addr);
  const n = Number(bits);
  if (family === 0 || !/^\d+$/.test(bits) || n > (family === 4 ? 32 : 128)) {
    throw new MailError('config', `bad network "${key}"`, { file, line });
  }
  const block = new net.BlockList();
  block.addSubnet(addr, n, family === 4 ? 'ipv4' : 'ipv6');
  return { block, bits: n };
}

/** "::ffff:10.1.2.3" (an IPv4 client on a dual-stack socket) -> "10.1.2.3". */
export function unmapped(ip: string): string {
  return ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
}

/** "1.2.3.4" -> 1.2.3.4, 1.2.3, 1.2, 1; IPv6 by groups of its full form, tagged "ipv6:". */
function ipKeys(ip: string): string[] {
  const plain = unmapped(ip);
  if (net.isIPv4(plain)) {
    const parts = plain.split('.');
    return parts.map((_, i) => parts.slice(0, parts.length - i).join('.'));
  }
  const groups = expandV6Prefix(plain.toLowerCase()).split(':');
  return groups.map((_, i) => `ipv6:${groups.slice(0, groups.length - i).join(':')}`);
}

/** "2001:DB8::1" -> "2001:db8:0:0:0:0:0:1"; a prefix without "::" stays as written, lower case. */
function expandV6Prefix(s: string): string {
  if (!s.includes('::')) return s.split(':').map((g) => g.replace(/^0+(?=.)/, '')).join(':');
  const [head, tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const zeros = Array(Math.max(0, 8 - h.length - t.length)).fill('0');
  return [...h, ...zeros, ...t].map((g) => g.replace(/^0+(?=.)/, '')).join(':');
}

/** "a.b.example.com" -> itself, b.example.com, example.com, com. */
function domainKeys(domain: string): string[] {
  if (domain.startsWith('[')) return [domain];
  const labels = domain.split('.');
  return labels.map((_, i) => labels.slice(i).join('.'));
}

/** "User@Host.Example" -> user@host.example, host.example, example, user@. */
function addressKeys(address: string): string[] {
  const at = address.lastIndexOf('@');
  const lower = address.toLowerCase();
  if (at < 0) return [lower, `${lower}@`];
  return [lower, ...domainKeys(lower.slice(at + 1)), lower.slice(0, at + 1)];
}
