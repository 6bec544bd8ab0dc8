import { DBCluster, DescribeDBClustersCommand, RDSClient } from '@aws-sdk/client-rds';
import { mockClient } from 'aws-sdk-client-mock';
import { ErrorCode } from '../../common/error-codes';
import type { AwsDriverSecrets } from './aws-provisioning.driver';
import { AwsProvisioningDriver } from './aws-provisioning.driver';
import { listTenantClusters } from './tenant-clusters';
import { tenantNames } from './tenant-names';
import { TerraformRunner } from './terraform-runner';
import { testBackend, testNetwork } from '../../test/support/aws-fixtures';

const LIVE = '0b7f3c52-2a4e-4d1b-9c0a-7e5d3f1a2b4c';
const ORPHAN = '5e6f7a8b-1111-4222-8333-444455556666';
const DELETING = '9a8b7c6d-1111-4222-8333-444455556666';

/** A cluster as a TenantStack leaves it: named and tagged from the tenant id. */
function stackCluster(tenantId: string, extra: Partial<DBCluster> = {}): DBCluster {
  const names = tenantNames(tenantId);
  return {
    DBClusterIdentifier: names.clusterIdentifier, DatabaseName: names.databaseName, Engine: 'aurora-postgresql', Status: 'available',
    TagList: [{ Key: 'silo:tenant-id', Value: tenantId }, { Key: 'silo:tenant-slug', Value: 'acme' }, { Key: 'silo:tier', Value: 'pro' }, { Key: 'managed-by', Value: 'silo' }],
    ...extra,
  };
}

function rdsWith(pages: DBCluster[][]) {
  const client = new RDSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  const rds = mockClient(client);
  rds.on(DescribeDBClustersCommand).callsFake((input: { Marker?: string }) => {
    const i = input.Marker ? Number(input.Marker) : 0;
    return { DBClusters: pages[i], Marker: i + 1 < pages.length ? String(i + 1) : undefined };
  });
  return { client, rds };
}

const noSecrets: AwsDriverSecrets = {
  get: async () => { throw new Error('not used'); },
  create: async () => { throw new Error('not used'); },
  delete: async () => undefined,
  rotateManaged: async () => undefined,
};

describe('listTenantClusters (DescribeDBClusters through aws-sdk-client-mock)', () => {
  it('lists the clusters a TenantStack created, over every page, and only those', async () => {
    const { client, rds } = rdsWith([
      [
        stackCluster(LIVE),
        // Someone else's clusters in the account: not named, or not tagged, as Silo's.
        { DBClusterIdentifier: 'billing-db', Engine: 'aurora-postgresql', Status: 'available', TagList: [{ Key: 'managed-by', Value: 'silo' }] },
        stackCluster(ORPHAN, { TagList: [{ Key: 'silo:tenant-id', Value: ORPHAN }] }),
      ],
      [
        stackCluster(ORPHAN),
        // A tag that does not name this cluster (copied by hand onto another one).
        stackCluster(LIVE, { DBClusterIdentifier: 'silo-tenant-copy' }),
        stackCluster(DELETING, { Status: 'deleting' }),
      ],
    ]);
    const clusters = await listTenantClusters(client);
    expect(clusters).toEqual([
      { clusterIdentifier: `silo-tenant-${LIVE}`, tenantId: LIVE, database: tenantNames(LIVE).databaseName, status: 'available' },
      { clusterIdentifier: `silo-tenant-${ORPHAN}`, tenantId: ORPHAN, database: tenantNames(ORPHAN).databaseName, status: 'available' },
    ]);
    const calls = rds.commandCalls(DescribeDBClustersCommand);
    expect(calls.map((c) => c.args[0].input.Marker)).toEqual([undefined, '1']);
    expect(calls[0].args[0].input.Filters).toEqual([{ Name: 'engine', Values: ['aurora-postgresql'] }]);
  });

  it('fails when RDS does (the reconciler reports it instead of finding no clusters)', async () => {
    const client = new RDSClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    mockClient(client).on(DescribeDBClustersCommand).rejects(Object.assign(new Error('User is not authorized to perform: rds:DescribeDBClusters'), { name: 'AccessDenied' }));
    await expect(listTenantClusters(client)).rejects.toThrow('rds:DescribeDBClusters');
  });
});

describe('AwsProvisioningDriver: inventory and naming for the reconciler', () => {
  const driverWith = (client: RDSClient) =>
    new AwsProvisioningDriver({ runner: new TerraformRunner({ binary: 'terraform' }), secrets: noSecrets, network: testNetwork(), backend: testBackend(), rds: client });

  it('inventories each Silo cluster as its tenant database, and names map back to the tenant ids, so a cluster with no tenant is found', async () => {
    const { client } = rdsWith([[stackCluster(LIVE), stackCluster(ORPHAN)]]);
    const driver = driverWith(client);
    const inv = await driver.inventory();
    expect(inv).toEqual({ databases: [tenantNames(LIVE).databaseName, tenantNames(ORPHAN).databaseName], roles: [], unsealed: [] });
    // What the reconciler does with it: the tenants it knows are LIVE only.
    const known = new Set([LIVE]);
    expect(inv.databases.map((d) => driver.tenantIdOf(d)).filter((id) => !known.has(id ?? ''))).toEqual([ORPHAN]);
    expect(driver.tenantIdOf('t_0b7f3c522a4e4d1b9c0a7e5d3f1a2b4c')).toBeNull(); // the local driver's naming is not this one's
    expect(driver.tenantIdOf('postgres')).toBeNull();
  });

  it('refuses to delete an orphan cluster, naming it, and has no template or unsealed database to act on', async () => {
    const driver = driverWith(rdsWith([[]]).client);
    await expect(driver.dropOrphan(tenantNames(ORPHAN).databaseName)).rejects.toMatchObject({
      code: ErrorCode.PROVISIONING_FAILED, details: { cluster: `silo-tenant-${ORPHAN}` },
    });
    await expect(driver.sealDatabase(tenantNames(ORPHAN).databaseName)).rejects.toMatchObject({ code: ErrorCode.PROVISIONING_FAILED });
    expect(driver.templateInfo()).toBeNull();
  });

  it('close releases the RDS client', async () => {
    const { client } = rdsWith([[]]);
    const destroy = jest.spyOn(client, 'destroy');
    await driverWith(client).close();
    expect(destroy).toHaveBeenCalledTimes(1);
  });
});
