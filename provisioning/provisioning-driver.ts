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

/** Port: one implementation per platform (`local`, `aws`), picked from config. */
export interface ProvisioningDriver {
  readonly name: 'local' | 'aws';
  provision(ctx: DriverContext): Promise<TenantConnectionInfo>;
  /** Exports data, then removes the database, role/cluster and secret. Idempotent. */
  deprovision(ctx: DriverContext, opts: DeprovisionOptions): Promise<{ exportLocation: string | null }>;
  /** Issues a new password, stores it, and applies it to the database. */
  rotateCredentials(ctx: DriverContext, connection: TenantConnectionInfo): Promise<void>;
  /**
   * Storage quotas. Bytes used by each tenant database, keyed by database name (local:
   * pg_database_size). Absent on drivers that cannot measure (AWS: not implemented; it would read
   * the cluster's CloudWatch `VolumeBytesUsed`).
   */
  measureStorage?(databases: string[]): Promise<Map<string, number>>;
  /** Refuses writes by the tenant's own SQL (true) or restores them exactly (false). */
  setWriteFreeze?(connection: TenantConnectionInfo, frozen: boolean): Promise<void>;
}
