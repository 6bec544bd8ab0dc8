import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ErrorCode } from '../common/error-codes';
import { SiloError } from '../common/errors';
import { stripSqlComments } from './sql-splitter';

/** One versioned file of `migrations/tenant/`: `0001_name.sql` with `-- migrate:up` / `-- migrate:down` sections. */
export interface TenantMigration {
  /** The digits before the first `_`, as written (`0001`). Ordered numerically. */
  version: string;
  name: string;
  file: string;
  up: string;
  /** null when the file has no (or an empty) down section: the migration cannot be reverted. */
  down: string | null;
  /** sha256 (hex) of the normalised up section: what the tenant ledger records and drift is checked against. */
  checksum: string;
  /** false with a `-- silo:no-transaction` line: statements run one by one, outside a transaction. */
  transactional: boolean;
}

export const MIGRATION_FILE_PATTERN = /^(\d{1,18})_([a-z0-9][a-z0-9_]*)\.sql$/;
const UP_MARKER = /^--\s*migrate:up\s*$/i;
const DOWN_MARKER = /^--\s*migrate:down\s*$/i;
const NO_TX_MARKER = /^--\s*silo:no-transaction\s*$/i;

/** The directory shipped with Silo: `migrations/tenant` next to this file, in the source tree or beside `dist/`. */
export function defaultMigrationsDir(): string {
  const candidates = [resolve(__dirname, 'tenant'), resolve(__dirname, '..', '..', 'migrations', 'tenant')];
  return candidates.find((d) => existsSync(d)) ?? candidates[0];
}

/** Parses one file. Throws MIGRATION_INVALID with the file name and the reason. */
export function parseMigration(fileName: string, content: string, file = fileName): TenantMigration {
  const m = MIGRATION_FILE_PATTERN.exec(fileName);
  if (!m) throw invalid(fileName, 'name must look like 0001_short_name.sql (digits, underscore, lowercase name)');
  const lines = content.replace(/\r\n?/g, '\n').split('\n');
  const up: string[] = [];
  const down: string[] = [];
  let section: 'header' | 'up' | 'down' = 'header';
  let transactional = true;
  let ups = 0;
  let downs = 0;
  for (const line of lines) {
    if (NO_TX_MARKER.test(line.trim())) {
      transactional = false;
      continue;
    }
    if (UP_MARKER.test(line.trim())) {
      if (section === 'down') throw invalid(fileName, '-- migrate:up must come before -- migrate:down');
      section = 'up';
      ups++;
      continue;
    }
    if (DOWN_MARKER.test(line.trim())) {
      section = 'down';
      downs++;
      continue;
    }
    if (section === 'up') up.push(line);
    else if (section === 'down') down.push(line);
  }
  if (ups !== 1) throw invalid(fileName, ups === 0 ? 'missing "-- migrate:up" line' : 'more than one "-- migrate:up" line');
  if (downs > 1) throw invalid(fileName, 'more than one "-- migrate:down" line');
  const upSql = normalise(up);
  if (!stripSqlComments(upSql).replace(/[\s;]/g, '')) throw invalid(fileName, 'the up section is empty');
  const downSql = normalise(down);
  return {
    version: m[1],
    name: m[2],
    file,
    up: upSql,
    down: stripSqlComments(downSql).replace(/[\s;]/g, '') ? downSql : null,
    checksum: createHash('sha256').update(upSql).digest('hex'),
    transactional,
  };
}

/**
 * Every migration in `dir`, ordered by version. Other files are ignored (README, .gitkeep), but a
 * `.sql` file with a bad name, two files with one version, or a missing directory is an error.
 */
export function loadMigrations(dir: string): TenantMigration[] {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new SiloError(ErrorCode.MIGRATION_INVALID, `Tenant migrations directory not found: ${dir}`, 400, { dir });
  }
  const migrations = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .map((f) => parseMigration(f, readFileSync(join(dir, f), 'utf8'), join(dir, f)))
    .sort(compareMigrations);
  for (let i = 1; i < migrations.length; i++) {
    if (compareVersions(migrations[i - 1].version, migrations[i].version) === 0) {
      throw invalid(`${migrations[i - 1].version}_${migrations[i - 1].name}.sql`, `has the same version as ${migrations[i].version}_${migrations[i].name}.sql`);
    }
  }
  return migrations;
}

export function compareVersions(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function compareMigrations(a: TenantMigration, b: TenantMigration): number {
  return compareVersions(a.version, b.version);
}

/** `0003_add_orders` for messages and tables. */
export function migrationLabel(m: { version: string; name: string }): string {
  return `${m.version}_${m.name}`;
}

/**
 * Identifies a ledger without reading it: sha256 over the applied (version, checksum) pairs in
 * order. The control database keeps the tenant's digest, so a fleet run can skip a tenant whose
 * mirror matches the files without connecting to it.
 */
export function ledgerDigest(entries: ReadonlyArray<{ version: string; checksum: string }>): string {
  const h = createHash('sha256');
  for (const e of entries) h.update(`${e.version}:${e.checksum}\n`);
  return h.digest('hex');
}

/** Resolves `--to`: a version present in the files (leading zeros optional), or `0` for "none". */
export function resolveTarget(migrations: readonly TenantMigration[], to: string | undefined, allowZero = false): string | null {
  if (to === undefined) return migrations.length ? migrations[migrations.length - 1].version : null;
  if (!/^\d{1,18}$/.test(to)) throw new SiloError(ErrorCode.VALIDATION_FAILED, `--to must be a migration version (digits), got "${to}"`, 400);
  if (allowZero && BigInt(to) === 0n) return null;
  const found = migrations.find((m) => compareVersions(m.version, to) === 0);
  if (!found) throw new SiloError(ErrorCode.VALIDATION_FAILED, `--to ${to}: no migration with that version in the migrations directory`, 400);
  return found.version;
}

/** Scaffolds the next file (`max version + 1`, zero-padded to 4) and returns its path. */
export function createMigrationFile(dir: string, rawName: string): string {
  const name = rawName.trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_+|_+$/g, '');
  if (!name) throw new SiloError(ErrorCode.VALIDATION_FAILED, `migration name "${rawName}" has no letters or digits`, 400);
  const existing = loadMigrations(dir);
  const next = existing.length ? BigInt(existing[existing.length - 1].version) + 1n : 1n;
  const width = Math.max(4, existing.length ? existing[existing.length - 1].version.length : 4);
  const version = next.toString().padStart(width, '0');
  const file = join(dir, `${version}_${name}.sql`);
  writeFileSync(file, scaffold(`${version}_${name}`), { flag: 'wx' });
  return file;
}

function scaffold(label: string): string {
  return `-- ${label}: what this changes and why.
-- Runs in one transaction together with its ledger row: a failure leaves the tenant at the previous version.
-- For statements that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...) put
-- "-- silo:no-transaction" on its own line above "-- migrate:up", and make every statement
-- idempotent (IF NOT EXISTS): after a crash half-way, the whole section runs again.

-- migrate:up


-- migrate:down

`;
}

/** Trims each line's trailing blanks and the section's surrounding blank lines: editors must not create drift. */
function normalise(lines: string[]): string {
  return lines.map((l) => l.replace(/\s+$/, '')).join('\n').trim();
}

function invalid(fileName: string, reason: string): SiloError {
  return new SiloError(ErrorCode.MIGRATION_INVALID, `Invalid tenant migration ${fileName}: ${reason}`, 400, { file: fileName });
}
