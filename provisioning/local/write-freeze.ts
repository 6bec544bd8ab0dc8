import { randomBytes } from 'node:crypto';
import { inTransaction } from './pg-transaction';
import { Client, ClientBase, ClientConfig, Pool } from 'pg';
import { ADMIN_SESSION_OPTIONS, ident, literal } from './pg-names';

/**
 * Write freeze of a tenant database past its storage quota, by privileges a tenant cannot give
 * itself back. `default_transaction_read_only` and `SET TRANSACTION READ WRITE` are user-settable,
 * so they cannot be it. Instead, as superuser, in the tenant's database and in one transaction:
 *
 * - everything the tenant role owns there is REASSIGNed to a per-tenant NOLOGIN role
 *   (`<tenant role>_frozen`): only an owner can ALTER, DROP, GRANT on its own behalf, so the tenant
 *   no longer can (its `GRANT INSERT ON t TO current_user`, `ALTER TABLE OWNER` fail);
 * - every privilege on those objects is revoked, from PUBLIC, from anyone the tenant granted and
 *   from the frozen owner itself; then the tenant gets back SELECT on relations, TRUNCATE on tables
 *   (frees disk at once, fires no row trigger, rule or foreign-key action), USAGE on its schemas,
 *   SELECT on its large objects and EXECUTE on its SECURITY INVOKER routines. The frozen owner keeps
 *   only SELECT and USAGE (views are checked as their owner) and EXECUTE on nothing: code that runs
 *   as a table owner (ANALYZE, REINDEX evaluating index expressions) cannot call tenant functions;
 * - SECURITY DEFINER routines become SECURITY INVOKER and nobody may execute them (a trigger's
 *   function is not checked for EXECUTE when it fires, so it must not run as the owner);
 * - CREATE and TEMPORARY on the database, and CREATE on schemas it does not own, are revoked from the
 *   tenant, PUBLIC and roles the tenant can SET ROLE to; so are EXECUTE on the catalog functions that
 *   write for any caller (large-object creation, `pg_logical_emit_message`);
 * - what was there before is recorded in a schema of the superuser (`silo_write_freeze`), so
 *   `unfreezeWrites` restores owners, grants (with their grantors) and SECURITY DEFINER exactly.
 *
 * First the tenant loses CONNECT and its sessions (and prepared transactions) in the database end:
 * a session in an open transaction could otherwise hold locks that make the freeze wait out its
 * lock_timeout, sweep after sweep, and one that already made its temporary schema is not checked
 * for TEMPORARY again. CONNECT comes back once the freeze is committed (or has failed). Nothing here depends on who owns the database
 * (Silo's role or, in an older layout, the tenant: REASSIGN then moves it too).
 * The freeze is idempotent: applied again (after a tier change or rotation re-granted the tenant
 * its usual privileges) it records only what is new.
 */

const SCHEMA = 'silo_write_freeze';
/** Catalog functions any role may call that write data: no EXECUTE for the tenant while frozen. */
const WRITER_CATALOG_FUNCTIONS = [
  'pg_catalog.lo_creat(integer)', 'pg_catalog.lo_create(oid)', 'pg_catalog.lo_from_bytea(oid,bytea)',
  'pg_catalog.lo_import(text)', 'pg_catalog.lo_import(text,oid)',
  'pg_catalog.pg_logical_emit_message(boolean,text,text)', 'pg_catalog.pg_logical_emit_message(boolean,text,bytea)',
];
const SKIP_SCHEMAS = `('pg_catalog','information_schema','pg_toast','${SCHEMA}')`;

export interface WriteFreezeTarget {
  database: string;
  tenantRole: string;
  /**
   * The admin login is not a superuser (AWS: the cluster's master user, CREATEROLE): it first makes
   * itself a member of the tenant role and of the frozen role, which REASSIGN OWNED and the
   * owner-only statements here require of a non-superuser. Unset on the local driver (superuser).
   */
  adminJoinsRoles?: boolean;
}

/**
 * Where the freeze logs in: a superuser URL naming the tenant database (local), or the login of a
 * cluster's master user (AWS: host, database, user, password, TLS). The session options are always
 * ADMIN_SESSION_OPTIONS.
 */
export type WriteFreezeAdmin = string | Omit<ClientConfig, 'connectionString' | 'options' | 'application_name'>;

export function frozenRoleName(tenantRole: string): string {
  const name = `${tenantRole}_frozen`;
  if (name.length > 63) throw new Error(`role name too long for a frozen role: ${tenantRole}`);
  return name;
}

/** Whether a tenant role's database is write-frozen (the frozen role exists only while it is). */
export async function isWriteFrozen(q: Pool | ClientBase, tenantRole: string): Promise<boolean> {
  return (await q.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [frozenRoleName(tenantRole)])).rowCount === 1;
}

/** pg_database_size of each database, in one query (databases that do not exist are absent). */
export async function measureDatabaseSizes(q: Pool | ClientBase, databases: string[]): Promise<Map<string, number>> {
  if (!databases.length) return new Map();
  const r = await q.query<{ datname: string; bytes: string }>(
    'SELECT datname, pg_database_size(oid)::text AS bytes FROM pg_database WHERE datname = ANY($1::text[])', [databases]);
  return new Map(r.rows.map((row) => [row.datname, Number(row.bytes)]));
}

/** Opens a superuser session on the tenant database (`adminUrl` names it) and freezes. */
export async function freezeWrites(adminUrl: WriteFreezeAdmin, target: WriteFreezeTarget, opts: { marker?: string } = {}): Promise<void> {
  const db = ident(target.database);
  const tenant = ident(target.tenantRole);
  await withAdminClient(adminUrl, async (c) => {
    // The tenant is kept out while the freeze runs: a session of its own in an open transaction holds
    // locks on its tables that REASSIGN would wait for (lock_timeout), and could be renewed at will,
    // so a tenant could postpone its freeze for ever. Its sessions and prepared transactions go first.
    await c.query(`REVOKE CONNECT ON DATABASE ${db} FROM ${tenant}`);
    try {
      await c.query('SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = $1 AND usename = $2', [target.database, target.tenantRole]);
      const prepared = await c.query<{ gid: string }>('SELECT gid FROM pg_prepared_xacts WHERE database = $1 AND owner = $2', [target.database, target.tenantRole]);
      for (const { gid } of prepared.rows) await c.query(`ROLLBACK PREPARED ${literal(gid)}`);
      await inTransaction(c, () => applyFreeze(c, target, opts.marker ?? 'silo'));
    } finally {
      await c.query(`GRANT CONNECT ON DATABASE ${db} TO ${tenant}`);
    }
    // A backend that passed its CONNECT check as the REVOKE committed (not yet listed above).
    await c.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND usename = $2', [target.database, target.tenantRole]);
  });
}

/** Undoes `freezeWrites` exactly. A no-op on a database that is not frozen. */
export async function unfreezeWrites(adminUrl: WriteFreezeAdmin, target: WriteFreezeTarget): Promise<void> {
  await withAdminClient(adminUrl, (c) => inTransaction(c, () => applyUnfreeze(c, target)));
}

/** Re-applies a freeze if there is one (after Silo re-granted the tenant's usual privileges). */
export async function reassertWriteFreeze(adminUrl: WriteFreezeAdmin, target: WriteFreezeTarget): Promise<boolean> {
  return withAdminClient(adminUrl, async (c) => {
    if (!(await isWriteFrozen(c, target.tenantRole))) return false;
    await inTransaction(c, () => applyFreeze(c, target, null));
    return true;
  });
}

async function applyFreeze(c: ClientBase, t: WriteFreezeTarget, marker: string | null): Promise<void> {
  const tenant = ident(t.tenantRole);
  const frozenName = frozenRoleName(t.tenantRole);
  const frozen = ident(frozenName);
  if (!(await isWriteFrozen(c, t.tenantRole))) {
    await c.query(`CREATE ROLE ${frozen} NOLOGIN NOINHERIT`);
    if (marker) await c.query(`COMMENT ON ROLE ${frozen} IS ${literal(`${marker}:write-freeze`)}`);
  }
  if (t.adminJoinsRoles) await c.query(`GRANT ${tenant}, ${frozen} TO CURRENT_USER`);
  await claimRecordSchema(c);
  await c.query(`CREATE SCHEMA IF NOT EXISTS ${SCHEMA} AUTHORIZATION CURRENT_USER; REVOKE ALL ON SCHEMA ${SCHEMA} FROM PUBLIC`);
  await c.query(`
    CREATE TABLE IF NOT EXISTS ${SCHEMA}.objects (kind text NOT NULL, objoid oid NOT NULL, secdef boolean NOT NULL DEFAULT false, PRIMARY KEY (kind, objoid));
    CREATE TABLE IF NOT EXISTS ${SCHEMA}.grants (kind text NOT NULL, objoid oid NOT NULL, objsub int NOT NULL DEFAULT 0, grantee oid NOT NULL, grantor oid NOT NULL, privilege text NOT NULL, grantable boolean NOT NULL,
      UNIQUE (kind, objoid, objsub, grantee, grantor, privilege));`);
  const frozenOid = (await c.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [frozenName])).rows[0].oid;
  const tenantOid = (await c.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [t.tenantRole])).rows[0]?.oid;
  if (tenantOid === undefined) throw new Error(`no role ${t.tenantRole}`);

  await c.query(`REASSIGN OWNED BY ${tenant} TO ${frozen}`);

  // Objects now owned by the frozen role and not yet recorded: record their ACL (as it reads with
  // the frozen role in the tenant's place), strip it, grant the read-only set.
  const rels = await c.query<{ oid: number; relkind: string; q: string }>(
    `SELECT c.oid, c.relkind, c.oid::regclass::text AS q FROM pg_class c
     WHERE c.relowner = $1 AND c.relkind IN ('r','p','v','m','f','S') AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.objects o WHERE o.kind = 'rel' AND o.objoid = c.oid)`, [frozenOid]);
  for (const r of rels.rows) {
    await c.query(`INSERT INTO ${SCHEMA}.objects (kind, objoid) VALUES ('rel', $1)`, [r.oid]);
    await c.query(
      `INSERT INTO ${SCHEMA}.grants (kind, objoid, objsub, grantee, grantor, privilege, grantable)
       SELECT 'rel', c.oid, 0, a.grantee, a.grantor, a.privilege_type, a.is_grantable FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a WHERE c.oid = $1
       UNION ALL
       SELECT 'rel', at.attrelid, at.attnum, a.grantee, a.grantor, a.privilege_type, a.is_grantable FROM pg_attribute at, aclexplode(at.attacl) a WHERE at.attrelid = $1 AND at.attnum > 0 AND at.attacl IS NOT NULL
       ON CONFLICT DO NOTHING`, [r.oid]);
    const kw = r.relkind === 'S' ? 'SEQUENCE' : 'TABLE';
    await revokeAllGrantees(c, `${kw} ${r.q}`, 'rel', r.oid);
    await c.query(`GRANT SELECT ON ${kw} ${r.q} TO ${frozen}, ${tenant}`);
    if (r.relkind === 'r' || r.relkind === 'p') await c.query(`GRANT TRUNCATE ON TABLE ${r.q} TO ${tenant}`);
  }

  const procs = await c.query<{ oid: number; prosecdef: boolean; q: string }>(
    `SELECT p.oid, p.prosecdef, p.oid::regprocedure::text AS q FROM pg_proc p
     WHERE p.proowner = $1 AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.objects o WHERE o.kind = 'fn' AND o.objoid = p.oid)`, [frozenOid]);
  for (const p of procs.rows) {
    await c.query(`INSERT INTO ${SCHEMA}.objects (kind, objoid, secdef) VALUES ('fn', $1, $2)`, [p.oid, p.prosecdef]);
    await c.query(
      `INSERT INTO ${SCHEMA}.grants (kind, objoid, grantee, grantor, privilege, grantable)
       SELECT 'fn', p.oid, a.grantee, a.grantor, a.privilege_type, a.is_grantable FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE p.oid = $1
       ON CONFLICT DO NOTHING`, [p.oid]);
    await revokeAllGrantees(c, `ROUTINE ${p.q}`, 'fn', p.oid);
    if (p.prosecdef) await c.query(`ALTER ROUTINE ${p.q} SECURITY INVOKER`);
    else await c.query(`GRANT EXECUTE ON ROUTINE ${p.q} TO ${tenant}`);
  }

  const los = await c.query<{ oid: number }>(
    `SELECT m.oid FROM pg_largeobject_metadata m WHERE m.lomowner = $1 AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.objects o WHERE o.kind = 'lo' AND o.objoid = m.oid)`, [frozenOid]);
  for (const lo of los.rows) {
    await c.query(`INSERT INTO ${SCHEMA}.objects (kind, objoid) VALUES ('lo', $1)`, [lo.oid]);
    await c.query(
      `INSERT INTO ${SCHEMA}.grants (kind, objoid, grantee, grantor, privilege, grantable)
       SELECT 'lo', m.oid, a.grantee, a.grantor, a.privilege_type, a.is_grantable FROM pg_largeobject_metadata m, aclexplode(coalesce(m.lomacl, acldefault('L', m.lomowner))) a WHERE m.oid = $1
       ON CONFLICT DO NOTHING`, [lo.oid]);
    await revokeAllGrantees(c, `LARGE OBJECT ${lo.oid}`, 'lo', lo.oid);
    await c.query(`GRANT SELECT ON LARGE OBJECT ${lo.oid} TO ${tenant}`);
  }

  const nsps = await c.query<{ oid: number; q: string }>(
    `SELECT n.oid, quote_ident(n.nspname) AS q FROM pg_namespace n
     WHERE n.nspowner = $1 AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.objects o WHERE o.kind = 'nsp' AND o.objoid = n.oid)`, [frozenOid]);
  for (const n of nsps.rows) {
    await c.query(`INSERT INTO ${SCHEMA}.objects (kind, objoid) VALUES ('nsp', $1)`, [n.oid]);
    await c.query(
      `INSERT INTO ${SCHEMA}.grants (kind, objoid, grantee, grantor, privilege, grantable)
       SELECT 'nsp', n.oid, a.grantee, a.grantor, a.privilege_type, a.is_grantable FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a WHERE n.oid = $1
       ON CONFLICT DO NOTHING`, [n.oid]);
    await revokeAllGrantees(c, `SCHEMA ${n.q}`, 'nsp', n.oid);
    await c.query(`GRANT USAGE ON SCHEMA ${n.q} TO ${frozen}, ${tenant}`);
  }

  // Grants on objects the tenant does not own: only the creating ones, from whoever the tenant can act as.
  const actors = `(CASE WHEN a.grantee = 0 THEN true ELSE pg_has_role(${tenantOid}::oid, a.grantee, 'MEMBER') END)`;
  const partial = await c.query<{ kind: string; objoid: number; grantee: number; grantor: number; privilege: string; grantable: boolean; q: string }>(
    `SELECT 'nsp_part' AS kind, n.oid AS objoid, a.grantee, a.grantor, a.privilege_type AS privilege, a.is_grantable AS grantable, 'SCHEMA ' || quote_ident(n.nspname) AS q
       FROM pg_namespace n, aclexplode(n.nspacl) a
      WHERE n.nspowner <> $1 AND n.nspname NOT IN ${SKIP_SCHEMAS} AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%' AND a.privilege_type = 'CREATE' AND ${actors}
     UNION ALL
     SELECT 'db_part', d.oid, a.grantee, a.grantor, a.privilege_type, a.is_grantable, 'DATABASE ' || quote_ident(d.datname)
       FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
      WHERE d.datname = current_database() AND a.privilege_type IN ('CREATE','TEMPORARY') AND a.grantee <> d.datdba AND ${actors}
     UNION ALL
     SELECT 'catfn_part', p.oid, a.grantee, a.grantor, a.privilege_type, a.is_grantable, 'FUNCTION ' || p.oid::regprocedure::text
       FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
      WHERE p.oid = ANY($2::regprocedure[]) AND a.grantee <> p.proowner AND ${actors}`,
    [frozenOid, WRITER_CATALOG_FUNCTIONS]);
  for (const g of partial.rows) {
    await c.query(
      `INSERT INTO ${SCHEMA}.grants (kind, objoid, grantee, grantor, privilege, grantable) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
      [g.kind, g.objoid, g.grantee, g.grantor, g.privilege, g.grantable]);
    await c.query(`REVOKE ${g.privilege} ON ${g.q} FROM ${await roleSql(c, g.grantee)} CASCADE`);
  }
  // A database the tenant owned is now the frozen role's: the tenant still needs to connect.
  const db = await c.query<{ dba: number }>('SELECT datdba AS dba FROM pg_database WHERE datname = current_database()');
  if (db.rows[0].dba === frozenOid) {
    await c.query(`REVOKE ALL ON DATABASE ${ident(t.database)} FROM ${frozen}`);
    await c.query(`GRANT CONNECT ON DATABASE ${ident(t.database)} TO ${tenant}`);
  }
}

async function applyUnfreeze(c: ClientBase, t: WriteFreezeTarget): Promise<void> {
  if (!(await isWriteFrozen(c, t.tenantRole))) return;
  const tenant = ident(t.tenantRole);
  const frozenName = frozenRoleName(t.tenantRole);
  const frozen = ident(frozenName);
  const hasRecord = (await recordSchemaOwner(c)) === 'ours';
  const tenantOid = (await c.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [t.tenantRole])).rows[0]?.oid;
  if (tenantOid === undefined) throw new Error(`no role ${t.tenantRole}`);
  const frozenOid = (await c.query<{ oid: number }>('SELECT oid FROM pg_roles WHERE rolname = $1', [frozenName])).rows[0].oid;
  if (!hasRecord) throw new Error(`${t.database} has a frozen role but no freeze record of Silo's; refusing to guess`);

  const dbOwnedByFrozen = (await c.query('SELECT 1 FROM pg_database WHERE datname = current_database() AND datdba = $1', [frozenOid])).rowCount === 1;
  if (dbOwnedByFrozen) await c.query(`REVOKE CONNECT ON DATABASE ${ident(t.database)} FROM ${tenant}`);

  // 1. Empty the ACL of every recorded object that still exists (the grants the freeze made go too).
  const recorded = await c.query<{ kind: string; objoid: number; secdef: boolean; q: string | null; owner: number | null }>(
    `SELECT o.kind, o.objoid, o.secdef,
            CASE o.kind WHEN 'rel' THEN (SELECT CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END || c.oid::regclass::text FROM pg_class c WHERE c.oid = o.objoid)
                        WHEN 'fn' THEN (SELECT 'ROUTINE ' || p.oid::regprocedure::text FROM pg_proc p WHERE p.oid = o.objoid)
                        WHEN 'lo' THEN (SELECT 'LARGE OBJECT ' || m.oid FROM pg_largeobject_metadata m WHERE m.oid = o.objoid)
                        WHEN 'nsp' THEN (SELECT 'SCHEMA ' || quote_ident(n.nspname) FROM pg_namespace n WHERE n.oid = o.objoid) END AS q,
            CASE o.kind WHEN 'rel' THEN (SELECT relowner FROM pg_class WHERE oid = o.objoid) WHEN 'fn' THEN (SELECT proowner FROM pg_proc WHERE oid = o.objoid)
                        WHEN 'lo' THEN (SELECT lomowner FROM pg_largeobject_metadata WHERE oid = o.objoid) WHEN 'nsp' THEN (SELECT nspowner FROM pg_namespace WHERE oid = o.objoid) END AS owner
       FROM ${SCHEMA}.objects o ORDER BY o.kind, o.objoid`);
  const live = recorded.rows.filter((r) => r.q !== null && r.owner === frozenOid);
  for (const r of live) await revokeAllGrantees(c, r.q as string, r.kind, r.objoid);

  // 2. Ownership back to the tenant (also anything else the frozen role came to own).
  await c.query(`REASSIGN OWNED BY ${frozen} TO ${tenant}`);

  // 3. The recorded grants, with the frozen role read as the tenant; grantors other than the owner re-grant as themselves.
  const grants = await c.query<{ kind: string; objoid: number; objsub: number; grantee: number; grantor: number; privilege: string; grantable: boolean }>(
    `SELECT kind, objoid, objsub, grantee, grantor, privilege, grantable FROM ${SCHEMA}.grants ORDER BY (grantor = $1) DESC, kind, objoid, objsub`, [frozenOid]);
  const byKey = new Map(live.map((r) => [`${r.kind}:${r.objoid}`, r]));
  const mapRole = (oid: number) => (oid === frozenOid ? tenantOid : oid);
  for (const g of grants.rows) {
    let target: string | null = null;
    let owner: number | null = null;
    if (g.kind === 'rel' || g.kind === 'fn' || g.kind === 'lo' || g.kind === 'nsp') {
      const r = byKey.get(`${g.kind}:${g.objoid}`);
      if (!r) continue; // dropped while frozen (by a Silo operation: the tenant cannot drop)
      target = r.q as string;
      owner = tenantOid;
      if (g.objsub > 0) {
        const col = await c.query<{ n: string }>('SELECT quote_ident(attname) AS n FROM pg_attribute WHERE attrelid = $1 AND attnum = $2 AND NOT attisdropped', [g.objoid, g.objsub]);
        if (!col.rowCount) continue;
        target = `${g.privilege} (${col.rows[0].n}) ON ${target}`;
      } else target = `${g.privilege} ON ${target}`;
    } else {
      const q = await partialTarget(c, g.kind, g.objoid);
      if (!q) continue;
      target = `${g.privilege} ON ${q}`;
    }
    const grantee = mapRole(g.grantee);
    const grantor = mapRole(g.grantor);
    if (grantee !== 0 && !(await roleExists(c, grantee))) continue;
    const stmt = `GRANT ${target} TO ${await roleSql(c, grantee)}${g.grantable ? ' WITH GRANT OPTION' : ''}`;
    if (owner === null || grantor === owner || !(await roleExists(c, grantor))) await c.query(stmt);
    else await c.query(`SET LOCAL ROLE ${await roleSql(c, grantor)}; ${stmt}; RESET ROLE`);
  }
  for (const r of live) if (r.kind === 'fn' && r.secdef) await c.query(`ALTER ${r.q} SECURITY DEFINER`);

  await c.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
  await c.query(`DROP ROLE ${frozen}`);
}

/**
 * Whether the record's schema is Silo's (owned by a superuser: tenants cannot create objects in it),
 * the tenant's, or absent. The record is replayed as superuser GRANTs on unfreeze, so one the tenant
 * wrote (it could create a schema of that name before its first freeze) must never be read.
 */
async function recordSchemaOwner(c: ClientBase): Promise<'ours' | 'foreign' | 'none'> {
  const r = await c.query<{ ours: boolean }>(
    `SELECT (r.rolsuper OR r.rolname = current_user) AS ours FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = $1`, [SCHEMA]);
  if (!r.rowCount) return 'none';
  return r.rows[0].ours ? 'ours' : 'foreign';
}

/** A schema of the record's name that is not Silo's is the tenant's data: renamed out of the way (random suffix), kept. */
async function claimRecordSchema(c: ClientBase): Promise<void> {
  if ((await recordSchemaOwner(c)) !== 'foreign') return;
  await c.query(`ALTER SCHEMA ${SCHEMA} RENAME TO ${ident(`${SCHEMA}_tenant_${randomBytes(4).toString('hex')}`)}`);
}

/** REVOKE ALL from every role in the object's ACL (owner included) and PUBLIC: the ACL ends up empty. */
async function revokeAllGrantees(c: ClientBase, objectSql: string, kind: string, oid: number): Promise<void> {
  const aclSql: Record<string, string> = {
    rel: `SELECT a.grantee FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))) a WHERE c.oid = $1
          UNION SELECT a.grantee FROM pg_attribute at, aclexplode(at.attacl) a WHERE at.attrelid = $1 AND at.attacl IS NOT NULL`,
    fn: `SELECT a.grantee FROM pg_proc p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a WHERE p.oid = $1`,
    lo: `SELECT a.grantee FROM pg_largeobject_metadata m, aclexplode(coalesce(m.lomacl, acldefault('L', m.lomowner))) a WHERE m.oid = $1`,
    nsp: `SELECT a.grantee FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a WHERE n.oid = $1`,
  };
  const grantees = await c.query<{ grantee: number }>(aclSql[kind] as string, [oid]);
  const names = new Set<string>(['PUBLIC']);
  for (const { grantee } of grantees.rows) if (grantee !== 0 && (await roleExists(c, grantee))) names.add(await roleSql(c, grantee));
  await c.query(`REVOKE ALL ON ${objectSql} FROM ${[...names].join(', ')} CASCADE`);
}

async function partialTarget(c: ClientBase, kind: string, oid: number): Promise<string | null> {
  const sql: Record<string, string> = {
    nsp_part: `SELECT 'SCHEMA ' || quote_ident(nspname) AS q FROM pg_namespace WHERE oid = $1`,
    db_part: `SELECT 'DATABASE ' || quote_ident(datname) AS q FROM pg_database WHERE oid = $1`,
    catfn_part: `SELECT 'FUNCTION ' || oid::regprocedure::text AS q FROM pg_proc WHERE oid = $1`,
  };
  const r = await c.query<{ q: string }>(sql[kind] as string, [oid]);
  return r.rows[0]?.q ?? null;
}

async function roleExists(c: ClientBase, oid: number): Promise<boolean> {
  return (await c.query('SELECT 1 FROM pg_roles WHERE oid = $1', [oid])).rowCount === 1;
}

async function roleSql(c: ClientBase, oid: number): Promise<string> {
  if (oid === 0) return 'PUBLIC';
  const r = await c.query<{ n: string }>('SELECT rolname AS n FROM pg_roles WHERE oid = $1', [oid]);
  return ident(r.rows[0].n);
}


async function withAdminClient<T>(admin: WriteFreezeAdmin, fn: (c: Client) => Promise<T>): Promise<T> {
  // Session options: immune to ALTER DATABASE/ROLE … SET defaults (role, read-only, timeouts).
  const login = typeof admin === 'string' ? { connectionString: admin } : admin;
  const c = new Client({ ...login, options: ADMIN_SESSION_OPTIONS, application_name: 'silo-write-freeze' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}
