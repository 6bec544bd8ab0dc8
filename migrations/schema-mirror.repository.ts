import { Queryable, queryRows } from '../common/control-db/queryable';
import { listTenantsForMigration, TenantSelection } from '../common/control-db/tenant-queries';
import type { TenantConnectionInfo } from '../provisioning/provisioning-driver';

/** The subset of pg's Pool/Client (or a TypeORM DataSource/EntityManager) this module needs: pass either. */
export type SqlClient = Queryable;

export type { TenantSelection };

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

interface MirrorRow {
  tenant_id: string; version: string | null; applied_count: number; last_error: string | null; drift: string | null; ledger_digest: string | null; updated_at: Date;
}

const toMirror = (r: MirrorRow): SchemaMirror => ({
  version: r.version, appliedCount: Number(r.applied_count), lastError: r.last_error, drift: r.drift, digest: r.ledger_digest, updatedAt: r.updated_at,
});

/**
 * The owner of `tenant_schema_versions` (the control database's mirror of each tenant's schema):
 * the only code reading or writing it. Tenants come from the tenant aggregate's owner
 * (`common/control-db/tenant-queries.ts`).
 */
export class SchemaMirrorRepository {
  constructor(private readonly db: SqlClient) {}

  /**
   * Tenants with their mirror, in creation order (`listTenantsForMigration` says which), then
   * their mirrors in a second statement.
   */
  async list(selection: TenantSelection): Promise<TenantSchemaRow[]> {
    const tenants = await listTenantsForMigration(this.db, selection);
    const mirrors = tenants.length
      ? await queryRows<MirrorRow>(this.db, `SELECT tenant_id, version, applied_count, last_error, drift, ledger_digest, updated_at FROM tenant_schema_versions WHERE tenant_id = ANY($1::uuid[])`, [tenants.map((t) => t.id)])
      : [];
    const mirrorOf = new Map(mirrors.map((r) => [r.tenant_id, toMirror(r)]));
    return tenants.map((r) => ({
      id: r.id,
      slug: r.slug,
      status: r.status,
      tier: r.tier,
      connection: r.host === null ? null : { host: r.host, port: Number(r.port), database: r.database ?? '', username: r.username ?? '', secretRef: r.secret_ref ?? '' },
      mirror: mirrorOf.get(r.id) ?? null,
    }));
  }

  /** One tenant's mirror, or null when no run has recorded it yet. */
  async find(tenantId: string): Promise<SchemaMirror | null> {
    const [row] = await queryRows<MirrorRow>(this.db, `SELECT tenant_id, version, applied_count, last_error, drift, ledger_digest, updated_at FROM tenant_schema_versions WHERE tenant_id = $1`, [tenantId]);
    return row ? toMirror(row) : null;
  }

  /**
   * Writes many tenants' state in at most three statements. Every id must be a tenant's (the rows
   * reference `tenants`; Silo never deletes a tenant row, offboarding marks it deleted).
   */
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
      ON CONFLICT (tenant_id) DO UPDATE SET version = EXCLUDED.version, applied_count = EXCLUDED.applied_count, drift = EXCLUDED.drift,
        ledger_digest = EXCLUDED.ledger_digest, ${setError ? 'last_error = EXCLUDED.last_error,' : ''} updated_at = now()`;
    if (withError.length) await this.db.query(upsert(true), cols(withError));
    if (keepError.length) await this.db.query(upsert(false), cols(keepError));
    if (unknown.length) {
      await this.db.query(
        `INSERT INTO tenant_schema_versions AS v (tenant_id, last_error, updated_at)
         SELECT u.tenant_id, u.last_error, now() FROM unnest($1::uuid[], $2::text[]) AS u(tenant_id, last_error)
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
