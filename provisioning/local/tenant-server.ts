import { chownSync, chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TENANT_DB_PATTERN } from './pg-names';
import { crlSigner, ensureCaFiles, issueServerCert, TENANT_GROUP } from './tenant-certs';
import { ensureCrlFile } from './tenant-crl';

/**
 * Configuration of a PostgreSQL server Silo runs for tenant databases (the embedded tenant server
 * of `npm start`). Silo writes its pg_hba.conf and TLS files at every start, so what gates a tenant
 * login is a certificate only Silo can issue, never a password the tenant can change.
 */

/** pg_hba `user` pattern for tenant role names (PostgreSQL 16+ regular expressions). */
const TENANT_ROLE_REGEX = `/${TENANT_DB_PATTERN.source}`;

/**
 * The tenant server's pg_hba.conf, first match wins:
 * - tenant roles (members of `silo_tenants`): TLS + client certificate only, from loopback, and
 *   only to the database named like the role (`sameuser`: t_<hex> is both);
 * - every other way in for a tenant role (other databases, no TLS, password, other hosts, the
 *   socket), and any role named like a tenant that is not (yet) in the group: rejected;
 * - the admin (and Silo's other roles, whose passwords tenants cannot set): SCRAM over loopback.
 */
export function renderTenantHba(): string {
  const lines = [
    '# Written by Silo at every start of this server (provisioning/local/tenant-server.ts); edits are overwritten.',
    '# TYPE   DATABASE     USER                 ADDRESS        METHOD',
    `local    all          all                                 reject`,
    `host     replication  all                  all            reject`,
    `hostssl  sameuser     +${TENANT_GROUP}        127.0.0.1/32   cert`,
    `hostssl  sameuser     +${TENANT_GROUP}        ::1/128        cert`,
    `host     all          +${TENANT_GROUP}        all            reject`,
    `host     all          ${TENANT_ROLE_REGEX}  all     reject`,
    `host     all          all                  127.0.0.1/32   scram-sha-256`,
    `host     all          all                  ::1/128        scram-sha-256`,
    `host     all          all                  all            reject`,
  ];
  return lines.join('\n') + '\n';
}

export const SERVER_CERT_FILE = 'silo-server.crt';
export const SERVER_KEY_FILE = 'silo-server.key';
export const SERVER_CA_FILE = 'silo-ca.crt';
/** The server's copy of the CA's CRL (tenant-crl.ts): a revoked tenant certificate fails the TLS handshake. */
export const SERVER_CRL_FILE = 'silo-crl.pem';

export interface TenantServerSizing {
  maxConnections: number;
  /**
   * The shared lock table holds max_locks_per_transaction × (max_connections +
   * max_prepared_transactions) locks for the whole server; one session can take all of it. On
   * the tenant server that only hurts tenants (the control database is elsewhere).
   */
  maxLocksPerTransaction: number;
}

export const DEFAULT_TENANT_SERVER_SIZING: TenantServerSizing = { maxConnections: 300, maxLocksPerTransaction: 128 };

/** `postgres -c` settings of a tenant server Silo runs (paths relative to its data directory). */
export function tenantServerFlags(sizing: TenantServerSizing = DEFAULT_TENANT_SERVER_SIZING): string[] {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '', // TCP only: pg_hba has no socket path in
    max_connections: String(sizing.maxConnections),
    max_locks_per_transaction: String(sizing.maxLocksPerTransaction),
    max_prepared_transactions: '0',
    ssl: 'on',
    ssl_cert_file: SERVER_CERT_FILE,
    ssl_key_file: SERVER_KEY_FILE,
    ssl_ca_file: SERVER_CA_FILE,
    ssl_crl_file: SERVER_CRL_FILE,
    ssl_min_protocol_version: 'TLSv1.2',
    password_encryption: 'scram-sha-256',
  };
  return Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
}

/**
 * Writes pg_hba.conf and the TLS files into an initialised data directory, owned like the data
 * directory (the server refuses a key file other users can read). The CA lives in `caDir`,
 * outside the data directory, and is created on first use; the server certificate is re-issued
 * at every start, so it never expires under a long-lived installation. The CRL is the CA's
 * (`<caDir>/crl.pem`, created empty on first use), copied as it is: revocations survive restarts.
 */
export async function writeTenantServerFiles(dataDir: string, caDir: string, hosts: string[] = ['127.0.0.1', 'localhost', '::1']): Promise<void> {
  const ca = await ensureCaFiles(caDir);
  const server = await issueServerCert(ca, hosts);
  const crl = await ensureCrlFile(caDir, await crlSigner(ca));
  const owner = statSync(dataDir);
  const put = (name: string, content: string, mode: number) => {
    const file = join(dataDir, name);
    writeFileSync(file, content, { mode });
    chmodSync(file, mode);
    chownSync(file, owner.uid, owner.gid);
  };
  put(SERVER_CA_FILE, ca.certPem, 0o644);
  put(SERVER_CERT_FILE, server.certPem, 0o644);
  put(SERVER_KEY_FILE, server.keyPem, 0o600);
  put(SERVER_CRL_FILE, crl, 0o644);
  put('pg_hba.conf', renderTenantHba(), 0o600);
}

/**
 * What the local driver's configuration gives up, as start-up warnings: none when the tenant
 * databases live on their own server whose logins Silo controls.
 */
export function tenantServerWarnings(o: { driver: string; controlUrl: string; tenantUrl?: string; caDir?: string }): string[] {
  if (o.driver !== 'local') return [];
  const out: string[] = [];
  const control = new URL(o.controlUrl);
  const tenant = o.tenantUrl ? new URL(o.tenantUrl) : null;
  const sameServer = !tenant || (tenant.hostname === control.hostname && (tenant.port || '5432') === (control.port || '5432'));
  if (sameServer) {
    out.push(
      `tenant databases share the control database's PostgreSQL server (${control.hostname}:${control.port || '5432'}): ` +
        'a tenant that exhausts its lock table, connection slots or disk takes the admin API, webhooks and the job queue down with it. ' +
        'Set TENANT_DATABASE_URL to another server (see README, "Tenant database server").',
    );
  }
  if (!o.caDir) {
    out.push(
      'tenant roles log in with passwords on a server Silo does not run (no TENANT_DATABASE_CA_DIR): a tenant can change its own ' +
        'password through SQL and then connect directly, around API keys, rate limits and result caps. Silo cannot enforce this; ' +
        'restrict tenant roles in that server\'s pg_hba.conf (see README).',
    );
  }
  return out;
}
