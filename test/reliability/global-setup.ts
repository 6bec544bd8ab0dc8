import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharedGlobalSetup from '../global-setup';

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
  await sharedGlobalSetup(); // also drops tenant databases and roles left by killed runs
  const reportDir = process.env.SILO_RELIABILITY_REPORT_DIR || join(tmpdir(), 'silo-reliability-last');
  rmSync(reportDir, { recursive: true, force: true });
  mkdirSync(reportDir, { recursive: true });
  process.env.SILO_RELIABILITY_REPORT_DIR = reportDir;
}
