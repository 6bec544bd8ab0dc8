import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { TerraformOutput, TerraformStack } from 'cdktf';
import { Construct } from 'constructs';
import { InfraConfig } from './config';
import { StateStore } from './constructs/state-store';
import { configureBackend, platformTags } from './platform-stack';

/**
 * Step 0 of a deploy: the bucket and lock table that hold the platform stack's own state.
 * Applied once with local state, which is then migrated into the bucket it created
 * (docs/deploy.md). Tenant state lives elsewhere, in the platform stack's `tenant-state` store.
 */
export class BootstrapStack extends TerraformStack {
  constructor(scope: Construct, id: string, config: InfraConfig) {
    super(scope, id);
    new AwsProvider(this, 'aws', { region: config.region, defaultTags: [{ tags: platformTags(config.name) }] });
    configureBackend(this, config, 'bootstrap');
    const accountId = new DataAwsCallerIdentity(this, 'account').accountId;
    const store = new StateStore(this, 'platform-state', {
      bucketName: config.stateBackend?.bucket ?? `${config.name}-platform-state-${accountId}`,
      lockTableName: config.stateBackend?.lockTable ?? `${config.name}-platform-state-lock`,
    });
    new TerraformOutput(this, 'platform_state_bucket', { value: store.bucket.bucket, description: 'Set SILO_INFRA_STATE_BUCKET to this' });
    new TerraformOutput(this, 'platform_state_lock_table', { value: store.lockTable.name, description: 'Set SILO_INFRA_STATE_LOCK_TABLE to this' });
  }
}
