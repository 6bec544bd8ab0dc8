import 'reflect-metadata';
import { isSiloError } from '../common/errors';
import { exitOnSignal } from '../common/shutdown';
import { ensureLocalState, embeddedEnv, LocalState, localStateDir } from '../common/local-state';
import { createLogger } from '../common/logger';
import { MemoryKvStore } from '../common/memory-kv-store';
import { loadControlPlaneConfig } from '../control-plane/config';
import { startControlPlane } from '../control-plane/server';
import { loadRuntimeConfig } from '../tenant-runtime/config';
import { startTenantRuntime } from '../tenant-runtime/server';
import { EmbeddedPostgresHandle, startEmbeddedPostgres } from './embedded-postgres';
import { ensureFrontDoorCert } from './support/front-door-cert';

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
  if (!userEnv.DATABASE_URL) {
    // A TENANT_DATABASE_URL of the user's own: no embedded tenant server, and no certificates (it does not trust Silo's CA).
    embedded = await startEmbeddedPostgres(localStateDir(), state, say, { tenantServer: !userEnv.TENANT_DATABASE_URL });
  }
  // After the embedded start: for a .silo/ from before the tenant server, it decides the layout.
  const defaults = embeddedEnv(state);
  if (userEnv.DATABASE_URL) {
    // External Postgres: only the generated secrets are defaulted, never the database URLs.
    delete (defaults as Record<string, string>).DATABASE_URL;
    delete (defaults as Record<string, string>).TENANT_DATABASE_URL;
  }
  // The PostgreSQL front door gets a development certificate unless the user brings one.
  const pgTls = userEnv.RUNTIME_PG_TLS_CERT ? null : await ensureFrontDoorCert(localStateDir());
  const frontDoorTls: Record<string, string> = pgTls ? { RUNTIME_PG_TLS_CERT: pgTls.cert, RUNTIME_PG_TLS_KEY: pgTls.key } : {};
  const env: Record<string, string> = { ...embeddedDefaults(defaults, userEnv, state.tenantServer), ...frontDoorTls, EXPORT_DIR: `${localStateDir()}/exports`, ...userEnv };

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
  if (runtime.pg) say(`  postgres        ${runtime.pg.host}:${runtime.pg.port}   (psql "postgresql://<slug>:<api key>@localhost:${runtime.pg.port}/app?sslmode=require"${pgTls ? `; verify-full with sslrootcert=${pgTls.ca}` : ''})`);
  say(`  runtime metrics ${runtime.metricsUrl}/metrics   (internal listener, RUNTIME_METRICS_PORT)`);
  say(`  job worker      ${cp.worker ? 'running in-process' : 'disabled (JOB_WORKER_ENABLED=false)'}`);
  say(`  database        ${embedded ? `embedded PostgreSQL on 127.0.0.1:${state.postgresPort} (data in .silo/pg)` : 'DATABASE_URL'}`);
  say(`  tenant dbs      ${tenantServerLine(embedded, userEnv, state)}`);
  say(`  cache           ${cpConfig.REDIS_URL ? 'Redis (REDIS_URL)' : 'in-process'}`);
  say(`  admin token     ${env.ADMIN_TOKEN === state.adminToken ? `${state.adminToken}   (kept in .silo/state.json)` : 'from ADMIN_TOKEN'}`);
  say('Try:  curl -H "Authorization: Bearer <admin token>" ' + `${cp.url}/v1/tenants`);
  say('Ctrl-C stops everything.');

  exitOnSignal(async (signal) => {
    say(`\n${signal}: stopping…`);
    await runtime.close().catch((e: Error) => say(`runtime: ${e.message}`));
    await cp.close().catch((e: Error) => say(`control plane: ${e.message}`));
    await kv?.close();
    await embedded?.stop().catch((e: Error) => say(`postgres: ${e.message}`));
    say('stopped.');
  }, { timeoutMs: 60_000, say });
}

/** Without a user URL for them, tenant databases go to the embedded tenant server, with its CA. */
function embeddedDefaults(defaults: Record<string, string>, userEnv: Record<string, string>, layout: LocalState['tenantServer']): Record<string, string> {
  const out = { ...defaults };
  if (userEnv.TENANT_DATABASE_URL || userEnv.DATABASE_URL || layout !== 'separate') delete out.TENANT_DATABASE_CA_DIR;
  return out;
}

function tenantServerLine(embedded: EmbeddedPostgresHandle | null, userEnv: Record<string, string>, state: LocalState): string {
  if (userEnv.TENANT_DATABASE_URL) return 'TENANT_DATABASE_URL (a server Silo does not run: tenant logins are not certificate-only)';
  if (!embedded) return `DATABASE_URL's server (set TENANT_DATABASE_URL to give tenants a server of their own)`;
  if (embedded.tenantServer === 'separate') return `embedded PostgreSQL on 127.0.0.1:${state.tenantPostgresPort} (data in .silo/pg-tenants; tenant roles log in by client certificate only)`;
  return 'the control server (.silo/ created before the separate tenant server; see README, "Tenant database server")';
}

main().catch((err) => {
  process.stderr.write(`silo failed to start: ${isSiloError(err) ? err.message : (err as Error).message}\n`);
  process.exit(1);
});
