import { TierSettings } from './tiers';

/** Where a tenant's database lives. Never holds a password: `secretRef` points at the secret store. */
export interface TenantConnectionInfo {
  host: string;
  port: number;
  database: string;
  username: string;
  secretRef: string;
}

export interface DriverTenant {
  id: string;
  slug: string;
  tier: TierSettings;
  region: string;
}

/**
 * Handed to a driver by the provisioning job. `step` runs `fn` once per tenant operation:
 * its JSON result is recorded in the control database, and on a retry after a crash a
 * recorded step is skipped and its result replayed. Each `fn` must itself be idempotent
 * (create-if-absent) because a crash can land between the work and the record.
 */
export interface DriverContext {
  tenant: DriverTenant;
  step<T>(name: string, fn: () => Promise<T>): Promise<T>;
  /** Appends a line to the job's log (never pass secrets). */
  log(line: string): void;
  signal?: AbortSignal;
}

export interface DeprovisionOptions {
  /** Directory for the data export (local: pg_dump file). */
  exportDir: string;
  connection: TenantConnectionInfo | null;
}

/**
 * What exists on the platform under this installation's marker (the reconciler compares it with the
 * control database). Names are the driver's own; `tenantIdOf` maps them back to tenants.
 */
export interface DriverInventory {
  /** Tenant databases (local: one per tenant on the server; AWS: the database of each Silo cluster). */
  databases: string[];
  /** Tenant login roles outside any listed database (local); AWS: none (the roles live inside each cluster). */
  roles: string[];
  /** Databases whose owner, flags, settings or grants are not what Silo sets (e.g. still owned by the tenant). AWS: none. */
  unsealed: string[];
}

export interface TemplateDatabase {
  /** Superuser URL of the template database itself. */
  adminUrl: string;
  database: string;
  /** The NOLOGIN role that owns its schema objects (migrations run as it). */
  owner: string;
}

/**
 * Port: one implementation per platform (`local`, `aws`), picked from config by
 * `createProvisioningDriver` (create-provisioning-driver.ts). Every member callers use is
 * required; only `measureStorage` is a capability a driver may lack.
 */
export interface ProvisioningDriver {
  readonly name: 'local' | 'aws';
  provision(ctx: DriverContext): Promise<TenantConnectionInfo>;
  /** Exports data, then removes the database, role/cluster and secret. Idempotent. */
  deprovision(ctx: DriverContext, opts: DeprovisionOptions): Promise<{ exportLocation: string | null }>;
  /** Issues a new password (local) or rotates the managed master secret (AWS), stores it, and applies it to the database. */
  rotateCredentials(ctx: DriverContext, connection: TenantConnectionInfo): Promise<void>;
  /**
   * Storage quotas. Bytes used by each tenant database, keyed by database name (local:
   * pg_database_size; AWS: the tenant cluster's latest CloudWatch `VolumeBytesUsed`). A database
   * missing from the result is unknown (no database, or no datapoint yet), not 0. Absent on drivers
   * that cannot measure (AWS without a CloudWatch client).
   */
  measureStorage?(databases: string[]): Promise<Map<string, number>>;
  /** Refuses writes by the tenant's own SQL (true) or restores them exactly (false). */
  setWriteFreeze(connection: TenantConnectionInfo, frozen: boolean): Promise<void>;
  /** Drift checks (the reconciler): what exists on the platform under this installation's marker. */
  inventory(): Promise<DriverInventory>;
  /**
   * Naming: the tenant id an inventory name (database or role) was derived from, or null for a name
   * this driver never gives (local `t_<hex>`, AWS `tenant_<key>`).
   */
  tenantIdOf(name: string): string | null;
  /**
   * Removes a database or role the inventory found with no tenant (`silo reconcile --apply`). The
   * AWS driver refuses (PROVISIONING_FAILED): deleting a cluster is left to an operator.
   */
  dropOrphan(name: string): Promise<void>;
  /** Brings a database the inventory reported `unsealed` back to what Silo sets (AWS reports none and refuses). */
  sealDatabase(name: string): Promise<void>;
  /** The database new tenants are cloned from (fleet migrations migrate it first); null when the driver has none (AWS). */
  templateInfo(): TemplateDatabase | null;
  /** Releases the pools, connections and clients the driver holds. */
  close(): Promise<void>;
}
