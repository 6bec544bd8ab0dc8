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
  postgresPassword: string;
  postgresPort: number;
}

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
  const state: LocalState = {
    adminToken: current.adminToken ?? `silo_admin_${randomBytes(24).toString('base64url')}`,
    masterKey: current.masterKey ?? randomBytes(32).toString('base64'),
    webhookSecret: current.webhookSecret ?? `whsec_${randomBytes(24).toString('base64')}`,
    postgresPassword: current.postgresPassword ?? randomBytes(18).toString('base64url'),
    postgresPort: current.postgresPort ?? 54329,
  };
  const file = join(dir, 'state.json');
  writeFileSync(file, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return state;
}

/** The environment the embedded mode implies, for variables the user did not set. */
export function embeddedEnv(state: LocalState): Record<string, string> {
  const db = `postgres://postgres:${encodeURIComponent(state.postgresPassword)}@127.0.0.1:${state.postgresPort}/silo`;
  return {
    DATABASE_URL: db,
    TENANT_DATABASE_URL: `postgres://postgres:${encodeURIComponent(state.postgresPassword)}@127.0.0.1:${state.postgresPort}/postgres`,
    ADMIN_TOKEN: state.adminToken,
    SILO_MASTER_KEY: state.masterKey,
    STRIPE_WEBHOOK_SECRET: state.webhookSecret,
  };
}
