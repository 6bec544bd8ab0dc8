import type { ConnectionOptions } from 'node:tls';
import { Client } from 'pg';
import { ADMIN_SESSION_OPTIONS, ident, literal } from '../local/pg-names';
import type { TierSettings } from '../tiers';
import { resetRoleSelfSettings } from '../role-settings';
import { ConnectionBudget, DEFAULT_CONNECTION_BUDGET, roleConnectionLimit } from '../connection-budget';
import { ensureSiloSchema, SiloSchemaResult } from '../local/silo-schema';

/** The role tenant SQL runs as on an Aurora tenant cluster (one tenant per cluster, so one fixed name). */
export const TENANT_APP_ROLE = 'tenant_app';
/** Aurora's built-in group: a member logs in with an IAM token only, never with a password. */
export const RDS_IAM_ROLE = 'rds_iam';
/** Same default as the local driver's tenant roles. */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000;

const DUPLICATE_OBJECT = '42710';
const UNIQUE_VIOLATION = '23505';
const INSUFFICIENT_PRIVILEGE = '42501';

/** The worker's login to a tenant cluster as its master user (password from the RDS-managed secret). */
export interface ClusterMasterLogin {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string;
  /** `false` only against a local test server; RDS forces TLS (`rds.force_ssl = 1`). */
  ssl: ConnectionOptions | false;
  connectTimeoutMs?: number;
}

/** What the convergence did; recorded as the step's result. */
export interface TenantAppRoleResult {
  role: string;
  /**
   * `set`: the tier's temp_file_limit is on the role. `refused`: the master user may not set it
   * (temp_file_limit is superuser-context; Aurora's rds_superuser is assumed to be allowed, not
   * verified against a real cluster here), so no per-role temp file limit applies.
   */
  tempFileLimit: 'set' | 'refused';
  /** Schema `silo` (Silo's ledger, owned by the master user, read-only to the role): what its converge did. */
  silo?: SiloSchemaResult;
}

/**
 * Creates or converges the tenant's application role on its cluster, as the master user, in one
 * transaction: LOGIN without a password, in `rds_iam` (IAM-token login only), none of SUPERUSER,
 * CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS; CONNECTION LIMIT from the tier's per-replica
 * cap and the connection budget (connection-budget.ts), statement_timeout from the tier, idle_in_transaction_session_timeout and temp_file_limit as on the local driver. Per-role
 * defaults the tenant set on itself (userset parameters, with or without IN DATABASE) are reset
 * first. The tenant database and its public schema are opened to this role and closed to PUBLIC.
 * The session uses ADMIN_SESSION_OPTIONS, so defaults a tenant could set cannot steer it.
 * Idempotent, and safe to run concurrently (a lost CREATE race becomes the ALTER path).
 */
export async function ensureTenantAppRole(login: ClusterMasterLogin, tier: TierSettings, role = TENANT_APP_ROLE, budget: ConnectionBudget = DEFAULT_CONNECTION_BUDGET): Promise<TenantAppRoleResult> {
  const limit = roleConnectionLimit(tier.connectionLimit, budget);
  const c = new Client({
    host: login.host, port: login.port, database: login.database, user: login.user, password: login.password, ssl: login.ssl,
    options: ADMIN_SESSION_OPTIONS, application_name: 'silo-provisioner', connectionTimeoutMillis: login.connectTimeoutMs ?? 10_000,
  });
  await c.connect();
  try {
    const exists = async () => (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
    let result: TenantAppRoleResult;
    if (await exists()) result = await converge(c, login.database, tier, limit, role, false);
    else {
      try {
        result = await converge(c, login.database, tier, limit, role, true);
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code !== DUPLICATE_OBJECT && code !== UNIQUE_VIOLATION) throw err;
        result = await converge(c, login.database, tier, limit, role, false); // lost a race
      }
    }
    // Before the first migration (provisioning) and on every rotation: the ledger out of the role's public
    // schema, owned by the master user. Joining the role: dropping its legacy tables needs their owner's rights.
    return { ...result, silo: await ensureSiloSchema(c, { joinRoles: [role] }) };
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function converge(c: Client, database: string, tier: TierSettings, connectionLimit: number, name: string, create: boolean): Promise<TenantAppRoleResult> {
  const role = ident(name);
  const db = ident(database);
  await c.query('BEGIN');
  try {
    // Everything interpolated here is generated (role name, database name, tier numbers), not tenant input.
    await c.query(`${create ? 'CREATE' : 'ALTER'} ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS `
      + `CONNECTION LIMIT ${connectionLimit} PASSWORD NULL`);
    await resetRoleSelfSettings(c, name);
    await c.query([
      `GRANT ${ident(RDS_IAM_ROLE)} TO ${role}`,
      `ALTER ROLE ${role} SET statement_timeout = ${Math.floor(tier.statementTimeoutMs)}`,
      `ALTER ROLE ${role} SET idle_in_transaction_session_timeout = ${IDLE_IN_TRANSACTION_TIMEOUT_MS}`,
      `REVOKE ALL ON DATABASE ${db} FROM PUBLIC`,
      `GRANT CONNECT, TEMPORARY, CREATE ON DATABASE ${db} TO ${role}`,
      'REVOKE ALL ON SCHEMA public FROM PUBLIC',
      `GRANT USAGE, CREATE ON SCHEMA public TO ${role}`,
    ].join('; '));
    let tempFileLimit: TenantAppRoleResult['tempFileLimit'] = 'set';
    await c.query('SAVEPOINT temp_file_limit');
    try {
      await c.query(`ALTER ROLE ${role} SET temp_file_limit = ${literal(`${Math.floor(tier.tempFileLimitMb)}MB`)}`);
      await c.query('RELEASE SAVEPOINT temp_file_limit');
    } catch (err) {
      if ((err as { code?: string }).code !== INSUFFICIENT_PRIVILEGE) throw err;
      await c.query('ROLLBACK TO SAVEPOINT temp_file_limit');
      tempFileLimit = 'refused';
    }
    await c.query('COMMIT');
    return { role: name, tempFileLimit };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
