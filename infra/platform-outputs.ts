/**
 * What the platform stack exports for the provisioning driver and tenant stacks.
 * Deliberately free of cdktf imports: the control plane and the CLI can use it cheaply.
 *
 * The same names are used as Terraform output names (`PLATFORM_OUTPUT_NAMES`), so
 * `terraform output -json` (or `cdktf output --outputs-file`) feeds `parsePlatformOutputs`,
 * and `toControlPlaneEnv` turns the result into the control plane's environment.
 */
export interface PlatformOutputs {
  region: string;
  vpcId: string;
  /** Private subnets, one per AZ: tenant Aurora clusters go here. */
  privateSubnetIds: string[];
  runtimeSecurityGroupId: string;
  controlPlaneSecurityGroupId: string;
  workerSecurityGroupId: string;
  /** Security groups a tenant database must admit on 5432 (runtime, worker, control plane). */
  tenantDbAllowedSecurityGroupIds: string[];
  tenantStateBucket: string;
  tenantStateLockTable: string;
  tenantSecretPrefix: string;
}

/** Terraform output name for each field. */
export const PLATFORM_OUTPUT_NAMES: { readonly [K in keyof PlatformOutputs]: string } = {
  region: 'region',
  vpcId: 'vpc_id',
  privateSubnetIds: 'private_subnet_ids',
  runtimeSecurityGroupId: 'runtime_security_group_id',
  controlPlaneSecurityGroupId: 'control_plane_security_group_id',
  workerSecurityGroupId: 'worker_security_group_id',
  tenantDbAllowedSecurityGroupIds: 'tenant_db_allowed_security_group_ids',
  tenantStateBucket: 'tenant_state_bucket',
  tenantStateLockTable: 'tenant_state_lock_table',
  tenantSecretPrefix: 'tenant_secret_prefix',
};

const LIST_FIELDS = new Set<keyof PlatformOutputs>(['privateSubnetIds', 'tenantDbAllowedSecurityGroupIds']);

/**
 * Accepts `terraform output -json` (`{ name: { value, type, sensitive } }`) or a flat
 * `{ name: value }` object (the per-stack object of `cdktf output --outputs-file`).
 * Throws listing every missing or mistyped output.
 */
export function parsePlatformOutputs(json: unknown): PlatformOutputs {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error('platform outputs: expected a JSON object');
  const raw = json as Record<string, unknown>;
  const problems: string[] = [];
  const out: Record<string, string | string[]> = {};
  for (const [field, name] of Object.entries(PLATFORM_OUTPUT_NAMES) as [keyof PlatformOutputs, string][]) {
    let v = raw[name];
    if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'value' in v) v = (v as { value: unknown }).value;
    if (LIST_FIELDS.has(field)) {
      if (!Array.isArray(v) || v.length === 0 || !v.every((s) => typeof s === 'string' && s.length > 0)) {
        problems.push(`${name}: expected a non-empty list of strings`);
      } else {
        out[field] = v as string[];
      }
    } else if (typeof v !== 'string' || v.length === 0) {
      problems.push(`${name}: expected a non-empty string`);
    } else {
      out[field] = v;
    }
  }
  if (problems.length > 0) throw new Error(`platform outputs:\n  - ${problems.join('\n  - ')}`);
  return out as unknown as PlatformOutputs;
}

/**
 * The control plane / worker environment that points the AWS provisioning driver at this platform.
 * The ECS task definitions already carry these; use this for a control plane run elsewhere.
 */
export function toControlPlaneEnv(o: PlatformOutputs): Record<string, string> {
  return {
    AWS_REGION: o.region,
    PROVISIONING_DRIVER: 'aws',
    SECRET_STORE: 'aws',
    AWS_TENANT_VPC_ID: o.vpcId,
    AWS_TENANT_SUBNET_IDS: o.privateSubnetIds.join(','),
    AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: o.tenantDbAllowedSecurityGroupIds.join(','),
    TENANT_STATE_BUCKET: o.tenantStateBucket,
    TENANT_STATE_LOCK_TABLE: o.tenantStateLockTable,
    SILO_TENANT_SECRET_PREFIX: o.tenantSecretPrefix,
  };
}
