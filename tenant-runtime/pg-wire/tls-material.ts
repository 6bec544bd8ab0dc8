import { readFileSync } from 'node:fs';
import type { RuntimeConfig } from '../config';

/** The front door's certificate (chain) and private key, PEM. */
export interface TlsMaterial {
  cert: string | Buffer;
  key: string | Buffer;
}

type TlsSettings = Pick<RuntimeConfig, 'RUNTIME_PG_TLS_CERT' | 'RUNTIME_PG_TLS_KEY' | 'RUNTIME_PG_TLS_CERT_PEM' | 'RUNTIME_PG_TLS_KEY_PEM'>;

/**
 * Where the front door's TLS material comes from: PEM text (RUNTIME_PG_TLS_CERT_PEM / _KEY_PEM,
 * what ECS injects from Secrets Manager), else the files RUNTIME_PG_TLS_CERT / _KEY, else none
 * (SSLRequest is answered 'N'). Config refuses one half of a pair and both forms at once.
 */
export function frontDoorTlsMaterial(c: TlsSettings, readFile: (path: string) => Buffer = (p) => readFileSync(p)): TlsMaterial | null {
  if (c.RUNTIME_PG_TLS_CERT_PEM && c.RUNTIME_PG_TLS_KEY_PEM) return { cert: pemText(c.RUNTIME_PG_TLS_CERT_PEM), key: pemText(c.RUNTIME_PG_TLS_KEY_PEM) };
  if (c.RUNTIME_PG_TLS_CERT && c.RUNTIME_PG_TLS_KEY) return { cert: readFile(c.RUNTIME_PG_TLS_CERT), key: readFile(c.RUNTIME_PG_TLS_KEY) };
  return null;
}

/** A PEM pasted on one line (`\n` written out, as env files and consoles often keep it) gets its newlines back. */
function pemText(v: string): string {
  return v.includes('\n') ? v : v.replace(/\\n/g, '\n');
}
