import type { SecretStore } from '../provisioning/secrets/secret-store';
import { migrateDatabase, MigrationRequest } from './database-migrator';
import { ineligibleReason, mirrorUpdate, TemplateReport, TemplateTarget } from './fleet-runner';
import { templateSession, tenantSession } from './migration-sessions';
import { SchemaMirrorRepository, SchemaMirrorWriter, TenantSchemaRow, TenantSelection } from './schema-mirror.repository';
import { compareVersions, ledgerDigest, TenantMigration } from './tenant-migration';

export type SchemaState = 'up-to-date' | 'behind' | 'failed' | 'drift' | 'unknown' | 'unreachable' | 'not-eligible';

export interface TenantSchemaStatus {
  tenantId: string;
  slug: string;
  status: string;
  tier: string;
  state: SchemaState;
  version: string | null;
  /** Files above `version`; null when the version is unknown. */
  pending: number | null;
  lastError: string | null;
  drift: string | null;
  note: string | null;
  /** When the mirror was last written (plain status) or now (--check). */
  updatedAt: Date | null;
  /** Read from the tenant database itself (--check), not the mirror. */
  checked: boolean;
}

export interface FleetStatus {
  latest: string | null;
  files: number;
  tenants: TenantSchemaStatus[];
  counts: Record<SchemaState, number>;
  template: TemplateReport | null;
  mirrorWarnings: string[];
}

/**
 * Status from the control database's mirror only: no tenant connection, so it is instant for any
 * fleet size. Drift is suspected without a fan-out when a tenant's ledger digest no longer
 * matches the files up to its version (a file was edited or removed after it was applied).
 */
export async function mirrorStatus(repo: SchemaMirrorRepository, migrations: readonly TenantMigration[], selection: TenantSelection): Promise<FleetStatus> {
  const rows = await repo.list(selection);
  const tenants = rows.map((row) => fromMirror(row, migrations));
  return summarise(migrations, tenants, null, []);
}

/**
 * `status --check`: reads every eligible tenant's ledger (dry run as the tenant role, no lock, no
 * change to the tenant) and refreshes the mirror's version, digest and drift.
 */
export async function checkedStatus(
  repo: SchemaMirrorRepository, secrets: SecretStore, migrations: readonly TenantMigration[], selection: TenantSelection,
  opts: { concurrency?: number; template?: TemplateTarget | null; onChecked?: (s: TenantSchemaStatus, done: number, total: number) => void } = {},
): Promise<FleetStatus> {
  const latest = migrations.length ? migrations[migrations.length - 1].version : null;
  const req: MigrationRequest = { direction: 'up', migrations, target: latest, dryRun: true, statementTimeoutMs: 30_000, lockTimeoutMs: 5_000 };
  let template: TemplateReport | null = null;
  if (opts.template) {
    const r = await migrateDatabase(templateSession(opts.template.adminUrl, opts.template.owner, req), req);
    template = { database: opts.template.database, outcome: r.outcome, from: r.from, to: r.to, changed: r.changed, problems: r.problems, error: r.error };
  }
  const rows = await repo.list(selection);
  const mirror = new SchemaMirrorWriter(repo);
  const out = new Map<string, TenantSchemaStatus>();
  const work = rows.filter((r) => !ineligibleReason(r));
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < work.length) {
      const row = work[next++];
      const r = await migrateDatabase(tenantSession(row.connection ?? fail(), secrets, req), req);
      mirror.add(mirrorUpdate(row.id, r, true));
      const base = fromMirror(row, migrations);
      const s: TenantSchemaStatus = r.ledgerKnown
        ? {
            ...base, checked: true, updatedAt: new Date(), version: r.from, pending: r.pending.length,
            drift: r.problems.length ? r.problems.join('\n') : null,
            state: r.problems.length ? 'drift' : base.lastError && r.pending.length ? 'failed' : r.pending.length ? 'behind' : 'up-to-date',
            note: null,
          }
        : { ...base, checked: true, state: 'unreachable', note: r.error?.message ?? 'unreachable' };
      out.set(row.id, s);
      opts.onChecked?.(s, ++done, work.length);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, opts.concurrency ?? 4), work.length) }, worker));
  await mirror.flush();
  return summarise(migrations, rows.map((r) => out.get(r.id) ?? fromMirror(r, migrations)), template, mirror.failures);
}

function fromMirror(row: TenantSchemaRow, migrations: readonly TenantMigration[]): TenantSchemaStatus {
  const base = {
    tenantId: row.id, slug: row.slug, status: row.status, tier: row.tier, version: row.mirror?.version ?? null,
    lastError: row.mirror?.lastError ?? null, drift: row.mirror?.drift ?? null, updatedAt: row.mirror?.updatedAt ?? null, checked: false,
  };
  const skip = ineligibleReason(row);
  if (skip) return { ...base, state: 'not-eligible', pending: null, note: skip };
  if (!row.mirror) return { ...base, state: 'unknown', pending: null, note: 'never recorded: run `silo migrate status --check` or `migrate up`' };
  const version = row.mirror.version;
  const applied = migrations.filter((m) => version !== null && compareVersions(m.version, version) <= 0);
  const pending = migrations.length - applied.length;
  if (row.mirror.drift) return { ...base, state: 'drift', pending, note: null };
  if (row.mirror.digest !== null && row.mirror.digest !== ledgerDigest(applied)) {
    return { ...base, state: 'drift', pending, note: 'migration files changed since they were applied here: run `silo migrate status --check`' };
  }
  if (row.mirror.lastError) return { ...base, state: 'failed', pending, note: null };
  return { ...base, state: pending ? 'behind' : 'up-to-date', pending, note: null };
}

function summarise(migrations: readonly TenantMigration[], tenants: TenantSchemaStatus[], template: TemplateReport | null, mirrorWarnings: string[]): FleetStatus {
  const counts: Record<SchemaState, number> = { 'up-to-date': 0, behind: 0, failed: 0, drift: 0, unknown: 0, unreachable: 0, 'not-eligible': 0 };
  for (const t of tenants) counts[t.state]++;
  return { latest: migrations.length ? migrations[migrations.length - 1].version : null, files: migrations.length, tenants, counts, template, mirrorWarnings };
}

function fail(): never {
  throw new Error('unreachable: eligible tenants have a connection');
}
