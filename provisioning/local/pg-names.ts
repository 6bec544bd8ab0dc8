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
