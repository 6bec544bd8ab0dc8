import { Queryable, queryRows } from './queryable';

/**
 * Reads of the tenant aggregate (`tenants` + `tenant_connections`) for every deployable: the
 * runtime's directory, the CLI, the fleet migration runner, the reconciler and the storage sweep.
 * Plain SQL, no framework, so the runtime can use it. The control plane's writes (and its
 * pipelined reads) are in `control-plane/tenants/tenant.repository.ts`, the aggregate's other
 * half; no other file queries these tables (test/table-owners.test.ts).
 *
 * Rows come back with the tables' column names.
 */

/** A tenant's connection columns; all null when it has no `tenant_connections` row. */
export interface ConnectionColumns {
  host: string | null;
  port: number | null;
  database: string | null;
  username: string | null;
  secret_ref: string | null;
}

export interface DirectoryRow extends ConnectionColumns {
  id: string; slug: string; status: string; tier: string; custom_domain: string | null; version: number; rotated_at: Date | null;
}

/** The tenant with this slug for the directory: the live one, else the most recently created deleted one; null when none. */
export async function findDirectoryRow(db: Queryable, slug: string): Promise<DirectoryRow | null> {
  const [row] = await queryRows<DirectoryRow>(db, `
    SELECT t.id, t.slug, t.status, t.tier, t.custom_domain, t.version,
           c.host, c.port, c.database, c.username, c.secret_ref, c.rotated_at
      FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id
     WHERE t.slug = $1
     ORDER BY (t.status = 'deleted'), t.created_at DESC LIMIT 1`, [slug]);
  return row ?? null;
}

/** The slug of the live (not deleted) tenant with this id, or null. */
export async function findLiveSlug(db: Queryable, tenantId: string): Promise<string | null> {
  const [row] = await queryRows<{ slug: string }>(db, `SELECT slug FROM tenants WHERE id = $1 AND status <> 'deleted'`, [tenantId]);
  return row?.slug ?? null;
}

export interface TenantRefRow {
  id: string; slug: string; status: string; tier: string; region: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The tenant a CLI or admin reference names: the tenant with this id, else the slug's live
 * tenant, else its most recently deleted one (slugs are reused after an offboarding); null when none.
 */
export async function findTenant(db: Queryable, ref: string): Promise<TenantRefRow | null> {
  const id = UUID.test(ref) ? ref.toLowerCase() : null;
  const [row] = await queryRows<TenantRefRow>(db, `
    SELECT id, slug, status, tier, region FROM tenants WHERE id = $1::uuid OR slug = $2::text
     ORDER BY (id = $1::uuid) IS TRUE DESC, (status <> 'deleted') DESC, created_at DESC LIMIT 1`, [id, ref]);
  return row ?? null;
}

export type TenantSelection = { all: true } | { slugs: string[] } | { tier: string };

export interface MigrationTenantRow extends ConnectionColumns {
  id: string; slug: string; status: string; tier: string;
}

/**
 * Tenants for a fleet migration run, in creation order. `--all` and `--tier` leave out deleted
 * tenants; a named slug is always returned, once: its live tenant, else its most recently deleted
 * one (a slug freed by an offboarding may be taken by a new tenant).
 */
export function listTenantsForMigration(db: Queryable, selection: TenantSelection): Promise<MigrationTenantRow[]> {
  const slugs = 'slugs' in selection ? selection.slugs : null;
  const tier = 'tier' in selection ? selection.tier : null;
  return queryRows<MigrationTenantRow>(db, `
    SELECT t.id, t.slug, t.status, t.tier, c.host, c.port, c.database, c.username, c.secret_ref
      FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id
     WHERE ($1::text[] IS NULL OR t.slug = ANY($1::text[]))
       AND ($2::text IS NULL OR t.tier = $2::text)
       AND ($1::text[] IS NOT NULL OR t.status <> 'deleted')
       AND ($1::text[] IS NULL OR t.id = (
             SELECT n.id FROM tenants n WHERE n.slug = t.slug
              ORDER BY (n.status <> 'deleted') DESC, n.created_at DESC, n.id LIMIT 1))
     ORDER BY t.created_at, t.id`, [slugs, tier]);
}

export interface ReconcileTenantRow extends DirectoryRow {
  updated_at: Date;
}

/** Every tenant, deleted ones included, with its connection (the reconciler compares them with the platform). */
export function listTenantsWithConnections(db: Queryable): Promise<ReconcileTenantRow[]> {
  return queryRows<ReconcileTenantRow>(db, `
    SELECT t.id, t.slug, t.status, t.tier, t.custom_domain, t.version, t.updated_at,
           c.host, c.port, c.database, c.username, c.secret_ref, c.rotated_at
      FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id`);
}

export interface ConnectedTenantRow {
  id: string; slug: string; tier: string; host: string; port: number; database: string; username: string; secret_ref: string;
}

/** Tenants in one of these statuses that have a connection, by id. */
export function listConnectedTenants(db: Queryable, statuses: readonly string[]): Promise<ConnectedTenantRow[]> {
  return queryRows<ConnectedTenantRow>(db, `
    SELECT t.id, t.slug, t.tier, c.host, c.port, c.database, c.username, c.secret_ref
      FROM tenants t JOIN tenant_connections c ON c.tenant_id = t.id
     WHERE t.status = ANY($1::text[]) ORDER BY t.id`, [statuses]);
}

/** Which of these tenant ids are in one of these statuses. */
export async function tenantIdsWithStatus(db: Queryable, ids: readonly string[], statuses: readonly string[]): Promise<Set<string>> {
  if (!ids.length) return new Set();
  const rows = await queryRows<{ id: string }>(db, `SELECT id FROM tenants WHERE id = ANY($1::uuid[]) AND status = ANY($2::text[])`, [ids, statuses]);
  return new Set(rows.map((r) => r.id));
}

export interface TenantPageRow {
  id: string; slug: string; name: string; status: string; tier: string; region: string; created_at: Date; updated_at: Date;
}

export interface TenantPageFilter {
  /** Matches the slug or the name, case-insensitively, anywhere in it. */
  search?: string;
  statuses?: readonly string[];
  tier?: string;
  limit: number;
  offset: number;
}

/** One page of the console's tenants table, newest first, and how many tenants match in all. */
export async function searchTenants(db: Queryable, f: TenantPageFilter): Promise<{ rows: TenantPageRow[]; total: number }> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.search) {
    params.push(`%${f.search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    where.push(`(t.slug ILIKE $${params.length} OR t.name ILIKE $${params.length})`);
  }
  if (f.statuses?.length) {
    params.push(f.statuses);
    where.push(`t.status = ANY($${params.length}::text[])`);
  }
  if (f.tier) {
    params.push(f.tier);
    where.push(`t.tier = $${params.length}`);
  }
  const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
  params.push(f.limit, f.offset);
  const rows = await queryRows<TenantPageRow & { total: number }>(db, `
    SELECT t.id, t.slug, t.name, t.status, t.tier, t.region, t.created_at, t.updated_at, count(*) OVER ()::int AS total
      FROM tenants t ${clause}
     ORDER BY t.created_at DESC, t.id DESC LIMIT $${params.length - 1} OFFSET $${params.length}`, params);
  let total = rows[0]?.total ?? 0;
  if (!rows.length && f.offset > 0) {
    // Past the last page: the window count has no row to ride on.
    const [c] = await queryRows<{ n: number }>(db, `SELECT count(*)::int AS n FROM tenants t ${clause}`, params.slice(0, -2));
    total = c?.n ?? 0;
  }
  return { rows: rows.map(({ total: _t, ...r }) => r), total };
}

/** Tenants by status and tier, for the console's fleet overview. */
export function tenantCounts(db: Queryable): Promise<Array<{ status: string; tier: string; n: number }>> {
  return queryRows(db, `SELECT status, tier, count(*)::int AS n FROM tenants GROUP BY status, tier ORDER BY status, tier`);
}
