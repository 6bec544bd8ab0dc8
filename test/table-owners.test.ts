import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/**
 * One owner per control-database table (issue #16): SQL that reads or writes a table (FROM, JOIN,
 * INTO, UPDATE, TABLE, TRUNCATE), and TypeORM calls on its entity, appear only in that table's
 * owner files. Scans every source file of every deployable; not scanned: test/, scripts/bench/
 * (benchmarks seed tables directly), *.spec.ts, and the control-DB migrations that create the
 * tables.
 */
const ROOT = resolve(__dirname, '..');

/**
 * Who may query each table. An aggregate read by the tenant runtime has a plain-SQL half in
 * common/control-db/ (no framework, usable by every deployable) and, in the control plane, the
 * TypeORM repository of its entity (writes, pipelined statements).
 */
const OWNERS: Record<string, string[]> = {
  tenants: ['common/control-db/tenant-queries.ts', 'control-plane/tenants/tenant.repository.ts'],
  tenant_connections: ['common/control-db/tenant-queries.ts', 'control-plane/tenants/tenant.repository.ts'],
  api_keys: ['common/control-db/api-key-queries.ts', 'control-plane/api-keys/api-key.repository.ts'],
  audit_log: ['control-plane/tenants/audit-log.repository.ts'],
  tenant_schema_versions: ['migrations/schema-mirror.repository.ts'],
  tenant_storage: ['control-plane/tenants/tenant-storage.repository.ts'],
  jobs: ['control-plane/jobs/job.repository.ts'],
  job_runs: ['control-plane/jobs/job.repository.ts'],
  provisioning_steps: ['control-plane/jobs/job.repository.ts'],
  periodic_tasks: ['control-plane/jobs/periodic-task.repository.ts'],
  webhook_events: ['control-plane/billing/webhook-event.repository.ts'],
  local_secrets: ['provisioning/secrets/local-secret-store.ts'],
  operators: ['control-plane/operators/operator.repository.ts'],
  operator_tokens: ['control-plane/operators/operator.repository.ts'],
  console_sessions: ['control-plane/console/console-session.repository.ts'],
};

/** Known violations, each to be removed; the test fails once one is no longer there. */
const EXCEPTIONS: Array<{ table: string; file: string; why: string }> = [];

const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.silo', 'test', 'cdktf.out']);
const SKIP_PATHS = ['scripts/bench/', 'control-plane/db/migrations/'];

function sourceFiles(dir = ROOT): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    const rel = relative(ROOT, path);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name) && !e.name.startsWith('.') && !SKIP_PATHS.some((p) => `${rel}/`.startsWith(p))) out.push(...sourceFiles(path));
    } else if (/\.(ts|js|mjs|cjs)$/.test(e.name) && !/\.(spec|d)\.ts$/.test(e.name)) {
      out.push(rel);
    }
  }
  return out;
}

/** Comments blanked out (newlines kept, so line numbers hold); `//` after a colon (URLs) is not a comment. */
export function stripComments(src: string): string {
  const blank = (s: string) => s.replace(/[^\n]/g, ' ');
  return src.replace(/\/\*[\s\S]*?\*\//g, blank).replace(/(?<![:\\])\/\/[^\n]*/g, blank);
}

const escape = (s: string) => s.replace(/[$]/g, '\\$');

/** Line numbers where `src` runs SQL on `table`. */
export function sqlUses(src: string, table: string): number[] {
  const re = new RegExp(`\\b(?:FROM|JOIN|INTO|UPDATE|TABLE|TRUNCATE)\\s+(?:ONLY\\s+)?(?:"?public"?\\.)?"?${escape(table)}"?(?![\\w$])`, 'gi');
  return [...src.matchAll(re)].map((m) => lineOf(src, m.index ?? 0));
}

/** Line numbers where `src` queries through the TypeORM entity class `entity`. */
export function entityUses(src: string, entity: string): number[] {
  const re = new RegExp(`\\.(?:getRepository|createQueryBuilder|from|into|update|delete|insert|upsert|find\\w*|count\\w*|exist\\w*|save|remove|softDelete|increment|decrement)\\(\\s*${escape(entity)}\\b`, 'g');
  return [...src.matchAll(re)].map((m) => lineOf(src, m.index ?? 0));
}

const lineOf = (src: string, index: number) => src.slice(0, index).split('\n').length;

/** Tables the control-DB migrations create. */
function migratedTables(): string[] {
  const dir = join(ROOT, 'control-plane/db/migrations');
  const tables = new Set<string>();
  for (const f of readdirSync(dir)) {
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/CREATE TABLE (?:IF NOT EXISTS )?"?(\w+)"?/gi)) tables.add(m[1] as string);
  }
  return [...tables].sort();
}

/** Entity class → table, from `@Entity('table') export class X`. */
function entities(files: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (const f of files) {
    for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/@Entity\(\s*['"](\w+)['"][^)]*\)\s*export\s+class\s+(\w+)/g)) map.set(m[2] as string, m[1] as string);
  }
  return map;
}

/** Every (file, table, line) where a scanned file queries a table. */
function uses(): Array<{ file: string; table: string; line: number }> {
  const files = sourceFiles();
  const entityTable = entities(files);
  const found: Array<{ file: string; table: string; line: number }> = [];
  for (const file of files) {
    const src = stripComments(readFileSync(join(ROOT, file), 'utf8'));
    for (const table of Object.keys(OWNERS)) for (const line of sqlUses(src, table)) found.push({ file, table, line });
    for (const [entity, table] of entityTable) for (const line of entityUses(src, entity)) found.push({ file, table, line });
  }
  return found;
}

describe('control-database table owners', () => {
  const found = uses();

  it('names an owner for every table the control-DB migrations create, and no other', () => {
    expect(Object.keys(OWNERS).sort()).toEqual(migratedTables());
  });

  it('finds every table queried in each of its owner files (no stale owner)', () => {
    const stale = Object.entries(OWNERS).flatMap(([table, files]) => files.filter((file) => !found.some((u) => u.table === table && u.file === file)).map((file) => `${table}: ${file}`));
    expect(stale).toEqual([]);
  });

  it('queries no table outside its owner', () => {
    const outside = found
      .filter((u) => !OWNERS[u.table]?.includes(u.file) && !EXCEPTIONS.some((e) => e.table === u.table && e.file === u.file))
      .map((u) => `${u.file}:${u.line} queries ${u.table} (owner: ${OWNERS[u.table]?.join(' or ')})`);
    expect(outside).toEqual([]);
  });

  it('lists only exceptions that are still there', () => {
    const gone = EXCEPTIONS.filter((e) => !found.some((u) => u.table === e.table && u.file === e.file));
    expect(gone).toEqual([]);
  });

  it('sees SQL across lines, quoted names and TypeORM entity calls, and skips comments and look-alike names', () => {
    const src = stripComments([
      'const a = `SELECT t.id FROM "tenants" t',
      '  LEFT JOIN',
      '    tenant_connections c ON c.tenant_id = t.id`;',
      "await m.query('update api_keys set revoked_at = now()');",
      'await m.getRepository(Tenant).findOne({ where: { id } });',
      'await ds.manager.count(Tenant);',
      '// SELECT * FROM audit_log',
      '/* INSERT INTO audit_log */',
      "fetch('https://example.com/x'); const q = 'SELECT 1 FROM tenants_archive';",
      "import { x } from './tenants';",
    ].join('\n'));
    expect(sqlUses(src, 'tenants')).toEqual([1]);
    expect(sqlUses(src, 'tenant_connections')).toEqual([2]);
    expect(sqlUses(src, 'api_keys')).toEqual([4]);
    expect(sqlUses(src, 'audit_log')).toEqual([]);
    expect(entityUses(src, 'Tenant')).toEqual([5, 6]);
  });
});
