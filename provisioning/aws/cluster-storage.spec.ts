import { CloudWatchClient, GetMetricDataCommand, GetMetricDataCommandInput, MetricDataResult } from '@aws-sdk/client-cloudwatch';
import { mockClient } from 'aws-sdk-client-mock';
import { measureClusterVolumes, VOLUME_LOOKBACK_MS } from './cluster-storage';
import { clusterIdentifierForDatabase, tenantNames } from './tenant-names';

const NOW = new Date('2026-12-03T12:00:00.000Z');
const at = (minutesAgo: number) => new Date(NOW.getTime() - minutesAgo * 60_000);

function cloudWatch() {
  const client = new CloudWatchClient({ region: 'eu-west-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
  return { client, cw: mockClient(client) };
}

/** The cluster each query of a request names (its only dimension). */
const clustersOf = (input: GetMetricDataCommandInput) =>
  (input.MetricDataQueries ?? []).map((q) => q.MetricStat?.Metric?.Dimensions?.[0]?.Value);

describe('measureClusterVolumes (CloudWatch GetMetricData through aws-sdk-client-mock)', () => {
  it('asks for AWS/RDS VolumeBytesUsed, Maximum, per DBClusterIdentifier, over the last 2 hours, newest first', async () => {
    const { client, cw } = cloudWatch();
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [] });
    await measureClusterVolumes(client, ['silo-tenant-a', 'silo-tenant-b'], { now: () => NOW });
    const calls = cw.commandCalls(GetMetricDataCommand);
    expect(calls).toHaveLength(1);
    const input = calls[0].args[0].input;
    expect(input.StartTime).toEqual(new Date(NOW.getTime() - VOLUME_LOOKBACK_MS));
    expect(input.EndTime).toEqual(NOW);
    expect(input.ScanBy).toBe('TimestampDescending');
    expect(input.MetricDataQueries).toEqual(['silo-tenant-a', 'silo-tenant-b'].map((cluster, i) => ({
      Id: `c${i}`,
      MetricStat: {
        Metric: { Namespace: 'AWS/RDS', MetricName: 'VolumeBytesUsed', Dimensions: [{ Name: 'DBClusterIdentifier', Value: cluster }] },
        Period: 300,
        Stat: 'Maximum',
      },
      ReturnData: true,
    })));
  });

  it('maps each result back to its cluster and keeps the latest datapoint; a cluster without one is absent (unknown), not 0', async () => {
    const { client, cw } = cloudWatch();
    const results: MetricDataResult[] = [
      // Out of order on purpose: the newest timestamp wins, whatever the order.
      { Id: 'c1', StatusCode: 'Complete', Timestamps: [at(65), at(5), at(35)], Values: [100, 300, 200] },
      { Id: 'c0', StatusCode: 'Complete', Timestamps: [at(10)], Values: [5_368_709_120] },
      { Id: 'c2', StatusCode: 'Complete', Timestamps: [], Values: [] },
    ];
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: results });
    const sizes = await measureClusterVolumes(client, ['silo-tenant-a', 'silo-tenant-b', 'silo-tenant-new'], { now: () => NOW });
    expect([...sizes]).toEqual([['silo-tenant-b', 300], ['silo-tenant-a', 5_368_709_120]]);
    expect(sizes.has('silo-tenant-new')).toBe(false);
  });

  it('batches at most 500 clusters per request (1 201 clusters: 500 + 500 + 201), each batch with its own query ids', async () => {
    const { client, cw } = cloudWatch();
    cw.on(GetMetricDataCommand).callsFake((input: GetMetricDataCommandInput) => ({
      MetricDataResults: (input.MetricDataQueries ?? []).map((q) => ({
        Id: q.Id, StatusCode: 'Complete', Timestamps: [at(1)], Values: [Number(q.MetricStat?.Metric?.Dimensions?.[0]?.Value?.split('-').pop())],
      })),
    }));
    const clusters = Array.from({ length: 1201 }, (_, i) => `silo-tenant-${i}`);
    const sizes = await measureClusterVolumes(client, clusters, { now: () => NOW });
    const calls = cw.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(calls.map((i) => i.MetricDataQueries?.length)).toEqual([500, 500, 201]);
    expect(calls.flatMap(clustersOf)).toEqual(clusters);
    expect(calls[1].MetricDataQueries?.[0].Id).toBe('c0');
    expect(sizes.size).toBe(1201);
    for (const [i, cluster] of clusters.entries()) expect(sizes.get(cluster)).toBe(i);
  });

  it('follows NextToken within a batch and merges the pages of one query', async () => {
    const { client, cw } = cloudWatch();
    cw.on(GetMetricDataCommand)
      .resolvesOnce({ MetricDataResults: [{ Id: 'c0', StatusCode: 'PartialData', Timestamps: [at(2)], Values: [42] }], NextToken: 'page-2' })
      .resolvesOnce({ MetricDataResults: [{ Id: 'c0', StatusCode: 'Complete', Timestamps: [at(50)], Values: [7] }, { Id: 'c1', StatusCode: 'Complete', Timestamps: [at(3)], Values: [9] }] });
    const sizes = await measureClusterVolumes(client, ['silo-tenant-a', 'silo-tenant-b'], { now: () => NOW });
    const calls = cw.commandCalls(GetMetricDataCommand).map((c) => c.args[0].input);
    expect(calls.map((i) => i.NextToken)).toEqual([undefined, 'page-2']);
    expect(clustersOf(calls[1])).toEqual(['silo-tenant-a', 'silo-tenant-b']);
    expect([...sizes]).toEqual([['silo-tenant-a', 42], ['silo-tenant-b', 9]]);
  });

  it('makes no request for no clusters, and asks once for a cluster named twice', async () => {
    const { client, cw } = cloudWatch();
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: 'c0', StatusCode: 'Complete', Timestamps: [at(1)], Values: [1] }] });
    expect((await measureClusterVolumes(client, [])).size).toBe(0);
    expect(cw.commandCalls(GetMetricDataCommand)).toHaveLength(0);
    await measureClusterVolumes(client, ['silo-tenant-a', 'silo-tenant-a'], { now: () => NOW });
    expect(clustersOf(cw.commandCalls(GetMetricDataCommand)[0].args[0].input)).toEqual(['silo-tenant-a']);
  });

  it('fails the measurement when CloudWatch answers Forbidden (no partial figures acted on), and passes SDK errors through', async () => {
    const { client, cw } = cloudWatch();
    cw.on(GetMetricDataCommand).resolves({ MetricDataResults: [{ Id: 'c0', StatusCode: 'Forbidden', Messages: [{ Code: 'Forbidden', Value: 'no' }] }] });
    await expect(measureClusterVolumes(client, ['silo-tenant-a'], { now: () => NOW })).rejects.toMatchObject({ code: 'PROVISIONING_FAILED' });
    cw.reset();
    cw.on(GetMetricDataCommand).rejects(new Error('AccessDenied: not authorized to perform cloudwatch:GetMetricData'));
    await expect(measureClusterVolumes(client, ['silo-tenant-a'], { now: () => NOW })).rejects.toThrow(/GetMetricData/);
  });
});

describe('clusterIdentifierForDatabase (the inverse of tenantNames().databaseName)', () => {
  it('gives back the cluster of the tenant the database was named for (UUID and ULID ids)', () => {
    for (const id of ['0f8e2c1a-1111-4222-8333-444455556666', '01HZX3Q9V7K2M4N6P8R0S2T4V6', 'Acme_Corp--42']) {
      expect([id, clusterIdentifierForDatabase(tenantNames(id).databaseName)]).toEqual([id, tenantNames(id).clusterIdentifier]);
    }
  });

  it('is null for names the driver does not give its databases', () => {
    for (const db of ['postgres', 'tenant_', 'tenant_Abc', 'tenant__x', 'tenant_x_', 't_0123', `tenant_${'a'.repeat(41)}`]) {
      expect([db, clusterIdentifierForDatabase(db)]).toEqual([db, null]);
    }
  });
});
