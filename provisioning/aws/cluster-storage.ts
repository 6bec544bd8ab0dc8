import { CloudWatchClient, GetMetricDataCommand, GetMetricDataCommandOutput, MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

/** GetMetricData takes at most 500 metric queries per request. */
export const MAX_QUERIES_PER_REQUEST = 500;
/** How far back a datapoint counts: Aurora publishes VolumeBytesUsed a few times an hour, not every minute. */
export const VOLUME_LOOKBACK_MS = 2 * 60 * 60 * 1000;
/** One datapoint per 5 minutes (the Maximum over each). */
export const VOLUME_PERIOD_SECONDS = 300;

export interface ClusterVolumeOptions {
  /** Default: the current time. */
  now?: () => Date;
  /** Queries per GetMetricData request (at most 500). */
  batchSize?: number;
}

/**
 * The latest `AWS/RDS` `VolumeBytesUsed` (statistic Maximum, 5-minute periods over the last 2 hours)
 * of each cluster, by cluster identifier, in as few GetMetricData requests as the 500-query limit
 * allows (pages of a request followed by NextToken). A cluster without a datapoint in that window is
 * absent from the result (unknown), never 0. A query CloudWatch answers `Forbidden` or
 * `InternalError` fails the whole measurement.
 */
export async function measureClusterVolumes(
  client: Pick<CloudWatchClient, 'send'>,
  clusterIdentifiers: string[],
  opts: ClusterVolumeOptions = {},
): Promise<Map<string, number>> {
  const clusters = [...new Set(clusterIdentifiers)];
  const batchSize = Math.min(opts.batchSize ?? MAX_QUERIES_PER_REQUEST, MAX_QUERIES_PER_REQUEST);
  const end = (opts.now ?? (() => new Date()))();
  const start = new Date(end.getTime() - VOLUME_LOOKBACK_MS);
  const sizes = new Map<string, number>();
  for (let offset = 0; offset < clusters.length; offset += batchSize) {
    const batch = clusters.slice(offset, offset + batchSize);
    // Query ids must start with a lowercase letter; the index maps a result back to its cluster.
    const queries: MetricDataQuery[] = batch.map((cluster, i) => ({
      Id: `c${i}`,
      MetricStat: {
        Metric: { Namespace: 'AWS/RDS', MetricName: 'VolumeBytesUsed', Dimensions: [{ Name: 'DBClusterIdentifier', Value: cluster }] },
        Period: VOLUME_PERIOD_SECONDS,
        Stat: 'Maximum',
      },
      ReturnData: true,
    }));
    const latest = new Map<string, { at: number; bytes: number }>();
    let nextToken: string | undefined;
    do {
      const page: GetMetricDataCommandOutput = await client.send(new GetMetricDataCommand({
        MetricDataQueries: queries, StartTime: start, EndTime: end, ScanBy: 'TimestampDescending', NextToken: nextToken,
      }));
      for (const r of page.MetricDataResults ?? []) {
        if (r.StatusCode === 'Forbidden' || r.StatusCode === 'InternalError') {
          throw new SiloError(ErrorCode.PROVISIONING_FAILED, `CloudWatch GetMetricData answered ${r.StatusCode} for VolumeBytesUsed`, 502);
        }
        const cluster = r.Id && /^c\d+$/.test(r.Id) ? batch[Number(r.Id.slice(1))] : undefined;
        if (!cluster) continue;
        const values = r.Values ?? [];
        const stamps = r.Timestamps ?? [];
        for (let i = 0; i < values.length; i++) {
          const at = stamps[i] ? new Date(stamps[i]).getTime() : Number.NEGATIVE_INFINITY;
          const bytes = values[i];
          if (!Number.isFinite(bytes) || bytes < 0) continue;
          const seen = latest.get(cluster);
          if (!seen || at > seen.at) latest.set(cluster, { at, bytes });
        }
      }
      nextToken = page.NextToken;
    } while (nextToken);
    for (const [cluster, { bytes }] of latest) sizes.set(cluster, Math.round(bytes));
  }
  return sizes;
}
