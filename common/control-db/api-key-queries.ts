import { Queryable, queryRows } from './queryable';

/**
 * Plain-SQL statements on `api_keys`, for every deployable: the runtime's key lookup and the
 * revocation of a tenant's keys at deprovisioning. The control plane's key management (issue,
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

/** Revokes every live key of the tenant. Pass the caller's EntityManager to do it inside its transaction. */
export async function revokeAllApiKeys(db: Queryable, tenantId: string): Promise<void> {
  await db.query('UPDATE api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL', [tenantId]);
}
