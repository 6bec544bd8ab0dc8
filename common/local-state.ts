import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Development state under `.silo/` (git-ignored, mode 0600): generated secrets that must stay
 * stable across restarts of the embedded mode, and where the embedded Postgres listens.
 */
export interface LocalState {
  adminToken: string;
  masterKey: string;
  webhookSecret: string;
  /** SILO_DIRECTORY_KEY: signs directory and key records in the cache. */
  directoryKey: string;
  postgresPassword: string;
  postgresPort: number;
  /**
   * Where tenant databases live. `separate` (the default since issue #13): their own embedded
   * server (.silo/pg-tenants, tenantPostgresPort), whose logins Silo controls (client certificates
   * from .silo/tenant-ca). `shared`: on the control server, as in .silo/ directories created
   * before; kept for those so their tenants keep working (see README, "Tenant database server").
   * Undefined only until the first start decides it for a pre-existing .silo/.
   */
  tenantServer?: 'separate' | 'shared';
  tenantPostgresPassword: string;
  tenantPostgresPort: number;
}

/** Sub-directories of .silo/ used by the embedded servers. */
export const EMBEDDED_DIRS = { control: 'pg', tenants: 'pg-tenants', tenantCa: 'tenant-ca' } as const;

export function localStateDir(root = process.cwd()): string {
  return resolve(root, '.silo');
}

export function readLocalState(root?: string): LocalState | null {
  const file = join(localStateDir(root), 'state.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as LocalState) : null;
}

/** Reads the state, generating and persisting any missing value. */
export function ensureLocalState(root?: string): LocalState {
  const dir = localStateDir(root);
  // 0711: the embedded server runs as the `postgres` OS user when we are root and must traverse
  // this folder to reach its data directory; state.json itself stays 0600.
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  chmodSync(dir, 0o711);
  const current: Partial<LocalState> = readLocalState(root) ?? {};
  // A control server initialised by an older Silo may already host tenants: decided at start-up.
  const tenantServer = current.tenantServer ?? (existsSync(join(dir, EMBEDDED_DIRS.control, 'PG_VERSION')) ? undefined : 'separate');
  const state: LocalState = {
    adminToken: current.adminToken ?? `silo_admin_${randomBytes(24).toString('base64url')}`,
    masterKey: current.masterKey ?? randomBytes(32).toString('base64'),
    webhookSecret: current.webhookSecret ?? `whsec_${randomBytes(24).toString('base64')}`,
    directoryKey: current.directoryKey ?? randomBytes(32).toString('base64url'),
    postgresPassword: current.postgresPassword ?? randomBytes(18).toString('base64url'),
    postgresPort: current.postgresPort ?? 54329,
    ...(tenantServer ? { tenantServer } : {}),
    tenantPostgresPassword: current.tenantPostgresPassword ?? randomBytes(18).toString('base64url'),
    tenantPostgresPort: current.tenantPostgresPort ?? 54330,
  };
  writeLocalState(state, root);
  return state;
}

export function writeLocalState(state: LocalState, root?: string): void {
  const file = join(localStateDir(root), 'state.json');
  writeFileSync(file, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The environment the embedded mode implies, for variables the user did not set. */
export function embeddedEnv(state: LocalState, stateDir = localStateDir()): Record<string, string> {
  const db = `postgres://postgres:${encodeURIComponent(state.postgresPassword)}@127.0.0.1:${state.postgresPort}/silo`;
  const tenants: Record<string, string> = state.tenantServer === 'separate'
    ? {
      TENANT_DATABASE_URL: `postgres://postgres:${encodeURIComponent(state.tenantPostgresPassword)}@127.0.0.1:${state.tenantPostgresPort}/postgres`,
      TENANT_DATABASE_CA_DIR: join(stateDir, EMBEDDED_DIRS.tenantCa),
    }
    : { TENANT_DATABASE_URL: `postgres://postgres:${encodeURIComponent(state.postgresPassword)}@127.0.0.1:${state.postgresPort}/postgres` };
  return {
    DATABASE_URL: db,
    ...tenants,
    ADMIN_TOKEN: state.adminToken,
    SILO_MASTER_KEY: state.masterKey,
    STRIPE_WEBHOOK_SECRET: state.webhookSecret,
    // Older state files have none: ensureLocalState adds it on the next `npm start`.
    ...(state.directoryKey ? { SILO_DIRECTORY_KEY: state.directoryKey } : {}),
  };
}
