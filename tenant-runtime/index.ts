export { loadRuntimeConfig } from './config';
export type { RuntimeConfig } from './config';
export { startTenantRuntime } from './server';
export type { RunningTenantRuntime, TenantRuntimeOptions } from './server';
export { directoryRevision } from './directory';
