import type { ClientBase } from 'pg';
import { ident } from './pg-names';

/**
 * Silo's bookkeeping in a tenant database (the migration ledger `_silo_migrations` and the
 * baseline's `_silo_meta`) lives in schema `silo`, owned by a Silo role, not in the tenant's
 * `public`: the tenant role (and PUBLIC, i.e. anyone who may connect) gets USAGE on the schema and
 * SELECT on its tables, nothing else, so `DROP TABLE "_silo_migrations" CASCADE` from
 * `drizzle-kit push` finds nothing in its search_path and cannot drop the ledger, and
 * `drizzle-kit pull` of `public` does not see it. The default search_path ("$user", public) does
 * not include `silo`.
 *
 * The migration runner logs in as the tenant role (so migrated objects are the tenant's), which
 * cannot write the ledger: it records through two SECURITY DEFINER functions of the schema's
 * owner, `silo.record_migration` and `silo.forget_migration`, inside the migration's own
 * transaction (so a migration and its ledger row still commit or roll back together). They refuse
 * a session that does not hold the runner's advisory lock: a tool or an app's query cannot write
 * the ledger by accident. They are not a security boundary against the tenant itself (its own
 * sessions can take that lock too): what it could do with them is add or remove ledger rows of its
 * own database, never drop, alter or fill the tables directly, nor reach another tenant.
 */
export const SILO_SCHEMA = 'silo';
export const LEDGER_TABLE = `${SILO_SCHEMA}._silo_migrations`;
export const META_TABLE = `${SILO_SCHEMA}._silo_meta`;
/** Where the ledger was before (tenant-owned, in `public`); the runner still uses it until it is moved. */
export const LEGACY_LEDGER_TABLE = 'public._silo_migrations';
export const LEGACY_META_TABLE = 'public._silo_meta';
export const RECORD_MIGRATION_FN = `${SILO_SCHEMA}.record_migration`;
export const FORGET_MIGRATION_FN = `${SILO_SCHEMA}.forget_migration`;

/**
 * Session-level advisory lock key taken inside each tenant database (advisory locks are
 * per-database, so one constant serves every tenant). Visible in pg_locks as objid 1360003078.
 */
export const TENANT_MIGRATION_LOCK_KEY = 1_360_003_078;

const LEDGER_COLUMNS = ['applied_at timestamp with time zone', 'checksum text', 'duration_ms integer', 'name text', 'version text'];
const META_COLUMNS = ['key text', 'updated_at timestamp with time zone', 'value text'];

export interface SiloSchemaResult {
  /** What changed: `created <table>`, `moved <legacy table> (<n> rows)`. Empty when it was already in place. */
  changes: string[];
  /** Why something was left as it was (the caller logs them; the next converge tries again). */
  problems: string[];
  /** Set when nothing was done: a migration run holds the database's lock, or `silo` is someone else's schema. */
  skipped?: string;
}

export interface SiloSchemaOptions {
  /** Role that owns the schema, its tables and functions. Default: the session's current user. */
  owner?: string;
  /**
   * Roles the session first makes itself a member of (AWS: the master user is not a superuser, and
   * dropping the legacy tables needs their owner's rights). Unset on the local driver (superuser).
   */
  joinRoles?: string[];
}

/**
 * Creates or converges schema `silo` in the database `c` is connected to, as a privileged session
 * (local: the superuser; AWS: the cluster's master user): schema, ledger and functions owned by
 * `owner`, read-only to everyone else. A ledger (and `_silo_meta`) still in `public` is moved: its
 * rows are copied into a fresh Silo-owned table and the old table dropped, in one transaction, so a
 * crash anywhere leaves either the old layout or the new one, never rows lost; run again, it does
 * what is left. Copied, not `ALTER TABLE … SET SCHEMA`: the old table is the tenant's, and its
 * triggers, rules, defaults or index expressions would run tenant code as Silo's role on every
 * ledger write. Only a plain table with exactly Silo's columns (built-in types) and no rules,
 * row security or inheritance is read; anything else is reported and left where it is (with the
 * runner then still on the legacy ledger, so nothing is re-applied).
 *
 * Waits for nobody: when a migration run holds the database's migration lock, it does nothing and
 * says so (`skipped`). Idempotent; every call re-asserts owners and grants.
 */
export async function ensureSiloSchema(c: ClientBase, opts: SiloSchemaOptions = {}): Promise<SiloSchemaResult> {
  const result: SiloSchemaResult = { changes: [], problems: [] };
  await c.query('BEGIN');
  try {
    await c.query('SET LOCAL search_path = pg_catalog, pg_temp');
    const [{ locked, me }] = (await c.query<{ locked: boolean; me: string }>('SELECT pg_try_advisory_xact_lock($1) AS locked, current_user AS me', [TENANT_MIGRATION_LOCK_KEY])).rows;
    if (!locked) {
      await c.query('ROLLBACK');
      return { ...result, skipped: 'a migration run holds this database\'s migration lock' };
    }
    const owner = opts.owner ?? me;
    const o = ident(owner);
    for (const r of opts.joinRoles ?? []) await c.query(`GRANT ${ident(r)} TO CURRENT_USER`);

    const schemaOwner = (await c.query<{ owner: string }>('SELECT pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = $1', [SILO_SCHEMA])).rows[0]?.owner;
    if (schemaOwner === undefined) {
      await c.query(`CREATE SCHEMA ${SILO_SCHEMA} AUTHORIZATION ${o}`);
      result.changes.push(`created schema ${SILO_SCHEMA}`);
    } else if (schemaOwner !== owner) {
      // Made by the tenant (it may create schemas): not Silo's, and taking it over would leave its objects in it.
      await c.query('ROLLBACK');
      return { ...result, skipped: `schema ${SILO_SCHEMA} exists and belongs to ${schemaOwner}, not ${owner}; the ledger stays in public` };
    }
    await c.query(`REVOKE ALL ON SCHEMA ${SILO_SCHEMA} FROM PUBLIC; GRANT USAGE ON SCHEMA ${SILO_SCHEMA} TO PUBLIC`);

    const ledger = await converge(c, result, {
      table: LEDGER_TABLE, legacy: LEGACY_LEDGER_TABLE, columns: LEDGER_COLUMNS, owner: o, createWhenAbsent: true, mergeLegacy: false,
      ddl: `CREATE TABLE ${LEDGER_TABLE} (
        version text PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now(),
        duration_ms integer NOT NULL
      )`,
      copy: `INSERT INTO ${LEDGER_TABLE} (version, name, checksum, applied_at, duration_ms) SELECT version, name, checksum, applied_at, duration_ms FROM ${LEGACY_LEDGER_TABLE}`,
    });
    await converge(c, result, {
      table: META_TABLE, legacy: LEGACY_META_TABLE, columns: META_COLUMNS, owner: o, createWhenAbsent: false, mergeLegacy: true,
      ddl: `CREATE TABLE ${META_TABLE} (key text PRIMARY KEY, value text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
      copy: `INSERT INTO ${META_TABLE} (key, value, updated_at) SELECT key, value, updated_at FROM ${LEGACY_META_TABLE} ON CONFLICT (key) DO NOTHING`,
    });
    if (ledger) await ensureLedgerFunctions(c, o);
    await c.query('COMMIT');
    return result;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

interface TableSpec {
  table: string;
  legacy: string;
  /** `name type` of every column, sorted: what a legacy table must have exactly to be read. */
  columns: string[];
  owner: string;
  ddl: string;
  copy: string;
  /** Create the Silo table even without a legacy one (the ledger; `_silo_meta` is the baseline migration's). */
  createWhenAbsent: boolean;
  /** Copy a legacy table's rows even when the Silo table exists (`_silo_meta`: a name Silo reserves). */
  mergeLegacy: boolean;
}

/** One table: created, or moved from public, inside a savepoint; true when the Silo table exists afterwards. */
async function converge(c: ClientBase, result: SiloSchemaResult, t: TableSpec): Promise<boolean> {
  const exists = async (name: string) => (await c.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [name])).rows[0].r !== null;
  const have = await exists(t.table);
  const legacy = await exists(t.legacy);
  if (legacy && (!have || t.mergeLegacy)) {
    if (!(await plainSiloTable(c, t.legacy, t.columns))) {
      result.problems.push(`${t.legacy} is not the table Silo made (other columns or types, rules, row security or inheritance): left in place${have ? '' : `, ${t.table} not created`}`);
      if (!have) return false;
    } else {
      await c.query('SAVEPOINT silo_table');
      try {
        if (!have) await c.query(t.ddl);
        const copied = await c.query(t.copy);
        await c.query(`DROP TABLE ${t.legacy}`); // RESTRICT: a tenant object depending on it keeps it (and the copy is undone)
        await c.query('RELEASE SAVEPOINT silo_table');
        result.changes.push(`moved ${t.legacy} to ${t.table} (${copied.rowCount ?? 0} rows)`);
      } catch (err) {
        await c.query('ROLLBACK TO SAVEPOINT silo_table');
        result.problems.push(`${t.legacy} not moved: ${(err as Error).message}`);
        if (!have) return false;
      }
    }
  } else if (!have) {
    if (!t.createWhenAbsent) return false;
    await c.query(t.ddl);
    result.changes.push(`created ${t.table}`);
  }
  await c.query(`ALTER TABLE ${t.table} OWNER TO ${t.owner}; REVOKE ALL ON TABLE ${t.table} FROM PUBLIC; GRANT SELECT ON TABLE ${t.table} TO PUBLIC`);
  return true;
}

/** A plain table with exactly `columns` (built-in types), no rules, row security, inheritance or partitions: reading it runs no tenant code. */
async function plainSiloTable(c: ClientBase, table: string, columns: string[]): Promise<boolean> {
  const { rows } = await c.query<{ ok: boolean }>(
    `SELECT cl.relkind = 'r' AND NOT cl.relhasrules AND NOT cl.relrowsecurity AND NOT cl.relhassubclass AND NOT cl.relispartition
       AND NOT EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhrelid = cl.oid)
       AND (SELECT array_agg(a.attname::text || ' ' || format_type(a.atttypid, NULL) ORDER BY a.attname::text COLLATE "C")
            FROM pg_attribute a WHERE a.attrelid = cl.oid AND a.attnum > 0 AND NOT a.attisdropped) = $2::text[] AS ok
     FROM pg_class cl WHERE cl.oid = to_regclass($1)`, [table, columns]);
  return rows[0]?.ok === true;
}

/**
 * The runner's only way to write the ledger (it is the tenant role): SECURITY DEFINER as the
 * schema's owner, with a fixed search_path, refusing a session without the migration lock.
 */
async function ensureLedgerFunctions(c: ClientBase, owner: string): Promise<void> {
  const lockHeld = `EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid() AND granted
      AND database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
      AND classid = 0 AND objid = ${TENANT_MIGRATION_LOCK_KEY} AND objsubid = 1)`;
  const refuse = `RAISE EXCEPTION 'the migration ledger is written only by silo migrate (this session does not hold the migration lock)' USING ERRCODE = '42501'`;
  await c.query(`CREATE OR REPLACE FUNCTION ${RECORD_MIGRATION_FN}(p_version text, p_name text, p_checksum text, p_duration_ms integer) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
      IF NOT ${lockHeld} THEN ${refuse}; END IF;
      INSERT INTO ${LEDGER_TABLE} (version, name, checksum, duration_ms) VALUES (p_version, p_name, p_checksum, p_duration_ms);
    END $fn$`);
  await c.query(`CREATE OR REPLACE FUNCTION ${FORGET_MIGRATION_FN}(p_version text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    BEGIN
      IF NOT ${lockHeld} THEN ${refuse}; END IF;
      DELETE FROM ${LEDGER_TABLE} WHERE version = p_version;
    END $fn$`);
  for (const fn of [`${RECORD_MIGRATION_FN}(text, text, text, integer)`, `${FORGET_MIGRATION_FN}(text)`]) {
    await c.query(`ALTER FUNCTION ${fn} OWNER TO ${owner}; REVOKE ALL ON FUNCTION ${fn} FROM PUBLIC; GRANT EXECUTE ON FUNCTION ${fn} TO PUBLIC`);
  }
}
