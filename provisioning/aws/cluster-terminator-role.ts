import { Client } from 'pg';
import { ADMIN_SESSION_OPTIONS, ident } from '../local/pg-names';
import { ClusterMasterLogin, RDS_IAM_ROLE } from './tenant-app-role';

/** The role the tenant runtime ends abandoned backends as, on every Aurora tenant cluster (one fixed name: the IAM grant names it). */
export const CLUSTER_TERMINATOR_ROLE = 'silo_terminator';
/** The database it logs into: Aurora's maintenance database, never the tenant's. */
export const CLUSTER_TERMINATOR_DATABASE = 'postgres';
/**
 * What it is a member of. pg_signal_backend: terminate any non-superuser backend. pg_read_all_stats:
 * as the local driver's terminator (the runtime's query needs only pid and usename, which
 * pg_stat_activity shows every role). Granting both as the master user assumes Aurora's
 * rds_superuser may (not verified against Aurora); a refusal fails the step.
 */
export const CLUSTER_TERMINATOR_GRANTS = [RDS_IAM_ROLE, 'pg_signal_backend', 'pg_read_all_stats'] as const;
/** One connection per runtime replica and cluster; a refused connect is retried by the runtime. */
export const CLUSTER_TERMINATOR_CONNECTION_LIMIT = 20;

const DUPLICATE_OBJECT = '42710';
const UNIQUE_VIOLATION = '23505';
const INTERNAL_ERROR = 'XX000';

/**
 * Creates or converges the cluster's terminator role, as the master user, in one transaction:
 * LOGIN without a password, in `rds_iam` (IAM-token login only), `pg_signal_backend` and
 * `pg_read_all_stats`, none of SUPERUSER, CREATEDB, CREATEROLE, REPLICATION, BYPASSRLS; CONNECT on
 * the maintenance database. Any role that was made a member of it (other than the master session
 * itself, which Aurora may make one when it creates the role) is removed, so no tenant role can
 * become it. The session uses ADMIN_SESSION_OPTIONS. Idempotent; a lost CREATE race or a
 * concurrently updated catalog row converges again (at most 3 tries).
 */
export async function ensureClusterTerminatorRole(login: ClusterMasterLogin, role = CLUSTER_TERMINATOR_ROLE): Promise<{ role: string; revokedMembers: string[] }> {
  const c = new Client({
    host: login.host, port: login.port, database: login.database, user: login.user, password: login.password, ssl: login.ssl,
    options: ADMIN_SESSION_OPTIONS, application_name: 'silo-provisioner', connectionTimeoutMillis: login.connectTimeoutMs ?? 10_000,
  });
  await c.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      const exists = (await c.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
      try {
        return await converge(c, role, !exists);
      } catch (err) {
        const { code, message } = err as { code?: string; message?: string };
        // A lost CREATE race, or a catalog row (role, database ACL) updated concurrently: converge again.
        const raced = code === DUPLICATE_OBJECT || code === UNIQUE_VIOLATION || (code === INTERNAL_ERROR && message === 'tuple concurrently updated');
        if (!raced || attempt >= 3) throw err;
      }
    }
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function converge(c: Client, name: string, create: boolean): Promise<{ role: string; revokedMembers: string[] }> {
  const role = ident(name);
  await c.query('BEGIN');
  try {
    // INHERIT: pg_signal_backend acts through privileges inherited from membership, without SET ROLE.
    await c.query(`${create ? 'CREATE' : 'ALTER'} ROLE ${role} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS `
      + `CONNECTION LIMIT ${CLUSTER_TERMINATOR_CONNECTION_LIMIT} PASSWORD NULL`);
    await c.query(`GRANT ${CLUSTER_TERMINATOR_GRANTS.map(ident).join(', ')} TO ${role}`);
    // Only when missing: the maintenance database's row is shared, and a GRANT on it races other ACL changes there.
    const canConnect = await c.query(
      `SELECT 1 FROM pg_database d CROSS JOIN LATERAL aclexplode(d.datacl) a JOIN pg_roles r ON r.oid = a.grantee
       WHERE d.datname = $1 AND r.rolname = $2 AND a.privilege_type = 'CONNECT'`, [CLUSTER_TERMINATOR_DATABASE, name]);
    if (!canConnect.rowCount) await c.query(`GRANT CONNECT ON DATABASE ${ident(CLUSTER_TERMINATOR_DATABASE)} TO ${role}`);
    const members = await c.query<{ member: string }>(
      `SELECT m.member::regrole::text AS member FROM pg_auth_members m
       WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $1) AND m.member <> (SELECT oid FROM pg_roles WHERE rolname = session_user)`, [name]);
    for (const { member } of members.rows) await c.query(`REVOKE ${role} FROM ${member} CASCADE`);
    await c.query('COMMIT');
    return { role: name, revokedMembers: members.rows.map((r) => r.member) };
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
