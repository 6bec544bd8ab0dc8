import { DataAwsSecretsmanagerRandomPassword } from '@cdktf/provider-aws/lib/data-aws-secretsmanager-random-password';
import { ElasticacheReplicationGroup } from '@cdktf/provider-aws/lib/elasticache-replication-group';
import { ElasticacheSubnetGroup } from '@cdktf/provider-aws/lib/elasticache-subnet-group';
import { SecretsmanagerSecret } from '@cdktf/provider-aws/lib/secretsmanager-secret';
import { SecretsmanagerSecretVersion } from '@cdktf/provider-aws/lib/secretsmanager-secret-version';
import { Construct } from 'constructs';

export interface RedisCacheProps {
  name: string;
  nodeType: string;
  engineVersion: string;
  nodes: number;
  subnetIds: string[];
  securityGroupId: string;
  kmsKeyArn: string;
  /** Secrets Manager path for the platform's own secrets, e.g. `silo/platform/`. */
  secretPrefix: string;
}

/**
 * ElastiCache Redis: encrypted at rest (platform key) and in transit (TLS required), AUTH token
 * required.
 *
 * The token comes from Secrets Manager's GetRandomPassword (the `aws_secretsmanager_random_password`
 * data source: provider-aws only, no random provider). That data source returns a new value on
 * every plan, so the first value is pinned by `ignore_changes` on the secret version, and the
 * cluster reads the pinned value. The token is therefore in the platform's Terraform state (an
 * encrypted, private bucket); rotate it with `terraform apply -replace` on the token version.
 * Services receive `REDIS_URL` (rediss://:token@host:6379) from a second secret.
 */
export class RedisCache extends Construct {
  readonly replicationGroup: ElasticacheReplicationGroup;
  readonly authTokenSecret: SecretsmanagerSecret;
  readonly urlSecret: SecretsmanagerSecret;

  constructor(scope: Construct, id: string, p: RedisCacheProps) {
    super(scope, id);
    const generated = new DataAwsSecretsmanagerRandomPassword(this, 'generated-token', {
      passwordLength: 64,
      excludePunctuation: true,
      includeSpace: false,
    });
    this.authTokenSecret = new SecretsmanagerSecret(this, 'auth-token', {
      name: `${p.secretPrefix}redis-auth-token`,
      description: 'Silo Redis AUTH token (generated at first apply)',
      kmsKeyId: p.kmsKeyArn,
      recoveryWindowInDays: 30,
    });
    const token = new SecretsmanagerSecretVersion(this, 'auth-token-value', {
      secretId: this.authTokenSecret.id,
      secretString: generated.randomPassword,
      lifecycle: { ignoreChanges: ['secret_string'] },
    });

    const subnets = new ElasticacheSubnetGroup(this, 'subnets', { name: `${p.name}-redis`, subnetIds: p.subnetIds });
    const failover = p.nodes > 1;
    this.replicationGroup = new ElasticacheReplicationGroup(this, 'redis', {
      replicationGroupId: `${p.name}-redis`,
      description: 'Silo cache, rate limits and pub/sub',
      engine: 'redis',
      engineVersion: p.engineVersion,
      nodeType: p.nodeType,
      port: 6379,
      numCacheClusters: p.nodes,
      automaticFailoverEnabled: failover,
      multiAzEnabled: failover,
      subnetGroupName: subnets.name,
      securityGroupIds: [p.securityGroupId],
      atRestEncryptionEnabled: 'true',
      kmsKeyId: p.kmsKeyArn,
      transitEncryptionEnabled: true,
      transitEncryptionMode: 'required',
      authToken: token.secretString,
      snapshotRetentionLimit: 7,
      snapshotWindow: '03:00-04:00',
      maintenanceWindow: 'sun:04:30-sun:05:30',
      autoMinorVersionUpgrade: 'true',
      applyImmediately: false,
    });

    this.urlSecret = new SecretsmanagerSecret(this, 'url', {
      name: `${p.secretPrefix}redis-url`,
      description: 'Silo REDIS_URL (rediss://, includes the AUTH token)',
      kmsKeyId: p.kmsKeyArn,
      recoveryWindowInDays: 30,
    });
    new SecretsmanagerSecretVersion(this, 'url-value', {
      secretId: this.urlSecret.id,
      secretString: `rediss://:${token.secretString}@${this.replicationGroup.primaryEndpointAddress}:6379`,
    });
  }
}
