import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, issueServerCert, PemPair } from '../../provisioning/local/tenant-certs';

/** A throwaway CA and a server certificate for the runtime's PostgreSQL front door, on disk. */
export interface FrontDoorTls {
  dir: string;
  ca: PemPair;
  /** The CA certificate's file, for `sslrootcert=` (libpq, pg's connection strings). */
  caFile: string;
  /** RUNTIME_PG_TLS_CERT / RUNTIME_PG_TLS_KEY for `startTestRuntime`. */
  env: { RUNTIME_PG_TLS_CERT: string; RUNTIME_PG_TLS_KEY: string };
  remove(): void;
}

/** Writes a new CA and a server certificate for `hosts` (names or IP addresses) to a temp folder. */
export async function createFrontDoorTls(hosts: string[]): Promise<FrontDoorTls> {
  const dir = mkdtempSync(join(tmpdir(), 'silo-front-door-tls-'));
  const ca = await createCa('front door test CA');
  const server = await issueServerCert(ca, hosts);
  const file = (name: string, pem: string) => {
    writeFileSync(join(dir, name), pem);
    return join(dir, name);
  };
  const env = { RUNTIME_PG_TLS_CERT: file('tls.crt', server.certPem), RUNTIME_PG_TLS_KEY: file('tls.key', server.keyPem) };
  return { dir, ca, caFile: file('ca.crt', ca.certPem), env, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
