import 'reflect-metadata';
import { isSiloError } from '../common/errors';
import { ensureLocalState, embeddedEnv, localStateDir } from '../common/local-state';
import { createLogger } from '../common/logger';
import { MemoryKvStore } from '../common/memory-kv-store';
import { loadControlPlaneConfig } from '../control-plane/config';
import { startControlPlane } from '../control-plane/server';
import { loadRuntimeConfig } from '../tenant-runtime/config';
import { startTenantRuntime } from '../tenant-runtime/server';
import { EmbeddedPostgresHandle, startEmbeddedPostgres } from './embedded-postgres';

/**
 * `npm start`: Silo's main job in one process — control plane, job worker and tenant runtime.
 * With DATABASE_URL unset it runs an embedded PostgreSQL (data in .silo/); with REDIS_URL
 * unset it uses an in-process cache. Generated secrets live in .silo/state.json (mode 0600).
 */
async function main(): Promise<void> {
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const state = ensureLocalState();
  let embedded: EmbeddedPostgresHandle | null = null;
  const userEnv = Object.fromEntries(Object.entries(process.env).filter(([, v]) => v !== undefined && v !== '')) as Record<string, string>;
  const defaults = embeddedEnv(state);
  if (!userEnv.DATABASE_URL) {
    embedded = await startEmbeddedPostgres(localStateDir(), state, say);
  } else {
    // External Postgres: only the generated secrets are defaulted, never the database URLs.
    delete (defaults as Record<string, string>).DATABASE_URL;
    delete (defaults as Record<string, string>).TENANT_DATABASE_URL;
  }
  const env: Record<string, string> = { ...defaults, EXPORT_DIR: `${localStateDir()}/exports`, ...userEnv };

  const cpConfig = loadControlPlaneConfig(env);
  const rtConfig = loadRuntimeConfig(env);
  const logger = createLogger({ name: 'silo', level: cpConfig.LOG_LEVEL });
  const kv = cpConfig.REDIS_URL ? undefined : new MemoryKvStore();

  const cp = await startControlPlane(cpConfig, { logger: logger.child({ component: 'control-plane' }), kv });
  const runtime = await startTenantRuntime(rtConfig, { logger: logger.child({ component: 'tenant-runtime' }), kv: kv ?? cp.kv });

  say('');
  say('Silo is running');
  say(`  control plane   ${cp.url}   (admin API /v1, docs ${cp.url}/docs)`);
  say(`  tenant runtime  ${runtime.url}   (http://<slug>.${rtConfig.RUNTIME_BASE_DOMAIN}:${new URL(runtime.url).port} or ${runtime.url}/tenants/<slug>/v1/query)`);
  say(`  job worker      ${cp.worker ? 'running in-process' : 'disabled (JOB_WORKER_ENABLED=false)'}`);
  say(`  database        ${embedded ? `embedded PostgreSQL on 127.0.0.1:${state.postgresPort} (data in .silo/pg)` : 'DATABASE_URL'}`);
  say(`  cache           ${cpConfig.REDIS_URL ? 'Redis (REDIS_URL)' : 'in-process'}`);
  say(`  admin token     ${env.ADMIN_TOKEN === state.adminToken ? `${state.adminToken}   (kept in .silo/state.json)` : 'from ADMIN_TOKEN'}`);
  say('Try:  curl -H "Authorization: Bearer <admin token>" ' + `${cp.url}/v1/tenants`);
  say('Ctrl-C stops everything.');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    say(`\n${signal}: stopping…`);
    await runtime.close().catch((e: Error) => say(`runtime: ${e.message}`));
    await cp.close().catch((e: Error) => say(`control plane: ${e.message}`));
    await kv?.close();
    await embedded?.stop().catch((e: Error) => say(`postgres: ${e.message}`));
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((err) => {
  process.stderr.write(`silo failed to start: ${isSiloError(err) ? err.message : (err as Error).message}\n`);
  process.exit(1);
});
