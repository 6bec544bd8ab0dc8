import type { ConnectionOptions } from 'node:tls';

/** Database credentials as kept in a secret store (same JSON shape as an RDS master secret). */
export interface TenantSecret {
  username: string;
  password: string;
  /**
   * On a tenant server Silo runs: the role's TLS client certificate (CN = username), its private
   * key and the CA that signed it and the server's certificate (PEM). That server accepts tenant
   * roles by certificate only, so the password (which the tenant can change) opens nothing there.
   */
  sslCert?: string;
  sslKey?: string;
  sslCa?: string;
  /**
   * `iam` on an Aurora tenant cluster: the role has no password (`password` is empty) and logs in
   * with an RDS IAM authentication token signed for `region` (see provisioning/aws/rds-iam-token.ts).
   * Absent: password authentication.
   */
  auth?: 'iam';
  region?: string;
  /**
   * With `auth: 'iam'`: the ARN of the cluster's RDS-managed master secret, for the worker's
   * privileged paths (role convergence, rotation). Not a credential: the runtime's IAM role cannot
   * read that secret.
   */
  masterSecretRef?: string;
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

/**
 * TLS options for a tenant connection: with a client certificate in the secret (a tenant server
 * Silo runs), connect over TLS, present it and verify the server against the installation's CA
 * (a server that cannot show a certificate from that CA gets no connection). Without one, the
 * connection is as the server's and driver's defaults make it (password authentication).
 */
export function tenantTlsOptions(secret: TenantSecret): ConnectionOptions | undefined {
  if (!secret.sslCert || !secret.sslKey) return undefined;
  return { cert: secret.sslCert, key: secret.sslKey, ca: secret.sslCa, rejectUnauthorized: true };
}
