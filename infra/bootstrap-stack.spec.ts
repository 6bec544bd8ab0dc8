import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { synthesize } from './testing';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { BootstrapStack } from './bootstrap-stack';
import { parseInfraConfig } from './config';
import { buildApp, stackIds } from './main';

describe('BootstrapStack', () => {
  it('creates an encrypted, private, versioned bucket and a LockID table for the platform state', () => {
    const s = synthesize((app) => new BootstrapStack(app, 'bootstrap', parseInfraConfig({})));
    expect(s.json).toHaveResourceWithProperties(S3BucketServerSideEncryptionConfigurationA, {
      rule: [expect.objectContaining({ apply_server_side_encryption_by_default: { sse_algorithm: 'AES256' } })],
    });
    expect(s.json).toHaveResourceWithProperties(S3BucketPublicAccessBlock, { block_public_acls: true, block_public_policy: true, ignore_public_acls: true, restrict_public_buckets: true });
    expect(s.resource('aws_s3_bucket_versioning', 'platform-state_versioning').versioning_configuration).toEqual({ status: 'Enabled' });
    expect(s.resource('aws_s3_bucket', 'platform-state_bucket').lifecycle).toEqual({ prevent_destroy: true });
    expect(s.resource('aws_dynamodb_table', 'platform-state_lock-table')).toMatchObject({ hash_key: 'LockID', name: 'silo-platform-state-lock' });
    expect(Object.keys(s.doc.output ?? {}).sort()).toEqual(['platform_state_bucket', 'platform_state_lock_table']);
  });
});

describe('infra app', () => {
  it('writes cdk.tf.json for the bootstrap and platform stacks, offline', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'silo-infra-'));
    try {
      const config = parseInfraConfig({});
      buildApp(config, outdir).synth();
      for (const id of Object.values(stackIds(config))) {
        const file = join(outdir, 'stacks', id, 'cdk.tf.json');
        expect(existsSync(file)).toBe(true);
        expect(JSON.parse(readFileSync(file, 'utf8'))).toHaveProperty('resource');
      }
      expect(stackIds(config)).toEqual({ bootstrap: 'silo-bootstrap', platform: 'silo-platform' });
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});
