/** Database credentials as kept in a secret store (same JSON shape as an RDS master secret). */
export interface TenantSecret {
  username: string;
  password: string;
}

/**
 * Port for the tenant credential store. A `ref` is opaque to callers: an ARN on AWS,
 * `local:<name>` for the local envelope-encrypted store. Values never leave the process
 * except to the store itself.
 */
export interface SecretStore {
  readonly kind: 'local' | 'aws';
  /** Creates the secret `name` if absent (idempotent) and returns its ref. */
  create(name: string, value: TenantSecret, opts?: { tenantId?: string }): Promise<string>;
  /** Reads the current value. Throws SiloError SECRET_NOT_FOUND when absent or deleted. */
  get(ref: string): Promise<TenantSecret>;
  /** Replaces the value with a new version. */
  rotate(ref: string, value: TenantSecret): Promise<void>;
  /** Schedules deletion, recoverable for `recoveryWindowDays` (AWS minimum is 7). */
  delete(ref: string, opts: { recoveryWindowDays: number }): Promise<void>;
  /** Refs of live (not deleted) secrets whose name starts with `prefix`; for the reconciler. */
  list(prefix: string): Promise<string[]>;
}
