import type { TenantConnectionInfo } from '../provisioning/provisioning-driver';

/** The subset of pg's Pool/Client this module needs: pass either. */
export interface SqlClient {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
}

export type TenantSelection = { all: true } | { slugs: string[] } | { tier: string };

/** The control database's view of one tenant's schema (`tenant_schema_versions`). */
export interface SchemaMirror {
  version: string | null;
  appliedCount: number;
  lastError: string | null;
  drift: string | null;
  digest: string | null;
  updatedAt: Date;
}

export interface TenantSchemaRow {
  id: string;
  slug: string;
  status: string;
  tier: string;
  connection: TenantConnectionInfo | null;
  mirror: SchemaMirror | null;
}

/** What a run learned about one tenant. `ledger` absent: the ledger could not be read (connection failed). */
export interface MirrorUpdate {
  tenantId: string;
  ledger?: { version: string | null; appliedCount: number; digest: string | null; drift: string | null };
  /** undefined keeps the stored error (a read-only check); null clears it. */
  lastError: string | null | undefined;
}

interface Row {
  id: string; slug: string; status: string; tier: string;
  host: string | null; port: number | null; database: string | null; username: string | null; secret_ref: string | null;
  has_mirror: boolean; version: string | null; applied_count: number | null; last_error: string | null; drift: string | null; ledger_digest: string | null; updated_at: Date | null;
}

/** The only code reading tenants for migrations and writing the `tenant_schema_versions` mirror. */
export class SchemaMirrorRepository {
  constructor(private readonly db: SqlClient) {}

  /**
   * Tenants in creation order. `--all` and `--tier` leave out deleted tenants; a named slug is always
   * returned, once: its live tenant, else its most recently deleted one (a slug freed by an
   * offboarding may be taken by a new tenant).
   */
  async list(selection: TenantSelection): Promise<TenantSchemaRow[]> {
    const slugs = 'slugs' in selection ? selection.slugs : null;
    const tier = 'tier' in selection ? selection.tier : null;
    const { rows } = await this.db.query(
      `SELECT t.id, t.slug, t.status, t.tier,
              c.host, c.port, c.database, c.username, c.secret_ref,
              v.tenant_id IS NOT NULL AS has_mirror, v.version, v.applied_count, v.last_error, v.drift, v.ledger_digest, v.updated_at
         FROM tenants t
         LEFT JOIN tenant_connections c ON c.tenant_id = t.id
         LEFT JOIN tenant_schema_versions v ON v.tenant_id = t.id
        WHERE ($1::text[] IS NULL OR t.slug = ANY($1::text[]))
          AND ($2::text IS NULL OR t.tier = $2::text)
          AND ($1::text[] IS NOT NULL OR t.status <> 'deleted')
          AND ($1::text[] IS NULL OR t.id = (
                SELECT n.id FROM tenants n WHERE n.slug = t.slug
                 ORDER BY (n.status <> 'deleted') DESC, n.created_at DESC, n.id LIMIT 1))
        ORDER BY t.created_at, t.id`,
      [slugs, tier],
    );
    return (rows as Row[]).map((r) => ({
      id: r.id,
      slug: r.slug,
      status: r.status,
      tier: r.tier,
      connection: r.host === null ? null : { host: r.host, port: Number(r.port), database: r.database ?? '', username: r.username ?? '', secretRef: r.secret_ref ?? '' },
      mirror: r.has_mirror
        ? { version: r.version, appliedCount: Number(r.applied_count ?? 0), lastError: r.last_error, drift: r.drift, digest: r.ledger_digest, updatedAt: r.updated_at ?? new Date(0) }
        : null,
    }));
  }

  /** Writes many tenants' state in at most three statements. */
  async write(updates: readonly MirrorUpdate[]): Promise<void> {
    const known = updates.filter((u) => u.ledger);
    const withError = known.filter((u) => u.lastError !== undefined);
    const keepError = known.filter((u) => u.lastError === undefined);
    const unknown = updates.filter((u) => !u.ledger && u.lastError !== undefined);
    const cols = (us: MirrorUpdate[]) => [
      us.map((u) => u.tenantId), us.map((u) => u.ledger?.version ?? null), us.map((u) => u.ledger?.appliedCount ?? 0),
      us.map((u) => u.lastError ?? null), us.map((u) => u.ledger?.drift ?? null), us.map((u) => u.ledger?.digest ?? null),
    ];
    const upsert = (setError: boolean) => `
      INSERT INTO tenant_schema_versions AS v (tenant_id, version, applied_count, last_error, drift, ledger_digest, updated_at)
      SELECT u.tenant_id, u.version, u.applied_count, u.last_error, u.drift, u.ledger_digest, now()
        FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[]) AS u(tenant_id, version, applied_count, last_error, drift, ledger_digest)
       WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.tenant_id)
      ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, applied_count = EXCLUDED.applied_count, drift = EXCLUDED.drift,
        ledger_digest = EXCLUDED.ledger_digest, ${setError ? 'last_error = EXCLUDED.last_error,' : ''} updated_at = now()`;
    if (withError.length) await this.db.query(upsert(true), cols(withError));
    if (keepError.length) await this.db.query(upsert(false), cols(keepError));
    if (unknown.length) {
      await this.db.query(
        `INSERT INTO tenant_schema_versions AS v (tenant_id, last_error, updated_at)
         SELECT u.tenant_id, u.last_error, now() FROM unnest($1::uuid[], $2::text[]) AS u(tenant_id, last_error)
          WHERE EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.tenant_id)
         ON CONFLICT (tenant_id) DO UPDATE SET last_error = EXCLUDED.last_error, updated_at = now()`,
        [unknown.map((u) => u.tenantId), unknown.map((u) => u.lastError ?? null)],
      );
    }
  }
}

/**
 * Buffers mirror updates and writes them in batches (every `batchSize` tenants or `maxDelayMs`),
 * one write at a time. A failed write is remembered, not thrown: the tenant ledgers are the
 * truth and the next run corrects the mirror.
 */
export class SchemaMirrorWriter {
  readonly failures: string[] = [];
  private buffer: MirrorUpdate[] = [];
  private chain: Promise<void> = Promise.resolve();
  private lastFlush = Date.now();

  constructor(private readonly repo: SchemaMirrorRepository, private readonly batchSize = 100, private readonly maxDelayMs = 1_000) {}

  add(update: MirrorUpdate): void {
    this.buffer.push(update);
    if (this.buffer.length >= this.batchSize || Date.now() - this.lastFlush >= this.maxDelayMs) void this.flush();
  }

  flush(): Promise<void> {
    const batch = this.buffer;
    this.buffer = [];
    this.lastFlush = Date.now();
    if (batch.length) {
      this.chain = this.chain.then(() =>
        this.repo.write(batch).catch((err: unknown) => {
          this.failures.push(`control database mirror update for ${batch.length} tenant(s) failed: ${(err as Error).message}`);
        }),
      );
    }
    return this.chain;
  }
}
