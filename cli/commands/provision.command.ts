import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { findTenant } from '../../common/control-db/tenant-queries';
import { createLogger } from '../../common/logger';
import { TierCatalog } from '../../control-plane/tenants/tier-catalog';
import type { RegisterCommand } from '../command';
import { UsageError } from '../errors';
import { writeLine } from '../io';

/** `silo provision plan <tenant>`: synthesizes the tenant's CDKTF stack for review; nothing is applied. */
export const registerProvisionCommands: RegisterCommand = (program, { io, context }) => {
  const group = program.command('provision').description('Tenant infrastructure');
  group
    .command('plan')
    .argument('<tenant>', 'tenant slug or id')
    .description("Synthesize the tenant's TenantStack (Aurora, KMS, Secrets Manager, network) to review it before anything is applied")
    .option('--out <dir>', 'where to write cdk.tf.json', '')
    .option('--print', 'print the synthesized Terraform JSON to stdout')
    .action(async (ref: string, opts: { out: string; print?: boolean }) => {
      const config = context.config;
      const pool = await context.controlPool();
      const t = await findTenant(pool, ref);
      if (!t) throw new UsageError(`no tenant ${ref}`);
      const tiers = new TierCatalog(config, createLogger({ name: 'silo-cli', level: 'silent' }));
      // Loaded lazily: cdktf is only needed here.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { synthTenantStack } = require('../../provisioning/aws/tenant-stack') as typeof import('../../provisioning/aws/tenant-stack');
      const missing: string[] = [];
      const or = <T>(v: T | undefined, name: string, placeholder: T): T => {
        if (v === undefined || (Array.isArray(v) && v.length === 0) || v === '') {
          missing.push(name);
          return placeholder;
        }
        return v;
      };
      const region = t.region !== 'local' ? t.region : or(config.AWS_REGION, 'AWS_REGION', 'us-east-1');
      const file = synthTenantStack({
        tenantId: t.id, slug: t.slug, tier: tiers.settings(t.tier), region,
        engineVersion: config.AURORA_ENGINE_VERSION,
        network: {
          vpcId: or(config.AWS_TENANT_VPC_ID, 'AWS_TENANT_VPC_ID', 'vpc-00000000000000000'),
          subnetIds: or(config.AWS_TENANT_SUBNET_IDS, 'AWS_TENANT_SUBNET_IDS', ['subnet-0000000000000000a', 'subnet-0000000000000000b']),
          allowedSecurityGroupIds: or(config.AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS, 'AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS', ['sg-00000000000000000']),
        },
        backend: {
          bucket: or(config.TENANT_STATE_BUCKET, 'TENANT_STATE_BUCKET', 'placeholder-silo-tenant-state'),
          lockTable: or(config.TENANT_STATE_LOCK_TABLE, 'TENANT_STATE_LOCK_TABLE', 'placeholder-silo-tenant-locks'),
          region, keyPrefix: 'tenants',
        },
        secretPrefix: config.SILO_TENANT_SECRET_PREFIX,
      }, opts.out || join(config.CDKTF_OUTDIR, 'plans'));
      if (opts.print) {
        io.stdout.write(readFileSync(file, 'utf8'));
        return;
      }
      const json = JSON.parse(readFileSync(file, 'utf8')) as { resource?: Record<string, Record<string, unknown>>; output?: Record<string, unknown> };
      writeLine(io.stdout, `Synthesized TenantStack for ${t.slug} (${t.id}), tier ${t.tier}: ${file}`);
      for (const [type, byName] of Object.entries(json.resource ?? {})) writeLine(io.stdout, `  ${type} × ${Object.keys(byName).length}`);
      writeLine(io.stdout, `  outputs: ${Object.keys(json.output ?? {}).join(', ')}`);
      if (missing.length) writeLine(io.stderr, `Placeholders used for unset ${missing.join(', ')}: review only, not applicable as is.`);
      writeLine(io.stdout, 'Nothing was applied.');
    });
};
