import { createHash } from 'node:crypto';
import type { Pool } from 'pg';
import type { SecretStore, TenantSecret } from '../secrets/secret-store';
import { ident, literal } from './pg-names';
import { generatePassword, scramVerifier } from './scram';

/** The secret (in the installation's secret store) holding the terminator role's login. */
export const TERMINATOR_SECRET_NAME = 'silo/system/backend-terminator';

/** The login the runtime reads: the role, its password, and the (non-tenant) database it logs into. */
export interface TerminatorSecret extends TenantSecret {
  database: string;
}

/** One role per installation (instances may share a server): `silo_terminator_<12 hex of the instance id>`. */
export function terminatorRoleName(instanceId: string): string {
  return `silo_terminator_${createHash('sha256').update(instanceId).digest('hex').slice(0, 12)}`;
}

/**
 * Creates (or converges) the role the tenant runtime uses to end backends that ignore cancels:
 * LOGIN but NOSUPERUSER and nothing else, a member of pg_signal_backend (terminate any
 * non-superuser backend) and pg_read_all_stats (see every session in pg_stat_activity), allowed
 * to connect only to the maintenance database. Tenant roles are not members of it and cannot
 * become it, signal it, or learn its password (kept in the secret store). Idempotent.
 */
export async function ensureTerminatorRole(admin: Pool, o: { secretStore: SecretStore; instanceId: string; marker: string; database: string }): Promise<void> {
  const role = terminatorRoleName(o.instanceId);
  const ref = await o.secretStore.create(TERMINATOR_SECRET_NAME, { username: role, password: generatePassword(), database: o.database } as TerminatorSecret);
  let secret = (await o.secretStore.get(ref)) as TerminatorSecret;
  if (secret.username !== role || secret.database !== o.database) {
    secret = { username: role, password: generatePassword(), database: o.database };
    await o.secretStore.rotate(ref, secret);
  }
  const verifier = literal(await scramVerifier(secret.password));
  const attrs = `LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT 20 PASSWORD ${verifier}`;
  const exists = (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;
  if (!exists) {
    await admin.query(`CREATE ROLE ${ident(role)} WITH ${attrs}`).catch(async (err: { code?: string }) => {
      if (err.code !== '42710' && err.code !== '23505') throw err;
    });
  }
  // INHERIT: pg_signal_backend acts through privileges inherited from membership, without SET ROLE.
  await admin.query(
    `ALTER ROLE ${ident(role)} WITH ${attrs}; GRANT pg_signal_backend, pg_read_all_stats TO ${ident(role)}; ` +
      `GRANT CONNECT ON DATABASE ${ident(o.database)} TO ${ident(role)}; COMMENT ON ROLE ${ident(role)} IS ${literal(o.marker)}`,
  );
}

/** Removes the installation's terminator role (its grant on `database` first); for teardown of a throwaway installation. */
export function dropTerminatorRoleSql(instanceId: string, database: string): string {
  const role = ident(terminatorRoleName(instanceId));
  return `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${literal(terminatorRoleName(instanceId))}) THEN ` +
    `EXECUTE ${literal(`REVOKE ALL ON DATABASE ${ident(database)} FROM ${role}`)}; EXECUTE ${literal(`DROP ROLE ${role}`)}; END IF; END $$`;
}
