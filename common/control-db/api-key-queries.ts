import { Queryable, queryRows } from './queryable';

/**
 * Plain-SQL statements on `api_keys`, for every deployable: the runtime's key lookup, its PostgreSQL
 * front door's SCRAM verifiers, and the revocation of a tenant's keys at deprovisioning. The control plane's key management (issue,
 * rotate, revoke one, list) goes through the `ApiKey` entity in
 * `control-plane/api-keys/api-key.repository.ts`, the table's other half; no other file queries
 * it (test/table-owners.test.ts).
 */

export interface ApiKeyRow {
  tenant_id: string; hash: string; revoked_at: Date | null; expires_at: Date | null;
}

/** The key with this prefix (revoked and expired ones included), or null. */
export async function findApiKeyByPrefix(db: Queryable, prefix: string): Promise<ApiKeyRow | null> {
  const [row] = await queryRows<ApiKeyRow>(db, 'SELECT tenant_id, hash, revoked_at, expires_at FROM api_keys WHERE prefix = $1', [prefix]);
  return row ?? null;
}

/** A live key's SCRAM-SHA-256 verifier (decoded from the base64 columns). */
export interface ScramVerifierRow {
  prefix: string;
  storedKey: Buffer;
  serverKey: Buffer;
}

export interface TenantScramVerifiers {
  /** Live keys with a verifier: the candidates a SCRAM client-final proof is checked against. */
  verifiers: ScramVerifierRow[];
  /** Prefixes of live keys issued before verifiers existed: they can only be sent as a cleartext password. */
  cleartextOnly: string[];
}

/**
 * The tenant's live keys (not revoked, not expired at the database's `now()`), oldest first, split
 * by whether they have a SCRAM verifier.
 */
export async function scramVerifiersOf(db: Queryable, tenantId: string): Promise<TenantScramVerifiers> {
  const rows = await queryRows<{ prefix: string; scram_stored_key: string | null; scram_server_key: string | null }>(db,
    `SELECT prefix, scram_stored_key, scram_server_key FROM api_keys
      WHERE tenant_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())
      ORDER BY created_at, id`, [tenantId]);
  const out: TenantScramVerifiers = { verifiers: [], cleartextOnly: [] };
  for (const r of rows) {
    if (r.scram_stored_key === null || r.scram_server_key === null) out.cleartextOnly.push(r.prefix);
    else out.verifiers.push({ prefix: r.prefix, storedKey: Buffer.from(r.scram_stored_key, 'base64'), serverKey: Buffer.from(r.scram_server_key, 'base64') });
  }
  return out;
}

/** Revokes every live key of the tenant. Pass the caller's EntityManager to do it inside its transaction. */
export async function revokeAllApiKeys(db: Queryable, tenantId: string): Promise<void> {
  await db.query('UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL', [tenantId]);
}
