import { existsSync } from 'node:fs';
import type { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import type { RDSClient } from '@aws-sdk/client-rds';
import { join, resolve } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';
import {
  DeprovisionOptions,
  DriverContext,
  DriverInventory,
  DriverTenant,
  ProvisioningDriver,
  TemplateDatabase,
  TenantConnectionInfo,
} from '../provisioning-driver';
import { freezeWrites, reassertWriteFreeze, unfreezeWrites, WriteFreezeAdmin, WriteFreezeTarget } from '../local/write-freeze';
import type { SecretStore, TenantSecret } from '../secrets/secret-store';
import type { ConnectionBudget } from '../connection-budget';
import { measureClusterVolumes } from './cluster-storage';
import { CLUSTER_TERMINATOR_ROLE, ensureClusterTerminatorRole } from './cluster-terminator-role';
import { RDS_IAM_TLS } from './rds-iam-token';
import { ensureTenantAppRole, TENANT_APP_ROLE } from './tenant-app-role';
import { listTenantClusters } from './tenant-clusters';
import { clusterIdentifierForDatabase, tenantIdForDatabase, tenantNames } from './tenant-names';
import {
  DEFAULT_SECRET_PREFIX,
  MASTER_USERNAME,
  TENANT_STACK_OUTPUTS,
  TenantBackendConfig,
  TenantNetworkConfig,
  TenantStackConfig,
  synthTenantStack,
} from './tenant-stack';
import { TerraformOutputs, TerraformRunner, TerraformRunOptions } from './terraform-runner';

/** Rotates an RDS-managed master secret (Secrets Manager `RotateSecret`). `AwsSecretStore` is one. */
export interface ManagedSecretRotator {
  rotateManaged(ref: string): Promise<void>;
}

/** What the driver needs of the secret store: read the master secret, write the tenant's connection secret, rotate. */
export type AwsDriverSecrets = ManagedSecretRotator & Pick<SecretStore, 'get' | 'create' | 'delete'>;

export interface AwsProvisioningDriverOptions {
  runner: TerraformRunner;
  secrets: AwsDriverSecrets;
  network: TenantNetworkConfig;
  backend: TenantBackendConfig;
  /** cdktf output directory; stacks land in `<outdir>/stacks/tenant-<id>/`. Default `cdktf.out`. */
  outdir?: string;
  engineVersion?: string;
  secretPrefix?: string;
  /** Extra tags on every tenant resource. */
  tags?: Record<string, string>;
  /** The role tenant SQL runs as on its cluster. Default `tenant_app`; tests use a unique name on a shared server. */
  appRole?: string;
  /** The role the runtime terminates abandoned backends as. Default `silo_terminator`; tests use a unique name on a shared server. */
  terminatorRole?: string;
  /** TLS of the worker's master login to a cluster. Default verified (RDS CA via NODE_EXTRA_CA_CERTS); `false` only for a local test server. */
  masterTls?: ConnectionOptions | false;
  /** Recovery window of the tenant's connection secret when it is deleted on deprovision. Default 7 days (the AWS minimum). */
  secretRecoveryWindowDays?: number;
  /**
   * CloudWatch, for storage quotas (each cluster's `VolumeBytesUsed`). Without it the driver has no
   * `measureStorage` and the storage sweep skips it (`driver_cannot_measure`).
   */
  cloudWatch?: Pick<CloudWatchClient, 'send' | 'destroy'>;
  /** RDS in the region tenant clusters live in (AWS_REGION): the reconciler's inventory lists the clusters Silo created. */
  rds: Pick<RDSClient, 'send' | 'destroy'>;
  /** Sizes the application role's CONNECTION LIMIT from the tier's per-replica cap (connection-budget.ts). Default: 1 replica, reserve 2. */
  connectionBudget?: ConnectionBudget;
}

// Resource addresses in the synthesized stack (construct ids in TenantStack).
type StackOverrides = Partial<Pick<TenantStackConfig, 'deletionProtection'>>;

const CLUSTER_ADDRESS = 'aws_rds_cluster.cluster';
const KEY_ADDRESSES = ['aws_kms_key.kms_key', 'aws_kms_alias.kms_alias'];

/**
 * Provisions a tenant as its own Terraform stack: synthesize with cdktf, then
 * `terraform init` / `apply` / `output -json` in the stack directory, then (as the cluster's
 * master user) the tenant's application role and the runtime's terminator role, each a recorded
 * step. Tenant SQL never runs as the master user: the connection info names the application role
 * (IAM-token login only) and a connection secret without a password. The master password stays in
 * the RDS-managed secret, read here only to converge the roles.
 */
export class AwsProvisioningDriver implements ProvisioningDriver {
  readonly name = 'aws' as const;
  private readonly outdir: string;

  private readonly appRole: string;
  private readonly terminatorRole: string;

  /**
   * Storage quotas: the latest CloudWatch `VolumeBytesUsed` of each tenant's cluster (the cluster
   * is named from the database, tenant-names.ts), keyed by database name. A database whose cluster
   * has no datapoint in the last 2 hours (or whose name is not one this driver gives) is absent:
   * unknown, not 0. Present only when a CloudWatch client is configured.
   */
  readonly measureStorage?: (databases: string[]) => Promise<Map<string, number>>;

  constructor(private readonly options: AwsProvisioningDriverOptions) {
    this.outdir = options.outdir ?? 'cdktf.out';
    this.appRole = options.appRole ?? TENANT_APP_ROLE;
    this.terminatorRole = options.terminatorRole ?? CLUSTER_TERMINATOR_ROLE;
    const cloudWatch = options.cloudWatch;
    if (cloudWatch) this.measureStorage = (databases) => measureStorageFromCloudWatch(cloudWatch, databases);
  }

  async provision(ctx: DriverContext): Promise<TenantConnectionInfo> {
    const { tenant } = ctx;
    // The directory is derived, not taken from the recorded step: a replay may run on another host.
    const dir = this.stackDir(tenant);
    await ctx.step('synth', async () => this.synth(tenant));
    await ctx.step('init', async () => {
      this.synth(tenant);
      await this.options.runner.init(dir, this.runOptions(ctx, 'init'));
      return true;
    });
    await ctx.step('apply', async () => {
      await this.prepare(ctx, dir);
      await this.options.runner.apply(dir, this.runOptions(ctx, 'apply'));
      return true;
    });
    // The master user's connection (its secret is the RDS-managed one): recorded as before, used only by the steps below.
    const cluster = await ctx.step('outputs', async () => {
      await this.prepare(ctx, dir);
      return connectionFromOutputs(await this.options.runner.output(dir, this.runOptions(ctx, 'output')));
    });
    await ctx.step('tenant-role', async () => this.convergeAppRole(ctx, cluster, cluster.secretRef));
    await ctx.step('terminator-role', async () => this.convergeTerminatorRole(ctx, cluster, cluster.secretRef));
    const secretRef = await ctx.step('tenant-secret', async () => {
      const value: TenantSecret = { username: this.appRole, password: '', auth: 'iam', region: tenant.region, masterSecretRef: cluster.secretRef };
      return this.options.secrets.create(connectionSecretName(tenant.id), value, { tenantId: tenant.id });
    });
    return { host: cluster.host, port: cluster.port, database: cluster.database, username: this.appRole, secretRef };
  }

  /**
   * The final snapshot Aurora takes on delete is the export; its identifier is returned as
   * `exportLocation` (null when there was no cluster to delete). Steps:
   * 1. re-synthesize with deletion protection off and `init`;
   * 2. if the cluster is in state, `apply -target` it so protection is actually lifted
   *    (AWS refuses to delete a protected cluster). Skipped otherwise: a plain apply on a
   *    half-built or already-destroyed tenant would create a cluster;
   * 3. `state rm` the tenant's KMS key and alias so destroy leaves them: the final snapshot
   *    is encrypted with that key and would be unrestorable once the key is deleted;
   * 4. `destroy`. The master secret is RDS-managed and is deleted by RDS with the cluster;
   * 5. the tenant's connection secret (Silo's, under the secret prefix; by name when no connection
   *    was recorded) is scheduled for deletion (absent is fine).
   * `opts.exportDir` is unused on AWS: the export stays in RDS as a snapshot.
   */
  async deprovision(ctx: DriverContext, opts: DeprovisionOptions): Promise<{ exportLocation: string | null }> {
    const { tenant } = ctx;
    const names = tenantNames(tenant.id);
    const dir = this.stackDir(tenant);
    await ctx.step('deprovision-synth', async () => this.synth(tenant, { deletionProtection: false }));
    const inState = await ctx.step('deprovision-inspect', async () => {
      this.synth(tenant, { deletionProtection: false });
      await this.options.runner.init(dir, this.runOptions(ctx, 'init'));
      return this.options.runner.stateList(dir, this.runOptions(ctx, 'state list'));
    });
    const hadCluster = inState.includes(CLUSTER_ADDRESS);
    if (hadCluster) {
      await ctx.step('deprovision-unprotect', async () => {
        await this.prepare(ctx, dir, { deletionProtection: false });
        await this.options.runner.apply(dir, { ...this.runOptions(ctx, 'apply'), targets: [CLUSTER_ADDRESS] });
        return true;
      });
    }
    await ctx.step('deprovision-retain-key', async () => {
      await this.prepare(ctx, dir, { deletionProtection: false });
      const live = await this.options.runner.stateList(dir, this.runOptions(ctx, 'state list'));
      const retained = KEY_ADDRESSES.filter((a) => live.includes(a));
      await this.options.runner.stateRm(dir, retained, this.runOptions(ctx, 'state rm'));
      return retained;
    });
    await ctx.step('deprovision-destroy', async () => {
      await this.prepare(ctx, dir, { deletionProtection: false });
      await this.options.runner.destroy(dir, this.runOptions(ctx, 'destroy'));
      return true;
    });
    // By the connection's ref, or by name when no connection was recorded (a provision that failed after tenant-secret).
    const connectionSecret = opts.connection && !isMasterSecretRef(opts.connection.secretRef)
      ? opts.connection.secretRef
      : (this.options.secretPrefix ?? DEFAULT_SECRET_PREFIX) + connectionSecretName(tenant.id);
    await ctx.step('deprovision-delete-secret', async () => {
      await this.options.secrets.delete(connectionSecret, { recoveryWindowDays: this.options.secretRecoveryWindowDays ?? 7 });
      return true;
    });
    return { exportLocation: hadCluster ? names.finalSnapshotIdentifier : null };
  }

  /**
   * The application role has no password to rotate (IAM tokens live 15 minutes). What rotates is
   * the master secret: RDS-managed, so Secrets Manager `RotateSecret` on it (managed rotation, no
   * Lambda), and RDS generates the new password and applies it to the cluster itself. Before
   * that, the role is converged again (what the tenant may have set on itself since, the current
   * tier's settings). Nothing is written by Silo, and no ref changes. A connection from before
   * application roles (secretRef = the master secret) is rotated the same way.
   */
  async rotateCredentials(ctx: DriverContext, connection: TenantConnectionInfo): Promise<void> {
    let masterRef = connection.secretRef;
    if (!isMasterSecretRef(connection.secretRef)) {
      const app = await this.options.secrets.get(connection.secretRef);
      if (app.auth !== 'iam' || !app.masterSecretRef) {
        throw new SiloError(ErrorCode.PROVISIONING_FAILED, `Secret ${connection.secretRef} is not an IAM connection secret naming its master secret`, 500);
      }
      masterRef = app.masterSecretRef;
      await ctx.step('tenant-role', async () => this.convergeAppRole(ctx, connection, masterRef));
      // Also how a cluster provisioned before the terminator role gets it.
      await ctx.step('terminator-role', async () => this.convergeTerminatorRole(ctx, connection, masterRef));
      // The convergence granted the role its usual privileges again: a write freeze holds through it.
      if (await reassertWriteFreeze(await this.masterLogin(connection, masterRef), freezeTarget(connection))) ctx.log(`write freeze of ${connection.username} re-applied`);
    }
    await ctx.step('rotate-managed-secret', async () => {
      ctx.log('rotating the RDS-managed master secret');
      await this.options.secrets.rotateManaged(masterRef);
      return true;
    });
  }

  /**
   * Refuses (or allows again) writes by the tenant's own SQL past its storage quota: the same freeze
   * as the local driver's (write-freeze.ts), of the application role, run on the tenant's cluster as
   * its master user (password from the RDS-managed secret the connection secret names). A connection
   * from before application roles runs tenant SQL as the master user itself, which cannot be frozen:
   * refused with PROVISIONING_FAILED.
   */
  async setWriteFreeze(connection: TenantConnectionInfo, frozen: boolean): Promise<void> {
    if (isMasterSecretRef(connection.secretRef)) {
      throw new SiloError(ErrorCode.PROVISIONING_FAILED, 'This tenant\'s SQL runs as its cluster\'s master user (a connection from before application roles): its writes cannot be frozen; rotate its credentials first', 409);
    }
    const app = await this.options.secrets.get(connection.secretRef);
    if (app.auth !== 'iam' || !app.masterSecretRef) {
      throw new SiloError(ErrorCode.PROVISIONING_FAILED, `Secret ${connection.secretRef} is not an IAM connection secret naming its master secret`, 500);
    }
    const login = await this.masterLogin(connection, app.masterSecretRef);
    if (frozen) await freezeWrites(login, freezeTarget(connection));
    else await unfreezeWrites(login, freezeTarget(connection));
  }

  /**
   * The reconciler's inventory: the tenant database of every Aurora cluster a TenantStack created in
   * the RDS client's region (tags `managed-by = silo` and `silo:tenant-id`, tenant-clusters.ts). A
   * cluster whose tenant the control database does not know is reported as an orphan. Roles live
   * inside each cluster and are not listed; nothing is `unsealed` (Silo's role owns no database here).
   */
  async inventory(): Promise<DriverInventory> {
    const clusters = await listTenantClusters(this.options.rds);
    return { databases: clusters.map((c) => c.database), roles: [], unsealed: [] };
  }

  /** `tenant_<key>` (tenant-names.ts): the key of a UUID tenant id is the id. */
  tenantIdOf(name: string): string | null {
    return tenantIdForDatabase(name);
  }

  /**
   * Refused: an orphan cluster is reported, never deleted automatically. Deleting one means lifting
   * deletion protection, a final snapshot and its KMS key's fate: an operator's call
   * (docs/provisioning-aws.md, "Orphan clusters").
   */
  async dropOrphan(name: string): Promise<void> {
    const cluster = clusterIdentifierForDatabase(name) ?? name;
    throw new SiloError(ErrorCode.PROVISIONING_FAILED, `The aws driver does not delete clusters on its own: ${cluster} has no tenant; delete it by hand (docs/provisioning-aws.md, Orphan clusters)`, 409, { cluster });
  }

  /** Refused: the inventory never reports an AWS database unsealed (there is nothing of the tenant's to take back). */
  async sealDatabase(name: string): Promise<void> {
    throw new SiloError(ErrorCode.PROVISIONING_FAILED, `The aws driver has no unsealed databases to seal (${name})`, 409);
  }

  /** No template database on AWS: each cluster starts empty and is migrated as a tenant. */
  templateInfo(): TemplateDatabase | null {
    return null;
  }

  /** The SDK clients' sockets; nothing else is held between jobs (each master login is its own client). */
  async close(): Promise<void> {
    this.options.rds.destroy();
    this.options.cloudWatch?.destroy();
  }

  /** The stack config for a tenant (exposed for `silo provision plan`). */
  stackConfig(tenant: DriverTenant, overrides: StackOverrides = {}): TenantStackConfig {
    return {
      tenantId: tenant.id,
      slug: tenant.slug,
      tier: tenant.tier,
      region: tenant.region,
      engineVersion: this.options.engineVersion,
      network: this.options.network,
      backend: this.options.backend,
      secretPrefix: this.options.secretPrefix,
      tags: this.options.tags,
      ...overrides,
    };
  }

  /** Absolute directory of the tenant's synthesized stack, where terraform runs. */
  stackDir(tenant: Pick<DriverTenant, 'id'>): string {
    return resolve(this.outdir, 'stacks', tenantNames(tenant.id).stackId);
  }

  private synth(tenant: DriverTenant, overrides: StackOverrides = {}): string {
    return synthTenantStack(this.stackConfig(tenant, overrides), this.outdir);
  }

  /**
   * Re-synthesizes (cheap, deterministic, and a replayed synth step may come from another host
   * or a cleaned outdir) and runs `init` if this host has no `.terraform` for the stack yet.
   */
  private async prepare(ctx: DriverContext, dir: string, overrides: StackOverrides = {}): Promise<void> {
    this.synth(ctx.tenant, overrides);
    if (!existsSync(join(dir, '.terraform'))) await this.options.runner.init(dir, this.runOptions(ctx, 'init'));
  }

  /** The master user's login to the connection's cluster database (password from its RDS-managed secret, never logged). */
  private async masterLogin(cluster: Pick<TenantConnectionInfo, 'host' | 'port' | 'database'>, masterSecretRef: string): Promise<WriteFreezeAdmin> {
    const master = await this.options.secrets.get(masterSecretRef);
    return {
      host: cluster.host, port: cluster.port, database: cluster.database, user: master.username, password: master.password,
      ssl: this.options.masterTls ?? RDS_IAM_TLS, connectionTimeoutMillis: 10_000,
    };
  }

  /** Logs in as the master user (password from its RDS-managed secret, never logged) and converges the application role. */
  private async convergeAppRole(ctx: DriverContext, cluster: Pick<TenantConnectionInfo, 'host' | 'port' | 'database'>, masterSecretRef: string) {
    const master = await this.options.secrets.get(masterSecretRef);
    ctx.log(`converging role ${this.appRole} on ${cluster.host}:${cluster.port}/${cluster.database} as ${master.username}`);
    const result = await ensureTenantAppRole({
      host: cluster.host, port: cluster.port, database: cluster.database, user: master.username, password: master.password,
      ssl: this.options.masterTls ?? RDS_IAM_TLS,
    }, ctx.tenant.tier, this.appRole, this.options.connectionBudget);
    if (result.tempFileLimit === 'refused') ctx.log(`temp_file_limit refused for ${this.appRole}: the master user may not set it; no per-role temp file limit`);
    if (result.silo?.skipped) ctx.log(`schema silo not converged: ${result.silo.skipped}`);
    for (const line of [...result.silo?.changes ?? [], ...result.silo?.problems ?? []]) ctx.log(`schema silo: ${line}`);
    return result;
  }

  /** As the master user, converges the role the runtime ends abandoned backends as (IAM login, pg_signal_backend; no tenant role a member). */
  private async convergeTerminatorRole(ctx: DriverContext, cluster: Pick<TenantConnectionInfo, 'host' | 'port' | 'database'>, masterSecretRef: string) {
    const master = await this.options.secrets.get(masterSecretRef);
    ctx.log(`converging role ${this.terminatorRole} on ${cluster.host}:${cluster.port} as ${master.username}`);
    const result = await ensureClusterTerminatorRole({
      host: cluster.host, port: cluster.port, database: cluster.database, user: master.username, password: master.password,
      ssl: this.options.masterTls ?? RDS_IAM_TLS,
    }, this.terminatorRole);
    if (result.revokedMembers.length) ctx.log(`removed from ${this.terminatorRole}: ${result.revokedMembers.join(', ')}`);
    return result;
  }

  private runOptions(ctx: DriverContext, command: string): TerraformRunOptions {
    ctx.log(`$ terraform ${command}`);
    return { onLine: (line) => ctx.log(line), signal: ctx.signal };
  }
}

async function measureStorageFromCloudWatch(cloudWatch: Pick<CloudWatchClient, 'send' | 'destroy'>, databases: string[]): Promise<Map<string, number>> {
  const clusterOf = new Map<string, string>();
  for (const database of databases) {
    const cluster = clusterIdentifierForDatabase(database);
    if (cluster) clusterOf.set(database, cluster);
  }
  const volumes = await measureClusterVolumes(cloudWatch, [...clusterOf.values()]);
  const sizes = new Map<string, number>();
  for (const [database, cluster] of clusterOf) {
    const bytes = volumes.get(cluster);
    if (bytes !== undefined) sizes.set(database, bytes);
  }
  return sizes;
}

/**
 * The role frozen is the one the connection names (the application role); the database is the
 * cluster's tenant database. The master user is not a superuser on Aurora (rds_superuser), so it
 * joins the tenant and frozen roles (REASSIGN OWNED needs that of a non-superuser).
 */
function freezeTarget(connection: TenantConnectionInfo): WriteFreezeTarget {
  return { database: connection.database, tenantRole: connection.username, adminJoinsRoles: true };
}

/** The tenant's connection secret, under the store's prefix (the same as `secretPrefix`). */
function connectionSecretName(tenantId: string): string {
  return `${tenantId}/app`;
}

/** RDS names the secrets it manages `rds!…`; Silo's own secrets live under the secret prefix. */
function isMasterSecretRef(ref: string): boolean {
  return /:secret:rds!/.test(ref);
}

function connectionFromOutputs(outputs: TerraformOutputs): TenantConnectionInfo {
  const o = TENANT_STACK_OUTPUTS;
  const str = (name: string): string => {
    const v = outputs[name]?.value;
    if (typeof v !== 'string' || v === '') {
      throw new SiloError(ErrorCode.PROVISIONING_FAILED, `terraform output ${name} is missing or not a string`, 500);
    }
    return v;
  };
  const port = Number(outputs[o.port]?.value);
  if (!Number.isInteger(port) || port <= 0) {
    throw new SiloError(ErrorCode.PROVISIONING_FAILED, `terraform output ${o.port} is missing or not a port`, 500);
  }
  return {
    host: str(o.endpoint),
    port,
    database: str(o.databaseName),
    username: MASTER_USERNAME,
    secretRef: str(o.secretArn),
  };
}
