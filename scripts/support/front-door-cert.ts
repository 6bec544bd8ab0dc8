import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CA_CERT_FILE, ensureCaFiles, issueServerCert } from '../../provisioning/local/tenant-certs';

export interface FrontDoorCert {
  cert: string;
  key: string;
  /** The development CA clients verify the front door with (sslmode=verify-full sslrootcert=...). */
  ca: string;
}

/**
 * `npm start`'s certificate for the PostgreSQL front door: a development CA and a server
 * certificate for localhost, *.localhost (SNI <slug>.localhost) and 127.0.0.1, kept in
 * `<stateDir>/pg-tls/` (key files 0600). Made once; delete the folder to get new ones.
 */
export async function ensureFrontDoorCert(stateDir: string): Promise<FrontDoorCert> {
  const dir = join(stateDir, 'pg-tls');
  const files = { cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), ca: join(dir, CA_CERT_FILE) };
  const ca = await ensureCaFiles(dir);
  if (!existsSync(files.cert) || !existsSync(files.key)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const server = await issueServerCert(ca, ['localhost', '*.localhost', '127.0.0.1']);
    writeFileSync(files.key, server.keyPem, { mode: 0o600 });
    chmodSync(files.key, 0o600);
    writeFileSync(files.cert, server.certPem, { mode: 0o644 });
  }
  return files;
}
