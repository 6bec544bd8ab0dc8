import { DbSubnetGroup } from '@cdktf/provider-aws/lib/db-subnet-group';
import { RdsCluster } from '@cdktf/provider-aws/lib/rds-cluster';
import { RdsClusterInstance } from '@cdktf/provider-aws/lib/rds-cluster-instance';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group';
import { Construct } from 'constructs';

export interface ControlDatabaseProps {
  name: string;
  engineVersion: string;
  minAcu: number;
  maxAcu: number;
  instances: number;
  backupRetentionDays: number;
  subnetIds: string[];
  securityGroupId: string;
  kmsKeyArn: string;
}

export const CONTROL_DB_NAME = 'silo';
export const CONTROL_DB_USER = 'silo_admin';

/**
 * The control database: Aurora PostgreSQL Serverless v2, encrypted with the platform key, TLS
 * enforced by the cluster parameter group, deletion protected, and a master password that RDS
 * generates and keeps in Secrets Manager (it never passes through Terraform).
 */
export class ControlDatabase extends Construct {
  readonly cluster: RdsCluster;

  constructor(scope: Construct, id: string, p: ControlDatabaseProps) {
    super(scope, id);
    const major = p.engineVersion.split('.')[0];
    const subnets = new DbSubnetGroup(this, 'subnets', { name: `${p.name}-control-db`, subnetIds: p.subnetIds });
    const params = new RdsClusterParameterGroup(this, 'params', {
      name: `${p.name}-control-db-pg${major}`,
      family: `aurora-postgresql${major}`,
      description: 'Silo control database: TLS only',
      parameter: [
        { name: 'rds.force_ssl', value: '1', applyMethod: 'pending-reboot' },
        { name: 'log_min_duration_statement', value: '1000' },
      ],
      lifecycle: { createBeforeDestroy: true },
    });
    this.cluster = new RdsCluster(this, 'cluster', {
      clusterIdentifier: `${p.name}-control`,
      engine: 'aurora-postgresql',
      engineMode: 'provisioned',
      engineVersion: p.engineVersion,
      databaseName: CONTROL_DB_NAME,
      masterUsername: CONTROL_DB_USER,
      manageMasterUserPassword: true,
      masterUserSecretKmsKeyId: p.kmsKeyArn,
      storageEncrypted: true,
      kmsKeyId: p.kmsKeyArn,
      deletionProtection: true,
      skipFinalSnapshot: false,
      finalSnapshotIdentifier: `${p.name}-control-final`,
      backupRetentionPeriod: p.backupRetentionDays,
      preferredBackupWindow: '02:00-03:00',
      preferredMaintenanceWindow: 'sun:03:30-sun:04:30',
      copyTagsToSnapshot: true,
      dbSubnetGroupName: subnets.name,
      dbClusterParameterGroupName: params.name,
      vpcSecurityGroupIds: [p.securityGroupId],
      enabledCloudwatchLogsExports: ['postgresql'],
      serverlessv2ScalingConfiguration: { minCapacity: p.minAcu, maxCapacity: p.maxAcu },
    });
    for (let i = 0; i < p.instances; i++) {
      new RdsClusterInstance(this, `instance-${i}`, {
        identifier: `${p.name}-control-${i}`,
        clusterIdentifier: this.cluster.id,
        engine: 'aurora-postgresql',
        engineVersion: p.engineVersion,
        instanceClass: 'db.serverless',
        publiclyAccessible: false,
        autoMinorVersionUpgrade: true,
        performanceInsightsEnabled: true,
        performanceInsightsKmsKeyId: p.kmsKeyArn,
        promotionTier: i,
      });
    }
  }
}
