import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import type { KvStore } from '../common/kv-store';
import type { Logger } from '../common/logger';
import { createKvStore } from '../common/create-kv-store';
import { createProvisioningDriver, DriverExtras } from '../provisioning/create-provisioning-driver';
import { createSecretStore } from '../provisioning/secrets/create-secret-store';
import type { ControlPlaneConfig } from './config';
import { createControlDataSource, migrateControlDb } from './db/data-source';
import { ControlPlaneApp, createControlPlaneApp } from './http-app';
import { JobWorker } from './jobs/job-worker';
import { DEFAULT_TEMPLATE_OWNER, migrateTenant, prepareTemplate } from '../migrations';
import type { TenantConnectionInfo } from '../provisioning/provisioning-driver';
import { tenantServerWarnings } from '../provisioning/local/tenant-server';

export interface RunningControlPlane {
  url: string;
  app: ControlPlaneApp;
  worker: JobWorker | null;
  kv: KvStore;
  close(): Promise<void>;
}

export interface StartOptions extends DriverExtras {
  logger: Logger;
  /** Share a KvStore (the embedded mode runs the runtime in the same process). */
  kv?: KvStore;
  /** Redis key prefix, for tests. */
  kvPrefix?: string;
  /** false: build the app (and worker) without an HTTP listener, for the standalone worker process. */
  listen?: boolean;
}

/** Migrates the control database, wires adapters from config, listens, and starts the job worker if enabled. */
export async function startControlPlane(config: ControlPlaneConfig, opts: StartOptions): Promise<RunningControlPlane> {
  const dataSource = createControlDataSource(config.DATABASE_URL, { poolSize: config.DATABASE_POOL_SIZE });
  await dataSource.initialize();
  const applied = await migrateControlDb(dataSource);
  if (applied.length) opts.logger.info({ applied }, 'control database migrated');

  const secretPool = new Pool({ connectionString: config.DATABASE_URL, max: 4, application_name: 'silo-secrets' });
  secretPool.on('error', (err) => opts.logger.warn({ err }, 'secret store pool error'));
  const kv = opts.kv ?? createKvStore(config.REDIS_URL, opts.kvPrefix);
  // Writes made before Redis connects fail (no offline queue): the first webhooks' directory entries
  // would wait for the repair. Bounded: the cache is optional, an outage must not stop a start.
  if (!opts.kv && kv.ready && !(await kv.ready(5_000))) opts.logger.warn('Redis not ready after 5 s: starting without the cache until it connects');
  const secretStore = await createSecretStore(config, secretPool);
  const migrations = { dir: config.SILO_TENANT_MIGRATIONS_DIR };
  for (const warning of tenantServerWarnings({ driver: config.PROVISIONING_DRIVER, controlUrl: config.DATABASE_URL, tenantUrl: config.TENANT_DATABASE_URL, caDir: config.TENANT_DATABASE_CA_DIR })) {
    opts.logger.warn(warning);
  }
  const driver = await createProvisioningDriver(config, secretStore, {
    prepareTemplate: opts.prepareTemplate ?? ((url) => prepareTemplate(url, DEFAULT_TEMPLATE_OWNER, migrations).then(() => undefined)),
  });
  const tenantSchema = {
    migrateTenant: async (tenant: { id: string; slug: string }, connection: TenantConnectionInfo) => {
      await migrateTenant({ ...tenant, connection }, { secretStore, control: secretPool }, migrations);
    },
  };

  const app = await createControlPlaneApp({ config, dataSource, kv, logger: opts.logger, secretStore, driver, tenantSchema });
  let port = 0;
  if (opts.listen === false) await app.init();
  else {
    await app.listen(config.CONTROL_PLANE_PORT, config.HOST);
    port = (app.getHttpServer().address() as AddressInfo).port;
  }
  const worker = config.JOB_WORKER_ENABLED ? app.get(JobWorker) : null;
  worker?.start();

  return {
    url: `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`,
    app,
    worker,
    kv,
    close: async () => {
      await worker?.stop();
      await app.close();
      if (!opts.kv) await kv.close();
      await driver.close();
      await secretPool.end();
      if (dataSource.isInitialized) await dataSource.destroy();
    },
  };
}
