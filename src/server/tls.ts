// STARTTLS's certificate (RFC 3207): tls_cert_file and tls_key_file, or,
// when neither exists, a self-signed pair for the host name made once on the
// first start. We make it with Debian's openssl binary rather than the
// `selfsigned` npm package: no new dependency (the package pulls in
// node-forge, whose pure-JavaScript RSA key generation takes seconds), and
// openssl is what administrators already use to replace the pair. Without
// openssl, or with unreadable files, the listener runs without STARTTLS and
// the log says why.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import type { Config } from '../config/index.ts';
import { log } from '../log/index.ts';
import { MailError } from '../message/status.ts';

const DAYS = 3650;

/** Make the pair if neither file exists. Throws MailError('config') when only one does. */
export function ensureCertificate(config: Config): void {
  const haveCert = fs.existsSync(config.tlsCertFile);
  const haveKey = fs.existsSync(config.tlsKeyFile);
  if (haveCert && haveKey) return;
  if (haveCert !== haveKey) {
    const missing = haveCert ? config.tlsKeyFile : config.tlsCertFile;
    throw new MailError('config', `${missing} is missing: give both tls_cert_file and tls_key_file, or neither to have a self-signed pair made`);
  }
  makeSelfSigned(config);
}

function makeSelfSigned(config: Config): void {
  fs.mkdirSync(path.dirname(config.tlsKeyFile), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(config.tlsCertFile), { recursive: true, mode: 0o755 });
  const tmpKey = `${config.tlsKeyFile}.tmp.${process.pid}`;
  const tmpCert = `${config.tlsCertFile}.tmp.${process.pid}`;
  const host = config.hostname.replace(/[^A-Za-z0-9.-]/g, '') || 'localhost';
  // Created 0600 before openssl writes into it, so the key is never readable by others.
  fs.closeSync(fs.openSync(tmpKey, 'w', 0o600));
  const r = spawnSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', String(DAYS), '-subj', `/CN=${host}`,
      '-addext', `subjectAltName=DNS:${host}`, '-keyout', tmpKey, '-out', tmpCert],
    { encoding: 'utf8', timeout: 60_000 },
  );
  if (r.status !== 0) {
    fs.rmSync(tmpKey, { force: true });
    fs.rmSync(tmpCert, { force: true });
    const why = r.error ? r.error.message : String(r.stderr).trim().split('\n').pop();
    log(config, '', `STARTTLS: cannot make a self-signed certificate with openssl: ${why}`);
    return;
  }
  fs.chmodSync(tmpCert, 0o644);
  fs.renameSync(tmpKey, config.tlsKeyFile);
  fs.renameSync(tmpCert, config.tlsCertFile);
  log(config, '', `STARTTLS: made a self-signed certificate for ${host}: ${config.tlsCertFile}`);
}

/** The context STARTTLS uses, or undefined (and a log line) when the files cannot be used. */
export function loadTlsContext(config: Config): tls.SecureContext | undefined {
  try {
    return tls.createSecureContext({
      cert: fs.readFileSync(config.tlsCertFile),
      key: fs.readFileSync(config.tlsKeyFile),
      minVersion: 'TLSv1.2',
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      log(config, '', `STARTTLS: not offered: ${config.tlsCertFile}: ${(e as Error).message}`);
    }
    return undefined;
  }
}
