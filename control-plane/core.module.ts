import { DynamicModule, Global, Module } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import type { KvStore } from '../common/kv-store';
import type { Logger } from '../common/logger';
import { directorySignerFor } from '../common/directory-signer';
import { DirectoryPublisher } from '../common/tenant-directory';
import type { ProvisioningDriver } from '../provisioning/provisioning-driver';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import type { ControlPlaneConfig } from './config';
import { TENANT_SCHEMA_HOOK, TenantSchemaHook } from './operations/tenant-schema-hook';
import { CLOCK, CONFIG, DATA_SOURCE, DIRECTORY, KV_STORE, LOGGER, METRICS, PROVISIONING_DRIVER, SECRET_STORE } from './common/tokens';

/** What the composition root (main.ts, scripts/start.ts, tests) hands the control plane. */
export interface ControlPlaneDeps {
  config: ControlPlaneConfig;
  dataSource: DataSource;
  kv: KvStore;
  logger: Logger;
  metrics: Registry;
  secretStore: SecretStore;
  driver: ProvisioningDriver;
  clock?: () => Date;
  /** Brings new tenants to the latest tenant schema after provisioning. */
  tenantSchema?: TenantSchemaHook;
}

@Global()
@Module({})
export class CoreModule {
  static forRoot(deps: ControlPlaneDeps): DynamicModule {
    const providers = [
      { provide: CONFIG, useValue: deps.config },
      { provide: DATA_SOURCE, useValue: deps.dataSource },
      { provide: KV_STORE, useValue: deps.kv },
      { provide: LOGGER, useValue: deps.logger },
      { provide: METRICS, useValue: deps.metrics },
      { provide: SECRET_STORE, useValue: deps.secretStore },
      { provide: PROVISIONING_DRIVER, useValue: deps.driver },
      { provide: CLOCK, useValue: deps.clock ?? (() => new Date()) },
      ...(deps.tenantSchema ? [{ provide: TENANT_SCHEMA_HOOK, useValue: deps.tenantSchema }] : []),
      { provide: DIRECTORY, useValue: new DirectoryPublisher(deps.kv, directorySignerFor(deps.config.SILO_DIRECTORY_KEY), (err) => deps.logger.warn({ err }, 'directory cache write failed')) },
    ];
    return { module: CoreModule, providers, exports: providers.map((p) => p.provide) };
  }
}
