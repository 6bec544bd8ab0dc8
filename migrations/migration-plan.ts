import { compareVersions, migrationLabel, TenantMigration } from './tenant-migration';

/** A row of a tenant database's `_silo_migrations` ledger. */
export interface LedgerEntry {
  version: string;
  name: string;
  checksum: string;
}

export interface UpPlan {
  /** Highest applied version, null for an empty ledger. */
  current: string | null;
  pending: TenantMigration[];
  /** Drift and ledger/file mismatches: any of them blocks `up` for this database. */
  problems: string[];
}

export interface DownPlan {
  current: string | null;
  /** Applied migrations above the target, newest first. */
  revert: TenantMigration[];
  problems: string[];
}

export function currentVersion(applied: readonly LedgerEntry[]): string | null {
  let max: string | null = null;
  for (const a of applied) if (max === null || compareVersions(a.version, max) > 0) max = a.version;
  return max;
}

/**
 * What `up` to `target` (a file version; null = no files) would apply, or why it must not run.
 * Up never reverts: a database already past the target has nothing pending.
 */
export function planUp(files: readonly TenantMigration[], applied: readonly LedgerEntry[], target: string | null): UpPlan {
  const current = currentVersion(applied);
  const problems = ledgerProblems(files, applied);
  const appliedSet = new Set(applied.map((a) => BigInt(a.version)));
  const pending: TenantMigration[] = [];
  for (const f of files) {
    if (target === null || compareVersions(f.version, target) > 0) break;
    if (appliedSet.has(BigInt(f.version))) continue;
    if (current !== null && compareVersions(f.version, current) < 0) {
      problems.push(`${migrationLabel(f)} is not applied but the later ${current} is: give it a version above ${current}`);
    } else {
      pending.push(f);
    }
  }
  return { current, pending, problems };
}

/** What `down` to `target` (null = revert everything) would revert, newest first, or why it cannot. */
export function planDown(files: readonly TenantMigration[], applied: readonly LedgerEntry[], target: string | null): DownPlan {
  const current = currentVersion(applied);
  const byVersion = new Map(files.map((f) => [BigInt(f.version), f]));
  const problems: string[] = [];
  const revert: TenantMigration[] = [];
  const above = applied.filter((a) => target === null || compareVersions(a.version, target) > 0).sort((a, b) => compareVersions(b.version, a.version));
  for (const a of above) {
    const f = byVersion.get(BigInt(a.version));
    if (!f) problems.push(`${a.version}_${a.name} is applied but has no file in the migrations directory`);
    else if (f.checksum !== a.checksum) problems.push(driftMessage(f, a));
    else if (f.down === null) problems.push(`${migrationLabel(f)} has no down section: it cannot be reverted`);
    else revert.push(f);
  }
  return { current, revert, problems };
}

/** Applied entries whose file changed (drift) or is gone. */
export function ledgerProblems(files: readonly TenantMigration[], applied: readonly LedgerEntry[]): string[] {
  const byVersion = new Map(files.map((f) => [BigInt(f.version), f]));
  const problems: string[] = [];
  for (const a of [...applied].sort((x, y) => compareVersions(x.version, y.version))) {
    const f = byVersion.get(BigInt(a.version));
    if (!f) problems.push(`${a.version}_${a.name} is applied but has no file in the migrations directory (the database is ahead of these files)`);
    else if (f.checksum !== a.checksum) problems.push(driftMessage(f, a));
  }
  return problems;
}

function driftMessage(f: TenantMigration, a: LedgerEntry): string {
  return `${migrationLabel(f)} changed after it was applied (checksum ${a.checksum.slice(0, 12)} applied, ${f.checksum.slice(0, 12)} in the file)`;
}
