// `mailtk`'s side of the daemon's public socket (src/daemon/admin-socket.ts,
// queue_dir/public/mailtk, as Postfix's postqueue talks to its flush service
// through public/flush): one request a connection, a line of JSON, and one
// line of JSON back. Used for what an ordinary user may ask of the root
// daemon: a queue run now (mailtk queue flush), and a domain
// administrator's changes (mailtk --login user@domain ...). The socket's
// path and the message shapes are defined here, for both sides.

import net from 'node:net';
import path from 'node:path';
import type { Config } from '../config/index.ts';
import { FAILURES, type Failure, MailError } from '../message/status.ts';
import type { AdminAnswer, AdminRequest } from './requests.ts';

/** The socket: in the queue's public directory, reachable by everyone (queue_dir is 0711). */
export function adminSocketPath(config: Config): string {
  return path.join(config.queueDir, 'public', 'mailtk');
}

/** A request line is at most this long; the server drops a client that sends more. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** An answer line (a listing of every user) may be long; the client stops reading past this. */
export const MAX_ANSWER_BYTES = 256 * 1024 * 1024;

export type SocketRequest =
  | { kind: 'flush'; ids: string[] }
  | { kind: 'admin'; login: string; password: string; request: AdminRequest };

export type SocketAnswer =
  | { ok: true; answer?: AdminAnswer; code?: number }
  | { ok: false; failure: string; error: string };

/** Thrown when no daemon answers: the caller may fall back, or says so. */
export class NoDaemon extends MailError {
  constructor(socket: string, why: string) {
    super('unavailable', `no mailtk daemon answers on ${socket} (${why}); start it as root (sendmail -bd -q20m), or see mailtk status`);
  }
}

/** One request, its answer; a refusal (ok: false) is thrown as a MailError with the daemon's exit code. */
export function askDaemon(config: Config, req: SocketRequest, timeoutMs: number): Promise<{ answer?: AdminAnswer; code?: number }> {
  const file = adminSocketPath(config);
  return new Promise((resolve, reject) => {
    const s = net.createConnection(file);
    const chunks: Buffer[] = [];
    let bytes = 0;
    let connected = false;
    s.setTimeout(timeoutMs, () => s.destroy(new MailError('timeout', `the daemon did not answer on ${file} within ${Math.round(timeoutMs / 1000)} s`)));
    s.on('connect', () => {
      connected = true;
      s.end(JSON.stringify(req) + '\n');
    });
    s.on('data', (d: Buffer) => {
      bytes += d.length;
      if (bytes > MAX_ANSWER_BYTES) s.destroy(new MailError('bad-input', `the daemon's answer is over ${MAX_ANSWER_BYTES} bytes`));
      else chunks.push(d);
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e instanceof MailError) return reject(e);
      if (!connected && ['ENOENT', 'ECONNREFUSED', 'ENOTDIR'].includes(e.code ?? '')) return reject(new NoDaemon(file, e.code === 'ECONNREFUSED' ? 'nothing listens there' : 'no such socket'));
      if (!connected && e.code === 'EACCES') return reject(new NoDaemon(file, 'not reachable by this user'));
      reject(new MailError('connection-lost', `talking to the daemon on ${file}: ${e.message}`));
    });
    s.on('end', () => {
      let a: SocketAnswer;
      try {
        a = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SocketAnswer;
      } catch {
        return reject(new MailError('connection-lost', `the daemon on ${file} closed the connection without an answer (see its log)`));
      }
      if (a.ok) return resolve({ answer: a.answer, code: a.code });
      // The daemon's failure, so that this command exits with its code.
      reject(new MailError(Object.hasOwn(FAILURES, a.failure) ? (a.failure as Failure) : 'internal', a.error));
    });
  });
}
