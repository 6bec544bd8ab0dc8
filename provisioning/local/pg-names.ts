/** Opaque names: database names are visible to every role, so they carry the tenant id, never the slug. */
export function tenantDbName(tenantId: string): string {
  if (!/^[0-9a-f-]{36}$/.test(tenantId)) throw new Error(`not a tenant id: ${tenantId}`);
  return `t_${tenantId.replace(/-/g, '')}`;
}

export const TENANT_DB_PATTERN = /^t_[0-9a-f]{32}$/;

export function tenantIdFromDbName(name: string): string | null {
  if (!TENANT_DB_PATTERN.test(name)) return null;
  const h = name.slice(2);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Quotes an identifier; our names are generated, but quoting keeps that from mattering. */
export function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

export function literal(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

/**
 * Startup options of every admin (superuser) session Silo opens on a tenant database server. They
 * override per-database and per-role defaults (ALTER DATABASE/ROLE … SET), which a tenant that
 * owned its database could set: `role` would make the session run as the tenant, a read-only
 * default or a 1 ms timeout would make offboarding and tier changes fail.
 */
export const ADMIN_SESSION_OPTIONS =
  '-c role=none -c default_transaction_read_only=off -c statement_timeout=0 -c lock_timeout=30000 -c idle_in_transaction_session_timeout=0 -c search_path=pg_catalog';
