import type { TenantConnectionInfo } from '../../provisioning/provisioning-driver';

/** Brings a freshly provisioned tenant to the latest tenant migration (implemented by the migration runner). */
export interface TenantSchemaHook {
  migrateTenant(tenant: { id: string; slug: string }, connection: TenantConnectionInfo): Promise<void>;
}

export const TENANT_SCHEMA_HOOK = Symbol('TENANT_SCHEMA_HOOK');
