import type { Client } from 'pg';
import { LedgerEntry, planDown, planUp } from './migration-plan';
import { splitSqlStatements } from './sql-splitter';
import { ledgerDigest, migrationLabel, TenantMigration } from './tenant-migration';
import { FORGET_MIGRATION_FN, LEDGER_TABLE, LEGACY_LEDGER_TABLE, RECORD_MIGRATION_FN, TENANT_MIGRATION_LOCK_KEY } from '../provisioning/local/silo-schema';

export { LEDGER_TABLE, LEGACY_LEDGER_TABLE, TENANT_MIGRATION_LOCK_KEY };

/**
 * Where a database's ledger is: `silo` (schema `silo`, Silo-owned, written through its functions;
 * provisioning/local/silo-schema.ts) or `public` (the tenant-owned table of older databases, used as
 * it is until a privileged converge moves it: the runner, as the tenant, cannot).
 */
export type LedgerLayout = 'silo' | 'public';

export type DatabaseOutcome = 'migrated' | 'reverted' | 'up-to-date' | 'would-change' | 'failed' | 'drift' | 'locked';

export interface MigrationRequest {
  direction: 'up' | 'down';
  migrations: readonly TenantMigration[];
  /** Up: highest version to apply (null: no files). Down: version to stay at (null: revert all). */
  target: string | null;
  dryRun?: boolean;
  /** How long to wait for another runner's lock; 0 reports `locked` at once. */
  lockWaitMs?: number;
  /** Per statement; 0 = none (the tenant role's own statement_timeout is overridden). */
  statementTimeoutMs?: number;
  /** Waiting for a table lock held by the application; 0 = wait forever. */
  lockTimeoutMs?: number;
}

export interface DatabaseRunResult {
  outcome: DatabaseOutcome;
  /** Version before the run (null: empty ledger or unknown). */
  from: string | null;
  /** Version after the run (a dry run changes nothing: `to` is `from`; see `wouldEndAt`). */
  to: string | null;
  /** Dry run with something to do: the version the run would end at. */
  wouldEndAt?: string | null;
  /** Labels applied (up) or reverted (down); in a dry run, those that would be. */
  changed: string[];
  /** Labels still pending up to the target after the run. */
  pending: string[];
  /** Whether the ledger was read: false when the run failed before (connection, secret). */
  ledgerKnown: boolean;
  appliedCount: number;
  digest: string | null;
  problems: string[];
  error?: { migration?: string; message: string; pgCode?: string };
  durationMs: number;
  /** Where the ledger was read and written (null: none yet, and a dry run made none). */
  ledgerLayout: LedgerLayout | null;
}

/**
 * Startup options every migration session gets: they override the tenant role's defaults, which the
 * tenant can set on itself (ALTER ROLE current_user SET …) to make its migrations, and so a tier
 * change or a fleet run, fail: a read-only default, a 1 ms idle timeout, a search_path to nowhere.
 */
export function sessionOptions(req: Pick<MigrationRequest, 'statementTimeoutMs' | 'lockTimeoutMs'>): string {
  return `-c statement_timeout=${Math.max(0, Math.floor(req.statementTimeoutMs ?? 0))} -c lock_timeout=${Math.max(0, Math.floor(req.lockTimeoutMs ?? 0))}`
    + ' -c default_transaction_read_only=off -c idle_in_transaction_session_timeout=0 -c role=none -c search_path="$user",public';
}

/**
 * Runs `req` against one database through `open` (a connected session as the role that must own
 * the objects). One connection for the whole run; the advisory lock is held by that session, so
 * a crashed runner releases it with its connection. Never throws: the outcome says what happened.
 */
export async function migrateDatabase(open: () => Promise<Client>, req: MigrationRequest): Promise<DatabaseRunResult> {
  const started = Date.now();
  const result: DatabaseRunResult = {
    outcome: 'failed', from: null, to: null, changed: [], pending: [], ledgerKnown: false, appliedCount: 0, digest: null, problems: [], durationMs: 0, ledgerLayout: null,
  };
  let client: Client | null = null;
  try {
    client = await open();
    client.on('error', () => undefined); // a dropped connection surfaces through the pending query
  } catch (err) {
    result.error = { message: `cannot connect: ${describe(err)}`, pgCode: pgCode(err) };
    return finish(result, started);
  }
  let ledger: Ledger | null = null;
  try {
    // A dry run only reads committed ledger rows: it takes no lock, so it never reports `locked`.
    const layoutSql = `to_regclass('${LEDGER_TABLE}') IS NOT NULL AS silo, to_regclass('${LEGACY_LEDGER_TABLE}') IS NOT NULL AS legacy`;
    const [state] = (req.dryRun
      ? await client.query<{ locked: boolean; silo: boolean; legacy: boolean }>(`SELECT true AS locked, ${layoutSql}`)
      : await client.query<{ locked: boolean; silo: boolean; legacy: boolean }>(`SELECT pg_try_advisory_lock($1) AS locked, ${layoutSql}`, [TENANT_MIGRATION_LOCK_KEY])).rows;
    if (!state.locked && !(await waitForLock(client, req.lockWaitMs ?? 0))) {
      result.outcome = 'locked';
      result.error = { message: 'another runner holds this database\'s migration lock' };
      return finish(result, started);
    }
    // Read again under the lock: a converge (which takes the same lock) may have moved the ledger meanwhile.
    const layout = req.dryRun ? state : (await client.query<{ silo: boolean; legacy: boolean }>(`SELECT ${layoutSql}`)).rows[0];
    let applied: LedgerEntry[] = [];
    if (layout.silo || layout.legacy) {
      // Silo's own ledger wins: a `public._silo_migrations` next to it is the tenant's (e.g. copied by drizzle-kit pull).
      result.ledgerLayout = layout.silo ? 'silo' : 'public';
      applied = (await client.query<LedgerEntry>(`SELECT version, name, checksum FROM ${layout.silo ? LEDGER_TABLE : LEGACY_LEDGER_TABLE}`)).rows;
    } else if (!req.dryRun) {
      // Never converged (a database Silo's provisioning did not make): as the tenant, only the old layout can be made here.
      await client.query(`CREATE TABLE IF NOT EXISTS ${LEGACY_LEDGER_TABLE} (
        version text PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        duration_ms integer NOT NULL
      )`);
      result.ledgerLayout = 'public';
    }
    ledger = new Ledger(applied);
    result.ledgerKnown = true;
    result.from = ledger.current();
    const writer = ledgerWriter(client, result.ledgerLayout ?? 'public');
    if (req.direction === 'up') await runUp(client, ledger, writer, req, result);
    else await runDown(client, ledger, writer, req, result);
    return finish(result, started, ledger);
  } catch (err) {
    result.error ??= { message: describe(err), pgCode: pgCode(err) };
    result.outcome = 'failed';
    return finish(result, started, ledger);
  } finally {
    // Ending the session releases the advisory lock; no separate unlock round trip.
    await client.end().catch(() => undefined);
  }
}

async function runUp(client: Client, ledger: Ledger, writer: LedgerWriter, req: MigrationRequest, result: DatabaseRunResult): Promise<void> {
  const plan = planUp(req.migrations, ledger.entries, req.target);
  result.pending = plan.pending.map(migrationLabel);
  if (plan.problems.length) {
    result.problems = plan.problems;
    result.outcome = 'drift';
    return;
  }
  if (!plan.pending.length) {
    result.outcome = 'up-to-date';
    return;
  }
  if (req.dryRun) {
    result.wouldEndAt = versionAfter(ledger, (l) => plan.pending.forEach((m) => l.add(m)));
    result.changed = [...result.pending];
    result.outcome = 'would-change';
    return;
  }
  for (const m of plan.pending) {
    await step(client, m, m.up, (durationMs) => writer.record(m, durationMs), result);
    ledger.add(m);
    result.changed.push(migrationLabel(m));
    result.pending.shift();
  }
  result.outcome = 'migrated';
}

async function runDown(client: Client, ledger: Ledger, writer: LedgerWriter, req: MigrationRequest, result: DatabaseRunResult): Promise<void> {
  const plan = planDown(req.migrations, ledger.entries, req.target);
  if (plan.problems.length) {
    result.problems = plan.problems;
    result.outcome = 'drift';
    return;
  }
  if (!plan.revert.length) {
    result.outcome = 'up-to-date';
    return;
  }
  if (req.dryRun) {
    result.wouldEndAt = versionAfter(ledger, (l) => plan.revert.forEach((m) => l.remove(m.version)));
    result.changed = plan.revert.map(migrationLabel);
    result.outcome = 'would-change';
    return;
  }
  for (const m of plan.revert) {
    await step(client, m, m.down ?? '', () => writer.forget(m.version), result);
    ledger.remove(m.version);
    result.changed.push(migrationLabel(m));
  }
  result.outcome = 'reverted';
}

/**
 * One migration and its ledger change. Transactional: both in one transaction, so a failure
 * leaves the previous version. No-transaction: each statement alone, the ledger written only
 * after all succeeded, so a crash half-way re-runs the whole section next time.
 */
async function step(client: Client, m: TenantMigration, sql: string, record: (durationMs: number) => Promise<void>, result: DatabaseRunResult): Promise<void> {
  const t0 = Date.now();
  try {
    if (m.transactional) {
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await record(Date.now() - t0);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    } else {
      for (const stmt of splitSqlStatements(sql)) await client.query(stmt);
      await record(Date.now() - t0);
    }
  } catch (err) {
    result.error = { migration: migrationLabel(m), message: describe(err), pgCode: pgCode(err) };
    throw err;
  }
}

interface LedgerWriter {
  record(m: TenantMigration, durationMs: number): Promise<void>;
  forget(version: string): Promise<void>;
}

/** Ledger writes on the migration's own session (so inside its transaction): Silo's functions, or the legacy table itself. */
function ledgerWriter(client: Client, layout: LedgerLayout): LedgerWriter {
  if (layout === 'silo') {
    return {
      record: async (m, durationMs) => void (await client.query(`SELECT ${RECORD_MIGRATION_FN}($1, $2, $3, $4)`, [m.version, m.name, m.checksum, durationMs])),
      forget: async (version) => void (await client.query(`SELECT ${FORGET_MIGRATION_FN}($1)`, [version])),
    };
  }
  return {
    record: async (m, durationMs) => void (await client.query(`INSERT INTO ${LEGACY_LEDGER_TABLE} (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)`, [m.version, m.name, m.checksum, durationMs])),
    forget: async (version) => void (await client.query(`DELETE FROM ${LEGACY_LEDGER_TABLE} WHERE version = $1`, [version])),
  };
}

async function waitForLock(client: Client, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - Date.now()))));
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [TENANT_MIGRATION_LOCK_KEY]);
    if (rows[0].locked) return true;
  }
  return false;
}

/** The ledger as this run changes it, kept in memory: no re-read after each migration. */
class Ledger {
  constructor(public entries: LedgerEntry[]) {}
  current(): string | null {
    return this.entries.reduce<string | null>((max, e) => (max === null || BigInt(e.version) > BigInt(max) ? e.version : max), null);
  }
  add(m: TenantMigration): void {
    this.entries = [...this.entries, { version: m.version, name: m.name, checksum: m.checksum }];
  }
  remove(version: string): void {
    this.entries = this.entries.filter((e) => e.version !== version);
  }
  digest(): string {
    return ledgerDigest([...this.entries].sort((a, b) => (BigInt(a.version) < BigInt(b.version) ? -1 : 1)));
  }
}

/** The version a ledger would be at after `change`, on a copy: the ledger itself stays as read. */
function versionAfter(ledger: Ledger, change: (copy: Ledger) => void): string | null {
  const copy = new Ledger(ledger.entries);
  change(copy);
  return copy.current();
}

function finish(result: DatabaseRunResult, started: number, ledger: Ledger | null = null): DatabaseRunResult {
  if (ledger) {
    result.to = ledger.current();
    result.appliedCount = ledger.entries.length;
    result.digest = ledger.digest();
  }
  result.durationMs = Date.now() - started;
  return result;
}

/** The server's message and SQLSTATE; `detail` is left out (it can quote tenant rows). */
function describe(err: unknown): string {
  const e = err as { message?: string; code?: string };
  const msg = e.message ?? String(err);
  return e.code && /^[0-9A-Z]{5}$/.test(e.code) ? `${msg} [${e.code}]` : msg;
}

function pgCode(err: unknown): string | undefined {
  const code = (err as { code?: string }).code;
  return code && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}
