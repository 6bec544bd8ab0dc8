import { ErrorCode } from '../common/error-codes';
import { SiloError } from '../common/errors';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { DatabaseOutcome, DatabaseRunResult, migrateDatabase, MigrationRequest } from './database-migrator';
import { templateSession, tenantSession } from './migration-sessions';
import { MirrorUpdate, SchemaMirrorRepository, SchemaMirrorWriter, TenantSchemaRow, TenantSelection } from './schema-mirror.repository';
import { compareVersions, ledgerDigest, resolveTarget, TenantMigration } from './tenant-migration';

/** Tenant states whose database exists and is migrated by fleet runs. `failed` only with a connection row. */
export const MIGRATABLE_STATUSES: readonly string[] = ['active', 'suspended', 'failed'];

export type TenantOutcome = DatabaseOutcome | 'skipped' | 'not-attempted';

export interface TenantReport {
  tenantId: string;
  slug: string;
  status: string;
  tier: string;
  outcome: TenantOutcome;
  /** false when the outcome comes from the control-db mirror, without connecting. */
  verified: boolean;
  from: string | null;
  to: string | null;
  /** Dry run: the version this tenant would end at. */
  wouldEndAt?: string | null;
  changed: string[];
  pending: string[];
  problems: string[];
  error?: DatabaseRunResult['error'];
  note?: string;
  durationMs: number;
}

export interface TemplateTarget {
  /** Admin URL of the template database. */
  adminUrl: string;
  owner: string;
  database: string;
}

export interface TemplateReport {
  database: string;
  outcome: DatabaseOutcome | 'skipped';
  from: string | null;
  to: string | null;
  changed: string[];
  problems: string[];
  error?: DatabaseRunResult['error'];
  note?: string;
}

export interface FleetRunOptions {
  selection: TenantSelection;
  migrations: readonly TenantMigration[];
  /** Highest version to apply; default the newest file. */
  to?: string;
  dryRun?: boolean;
  /** Tenants migrated at once (default 1: sequential). */
  concurrency?: number;
  /** Migrate this many tenants first, then ask `confirmContinue`. */
  canary?: number;
  continueOnError?: boolean;
  /** Connect to every tenant even when the mirror says it is at the target. */
  verify?: boolean;
  /** The template to migrate before the tenants (local driver), or a reason it is skipped. */
  template?: TemplateTarget | { skip: string } | null;
  statementTimeoutMs?: number;
  lockTimeoutMs?: number;
  /** Tenants locked by another runner are retried at the end, waiting this long each (default 30 s). */
  lockWaitMs?: number;
  signal?: AbortSignal;
  confirmContinue?: (canary: readonly TenantReport[], remaining: number) => Promise<boolean>;
  events?: FleetEvents;
}

export interface FleetPlan {
  target: string | null;
  selected: number;
  /** Tenants the run will connect to. */
  toCheck: number;
  atTargetByMirror: number;
  notEligible: number;
  canary: number;
}

export interface FleetEvents {
  planned?(plan: FleetPlan): void;
  templateFinished?(report: TemplateReport): void;
  tenantFinished?(report: TenantReport, done: number, total: number): void;
  canaryFinished?(reports: readonly TenantReport[]): void;
}

export type StopReason = 'failure' | 'canary' | 'interrupted';

export interface FleetReport {
  direction: 'up';
  dryRun: boolean;
  target: string | null;
  template: TemplateReport | null;
  tenants: TenantReport[];
  stopped: { reason: StopReason; message: string } | null;
  counts: Record<TenantOutcome, number>;
  /** Tenants failed, drifted or still locked, plus a failed template. */
  failures: number;
  mirrorWarnings: string[];
  durationMs: number;
}

export const FAILURE_OUTCOMES: readonly TenantOutcome[] = ['failed', 'drift', 'locked'];

/**
 * Fans `up` out over the selected tenants: template first, then the canary, then the rest with
 * `concurrency` workers. Default policy: stop scheduling at the first failure (tenants in flight
 * finish) and report the rest as not attempted; running the same command again resumes, since
 * tenants whose mirror is at the target are skipped without a connection.
 */
export class FleetRunner {
  constructor(private readonly repo: SchemaMirrorRepository, private readonly secrets: SecretStore) {}

  async run(opts: FleetRunOptions): Promise<FleetReport> {
    const started = Date.now();
    const target = resolveTarget(opts.migrations, opts.to);
    const rows = await this.repo.list(opts.selection);
    if ('slugs' in opts.selection) {
      const found = new Set(rows.map((r) => r.slug));
      const missing = opts.selection.slugs.filter((s) => !found.has(s));
      if (missing.length) throw new SiloError(ErrorCode.TENANT_NOT_FOUND, `Unknown tenant${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`, 404, { missing });
    }
    const expectedDigest = ledgerDigest(opts.migrations.filter((m) => target !== null && compareVersions(m.version, target) <= 0));
    const reports = new Map<string, TenantReport>();
    const work: TenantSchemaRow[] = [];
    for (const row of rows) {
      const skip = ineligibleReason(row);
      if (skip) reports.set(row.id, blank(row, 'skipped', skip));
      else if (!opts.verify && mirrorAtTarget(row, target, expectedDigest)) reports.set(row.id, { ...blank(row, 'up-to-date'), from: target, to: target });
      else work.push(row);
    }
    const canary = Math.max(0, Math.floor(opts.canary ?? 0));
    const canaryCount = canary > 0 && canary < work.length ? canary : 0;
    opts.events?.planned?.({
      target, selected: rows.length, toCheck: work.length, atTargetByMirror: [...reports.values()].filter((r) => r.outcome === 'up-to-date').length,
      notEligible: [...reports.values()].filter((r) => r.outcome === 'skipped').length, canary: canaryCount,
    });

    const req: MigrationRequest = {
      direction: 'up', migrations: opts.migrations, target, dryRun: opts.dryRun,
      statementTimeoutMs: opts.statementTimeoutMs, lockTimeoutMs: opts.lockTimeoutMs, lockWaitMs: 0,
    };
    const mirror = new SchemaMirrorWriter(this.repo);
    let stopped: FleetReport['stopped'] = null;
    let done = 0;
    const interrupted = () => {
      if (opts.signal?.aborted && !stopped) stopped = { reason: 'interrupted', message: 'Interrupted: tenants in flight finished, the rest were not started. Run the same command again to resume.' };
      return opts.signal?.aborted ?? false;
    };

    let template: TemplateReport | null = null;
    if (opts.template && 'skip' in opts.template) {
      template = { database: '', outcome: 'skipped', from: null, to: null, changed: [], problems: [], note: opts.template.skip };
      opts.events?.templateFinished?.(template);
    } else if (opts.template) {
      const tpl = opts.template;
      const r = await migrateDatabase(templateSession(tpl.adminUrl, tpl.owner, req), { ...req, lockWaitMs: opts.lockWaitMs ?? 30_000 });
      template = { database: tpl.database, outcome: r.outcome, from: r.from, to: r.to, changed: r.changed, problems: r.problems, error: r.error };
      opts.events?.templateFinished?.(template);
      if (FAILURE_OUTCOMES.includes(r.outcome) && !opts.continueOnError) {
        stopped = { reason: 'failure', message: `The template database failed to migrate (${describeFailure(r)}); no tenant was touched. Fix the migration and run the same command again.` };
      }
    }

    const runOne = async (row: TenantSchemaRow, lockWaitMs: number, retry: boolean): Promise<TenantReport> => {
      const conn = row.connection;
      if (!conn) throw new Error('unreachable: eligible tenants have a connection');
      const r = await migrateDatabase(tenantSession(conn, this.secrets, req), { ...req, lockWaitMs });
      const report: TenantReport = {
        ...blank(row, r.outcome), verified: r.ledgerKnown, from: r.from, to: r.to, ...(r.wouldEndAt !== undefined ? { wouldEndAt: r.wouldEndAt } : {}), changed: r.changed, pending: r.pending,
        problems: r.problems, error: r.error, durationMs: r.durationMs,
      };
      reports.set(row.id, report);
      if (!opts.dryRun && r.outcome !== 'locked') mirror.add(mirrorUpdate(row.id, r));
      opts.events?.tenantFinished?.(report, retry ? done : ++done, work.length);
      return report;
    };

    const pool = async (rowsToRun: TenantSchemaRow[], stopOnFailure: boolean, lockWaitMs = 0): Promise<TenantReport[]> => {
      const out: TenantReport[] = [];
      let next = 0;
      const worker = async () => {
        while (next < rowsToRun.length && !stopped && !interrupted()) {
          const report = await runOne(rowsToRun[next++], lockWaitMs, lockWaitMs > 0);
          out.push(report);
          if (stopOnFailure && (report.outcome === 'failed' || report.outcome === 'drift') && !stopped) {
            stopped = { reason: 'failure', message: `Stopped at the first failing tenant (${report.slug}): it stays at its last good version; tenants not started are untouched. Fix it and run the same command again to resume, or add --continue-on-error.` };
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(Math.max(1, Math.floor(opts.concurrency ?? 1)), rowsToRun.length) }, worker));
      return out;
    };

    if (!stopped && canaryCount > 0) {
      const canaryReports = await pool(work.slice(0, canaryCount), true);
      await mirror.flush();
      opts.events?.canaryFinished?.(canaryReports);
      const canaryFailed = canaryReports.some((r) => FAILURE_OUTCOMES.includes(r.outcome));
      if (canaryFailed && !stopped) stopped = { reason: 'failure', message: 'The canary failed: no further tenant was started.' };
      if (!stopped && !interrupted()) {
        const go = opts.confirmContinue ? await opts.confirmContinue(canaryReports, work.length - canaryCount) : true;
        if (!go) stopped = { reason: 'canary', message: `Canary done (${canaryCount} tenant${canaryCount > 1 ? 's' : ''}); ${work.length - canaryCount} not started.` };
      }
    }
    if (!stopped) await pool(work.slice(canaryCount), !opts.continueOnError);

    // Tenants another runner held: once more, now waiting for its lock (it usually finished them).
    const locked = work.filter((w) => reports.get(w.id)?.outcome === 'locked');
    if (locked.length && !stopped && !interrupted()) await pool(locked, !opts.continueOnError, Math.max(1, opts.lockWaitMs ?? 30_000));
    await mirror.flush();

    const tenants = rows.map((r) => reports.get(r.id) ?? blank(r, 'not-attempted'));
    const counts = countOutcomes(tenants);
    const templateFailed = template !== null && FAILURE_OUTCOMES.includes(template.outcome as TenantOutcome) ? 1 : 0;
    return {
      direction: 'up', dryRun: !!opts.dryRun, target, template, tenants, stopped, counts,
      failures: counts.failed + counts.drift + counts.locked + templateFailed,
      mirrorWarnings: mirror.failures, durationMs: Date.now() - started,
    };
  }
}

/** Why a tenant is not migrated by a fleet run, or null. */
export function ineligibleReason(row: Pick<TenantSchemaRow, 'status' | 'connection'>): string | null {
  if (row.status === 'pending' || row.status === 'provisioning') return `${row.status}: gets the latest schema from the template`;
  if (!MIGRATABLE_STATUSES.includes(row.status)) return `${row.status}: no database to migrate`;
  if (!row.connection) return `${row.status} without a database connection`;
  return null;
}

/** The mirror says the tenant is exactly at `target` with the same files applied, with no error or drift. */
export function mirrorAtTarget(row: TenantSchemaRow, target: string | null, expectedDigest: string): boolean {
  const m = row.mirror;
  if (!m || m.lastError || m.drift || m.digest !== expectedDigest) return false;
  if (target === null || m.version === null) return target === null && m.version === null;
  return compareVersions(m.version, target) === 0;
}

export function mirrorUpdate(tenantId: string, r: DatabaseRunResult, keepError = false): MirrorUpdate {
  const lastError = keepError ? undefined : r.outcome === 'failed' ? describeFailure(r) : null;
  if (!r.ledgerKnown) return { tenantId, lastError: keepError ? undefined : describeFailure(r) };
  return { tenantId, lastError, ledger: { version: r.to, appliedCount: r.appliedCount, digest: r.digest, drift: r.problems.length ? r.problems.join('\n') : null } };
}

export function describeFailure(r: { outcome: string; error?: DatabaseRunResult['error']; problems: readonly string[] }): string {
  if (r.outcome === 'drift') return r.problems.join('; ');
  if (!r.error) return r.outcome;
  return r.error.migration ? `${r.error.migration}: ${r.error.message}` : r.error.message;
}

export function countOutcomes(reports: ReadonlyArray<{ outcome: TenantOutcome }>): Record<TenantOutcome, number> {
  const counts: Record<TenantOutcome, number> = {
    migrated: 0, reverted: 0, 'up-to-date': 0, 'would-change': 0, failed: 0, drift: 0, locked: 0, skipped: 0, 'not-attempted': 0,
  };
  for (const r of reports) counts[r.outcome]++;
  return counts;
}

function blank(row: TenantSchemaRow, outcome: TenantOutcome, note?: string): TenantReport {
  return {
    tenantId: row.id, slug: row.slug, status: row.status, tier: row.tier, outcome, verified: false,
    from: row.mirror?.version ?? null, to: row.mirror?.version ?? null, changed: [], pending: [], problems: [], note, durationMs: 0,
  };
}
