import type { Job } from '../jobs/job.entity';
import type { TenantConnection } from './tenant-connection.entity';
import type { TenantSchemaVersion } from './tenant-schema-version.entity';
import type { TenantStorage } from './tenant-storage.entity';
import type { Tenant } from './tenant.entity';

/** The admin API's tenant shape: connection info without any password. */
export function tenantView(t: Tenant, extra: { connection?: TenantConnection | null; schema?: TenantSchemaVersion | null; jobs?: Job[]; storage?: { row: TenantStorage | null; quotaBytes: number } } = {}) {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    status: t.status,
    tier: t.tier,
    region: t.region,
    customDomain: t.customDomain,
    stripe: { customerId: t.stripeCustomerId, subscriptionId: t.stripeSubscriptionId, status: t.billingStatus, pastDueSince: t.pastDueSince },
    suspendReason: t.suspendReason,
    suspension: t.suspendedBy && { by: t.suspendedBy, cause: t.suspendCause, reason: t.suspendReason },
    failureReason: t.failureReason,
    failedDuring: t.failedDuring,
    offboardAt: t.offboardAt,
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    deletedAt: t.deletedAt,
    version: t.version,
    ...(extra.connection !== undefined
      ? { connection: extra.connection && { host: extra.connection.host, port: extra.connection.port, database: extra.connection.database, username: extra.connection.username, secretRef: extra.connection.secretRef, driver: extra.connection.driver, rotatedAt: extra.connection.rotatedAt } }
      : {}),
    ...(extra.schema !== undefined ? { schema: extra.schema && { version: extra.schema.version, appliedCount: extra.schema.appliedCount, lastError: extra.schema.lastError, drift: extra.schema.drift, updatedAt: extra.schema.updatedAt } } : {}),
    // quotaBytes: the current tier's (the row's is the one its last measurement was judged against).
    ...(extra.storage ? { storage: { usedBytes: extra.storage.row?.usedBytes ?? null, quotaBytes: extra.storage.quotaBytes, measuredAt: extra.storage.row?.measuredAt ?? null, frozen: extra.storage.row?.frozen ?? false } } : {}),
    ...(extra.jobs ? { jobs: extra.jobs.map((j) => ({ id: j.id, type: j.type, status: j.status, attempts: j.attempts, maxAttempts: j.maxAttempts, lastError: j.lastError, runAt: j.runAt, createdAt: j.createdAt, finishedAt: j.finishedAt })) } : {}),
  };
}
