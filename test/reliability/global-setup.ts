import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { Client } from 'pg';
import { isAlive } from '../../scripts/support/dev-utils';
import sharedGlobalSetup from '../global-setup';
import { testDatabaseUrl } from '../support/env';

const ROOT = join(__dirname, '..', '..');
/** What tsconfig.build.json compiles that the suite runs (infra is not spawned). */
const SOURCE_DIRS = ['common', 'control-plane', 'tenant-runtime', 'provisioning', 'migrations', 'cli', 'scripts'];

/** Source files whose dist/ output is missing or older than the source. */
function staleOutputs(): string[] {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') && !entry.name.endsWith('.d.ts')) {
        const out = join(ROOT, 'dist', relative(ROOT, path)).replace(/\.ts$/, '.js');
        if (!existsSync(out) || statSync(out).mtimeMs < statSync(path).mtimeMs) stale.push(relative(ROOT, path));
      }
    }
  };
  for (const d of SOURCE_DIRS) walk(join(ROOT, d));
  return stale;
}

/**
 * Tenant databases and roles left by a reliability run that was killed before its cleanup: they
 * carry the marker `silo-instance:silo_test_r<pid>_…` (the control database's name) of a dead run.
 */
async function dropLeftoverTenants(): Promise<number> {
  const c = new Client({ connectionString: testDatabaseUrl() });
  await c.connect();
  let dropped = 0;
  try {
    const rows = await c.query<{ name: string; kind: string; marker: string }>(
      `SELECT datname AS name, 'db' AS kind, shobj_description(oid, 'pg_database') AS marker FROM pg_database WHERE datname ~ '^t_[0-9a-f]{32}$'
       UNION ALL SELECT rolname, 'role', shobj_description(oid, 'pg_authid') FROM pg_roles WHERE rolname ~ '^t_[0-9a-f]{32}$'`);
    const dead = rows.rows.filter((r) => {
      const pid = Number(/^silo-instance:silo_test_r(\d+)_rel/.exec(r.marker ?? '')?.[1]);
      return pid > 0 && !isAlive(pid);
    });
    for (const r of dead.filter((x) => x.kind === 'db')) {
      await c.query(`DROP DATABASE IF EXISTS "${r.name}" WITH (FORCE)`).catch(() => undefined);
      dropped++;
    }
    for (const r of dead.filter((x) => x.kind === 'role')) await c.query(`DROP ROLE IF EXISTS "${r.name}"`).catch(() => undefined);
  } finally {
    await c.end();
  }
  return dropped;
}

/**
 * The reliability suite spawns the services from dist/: build first when any output is missing or
 * older than its source (CI's `npm ci` already built it, so this is a quick check there). Then the
 * shared global setup (Postgres, Redis, control-db template), and a sweep of dead runs' tenants.
 */
export default async function globalSetup(): Promise<void> {
  const stale = staleOutputs();
  if (stale.length) {
    process.stdout.write(`\n[reliability] dist/ is stale (${stale.length} files, e.g. ${stale[0]}): npm run build\n`);
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  await sharedGlobalSetup();
  const leftovers = await dropLeftoverTenants();
  if (leftovers) process.stdout.write(`[reliability] dropped ${leftovers} tenant databases left by killed runs\n`);
  const reportDir = process.env.SILO_RELIABILITY_REPORT_DIR || join(tmpdir(), 'silo-reliability-last');
  rmSync(reportDir, { recursive: true, force: true });
  mkdirSync(reportDir, { recursive: true });
  process.env.SILO_RELIABILITY_REPORT_DIR = reportDir;
}
