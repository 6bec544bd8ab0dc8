export { loadRuntimeConfig, RUNTIME_SECRET_CONFIG_KEYS } from './config';
export type { RuntimeConfig } from './config';
export { startTenantRuntime } from './server';
export type { RunningTenantRuntime, TenantRuntimeOptions } from './server';
export { directoryRevision } from './directory';
