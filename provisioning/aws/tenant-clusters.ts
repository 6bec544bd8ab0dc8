import { DescribeDBClustersCommand, type RDSClient } from '@aws-sdk/client-rds';
import { tenantNames } from './tenant-names';

/** One Aurora cluster a TenantStack created, as the reconciler's inventory sees it. */
export interface TenantCluster {
  clusterIdentifier: string;
  /** The tenant the cluster was created for (its `silo:tenant-id` tag, checked against the identifier). */
  tenantId: string;
  /** The cluster's tenant database (`tenant_<key>`), what `tenant_connections.database` records. */
  database: string;
  status: string;
}

const CLUSTER_PREFIX = 'silo-tenant-';

/**
 * Every Aurora PostgreSQL cluster in the client's region that a TenantStack created: tagged
 * `managed-by = silo` with a `silo:tenant-id` whose derived cluster identifier is the cluster's own
 * (tenant-names.ts). Clusters already `deleting` are left out: they are on their way out. Reads
 * every page of DescribeDBClusters (the API has no tag filter; tags come back in `TagList`).
 */
export async function listTenantClusters(rds: Pick<RDSClient, 'send'>): Promise<TenantCluster[]> {
  const clusters: TenantCluster[] = [];
  let marker: string | undefined;
  do {
    const page = await rds.send(new DescribeDBClustersCommand({ Filters: [{ Name: 'engine', Values: ['aurora-postgresql'] }], MaxRecords: 100, Marker: marker }));
    for (const c of page.DBClusters ?? []) {
      const id = c.DBClusterIdentifier;
      if (!id?.startsWith(CLUSTER_PREFIX) || c.Status === 'deleting') continue;
      const tags = new Map((c.TagList ?? []).map((t) => [t.Key, t.Value]));
      const tenantId = tags.get('silo:tenant-id');
      if (tags.get('managed-by') !== 'silo' || !tenantId || clusterOf(tenantId) !== id) continue;
      clusters.push({ clusterIdentifier: id, tenantId, database: c.DatabaseName || tenantNames(tenantId).databaseName, status: c.Status ?? 'unknown' });
    }
    marker = page.Marker || undefined;
  } while (marker);
  return clusters;
}

function clusterOf(tenantId: string): string | null {
  try {
    return tenantNames(tenantId).clusterIdentifier;
  } catch {
    return null; // a tag no tenant id could have produced
  }
}
