// Rate limits per client address, as Postfix's anvil(8) keeps them:
// connections, messages (MAIL) and recipients (RCPT) counted per address in
// a fixed window of client_rate_time_unit (a minute), each checked against
// its smtp_client_*_rate_limit (0 = no limit). A client in
// client_limit_exceptions is never counted. A refusal is logged with the key
// that made it; the listener and the session only ask hit() and send the
// reply it returns. Counters live in this process only: a restart forgets
// them, as anvil's do. Known limit: the window is fixed, not sliding, so a
// client may reach twice the limit across a window's edge (anvil alike).

import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { LogThrottle } from './conn-control.ts';
import { type Reply, fail } from './replies.ts';

export type RateEvent = 'connection' | 'message' | 'recipient';

interface Window {
  start: number;
  counts: Record<RateEvent, number>;
}

const KEY: Record<RateEvent, string> = {
  connection: 'smtp_client_connection_rate_limit',
  message: 'smtp_client_message_rate_limit',
  recipient: 'smtp_client_recipient_rate_limit',
};

export class Anvil {
  private readonly windows = new Map<string, Window>();
  private lastSweep = 0;
  private readonly refusalLog = new LogThrottle(10_000);

  constructor(private config: Config, private readonly exempt: (ip: string) => boolean) {}

  reload(config: Config): void {
    this.config = config;
  }

  private limit(event: RateEvent): number {
    const r = this.config.smtpClientRateLimits;
    return event === 'connection' ? r.connections : event === 'message' ? r.messages : r.recipients;
  }

  /** Count one event from `ip`; the refusal when it goes past the limit (logged), else undefined. */
  hit(ip: string, event: RateEvent, id = ''): Reply | undefined {
    const max = this.limit(event);
    if (max === 0 || this.exempt(ip)) return undefined;
    const now = Date.now();
    const unit = this.config.clientRateTimeUnitMs;
    this.sweep(now, unit);
    let w = this.windows.get(ip);
    if (!w || now - w.start >= unit) {
      w = { start: now, counts: { connection: 0, message: 0, recipient: 0 } };
      this.windows.set(ip, w);
    }
    if (w.counts[event] >= max) {
      const rate = `rate ${w.counts[event] + 1}/${Math.round(unit / 1000)}s (${KEY[event]} = ${max})`;
      this.refusalLog.note(`${ip} ${event}`, (more) => log(this.config, id, `rejecting ${event} from [${ip}]: ${rate}${more}`));
      return this.refusal(event);
    }
    w.counts[event]++;
    return undefined;
  }

  private refusal(event: RateEvent): Reply {
    const host = this.config.hostname;
    if (event === 'connection') return fail('connection-rate', `${host} Error: too many connections from your address`);
    if (event === 'message') return fail('message-rate', 'Error: too much mail from your address, try again later');
    return fail('recipient-rate', 'Error: too many recipients from your address, try again later');
  }

  /** Forget windows that have ended, at most once per unit: memory stays bounded by the clients of one unit. */
  private sweep(now: number, unit: number): void {
    if (now - this.lastSweep < unit) return;
    this.lastSweep = now;
    for (const [ip, w] of this.windows) if (now - w.start >= unit) this.windows.delete(ip);
  }
}
