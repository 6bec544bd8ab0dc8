import { ErrorCode } from '../../common/error-codes';
import { SiloError } from '../../common/errors';

/** Every AWS name derived from a tenant id. Names use the opaque id, never the slug. */
export interface TenantNames {
  /** Normalised id: lowercase letters, digits and single hyphens. */
  key: string;
  /** cdktf stack id and directory name under `<outdir>/stacks/`. */
  stackId: string;
  clusterIdentifier: string;
  finalSnapshotIdentifier: string;
  /** Postgres database name (letters, digits, underscores). */
  databaseName: string;
  kmsAlias: string;
  subnetGroupName: string;
  securityGroupName: string;
  /** State object key inside the backend bucket, relative to the key prefix. */
  stateFileName: string;
}

// RDS identifiers allow 63 characters; `silo-tenant-` (12) + key + `-final` (6) must fit.
const MAX_KEY_LENGTH = 40;

/**
 * Derives AWS names from a tenant id. Ids are normalised (lowercased, anything other than
 * letters and digits becomes a single hyphen) so UUIDs and ULIDs both work; an id that is
 * empty or too long after that is rejected rather than truncated, since truncation could
 * give two tenants the same cluster.
 */
export function tenantNames(tenantId: string): TenantNames {
  const key = tenantId.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (!key || key.length > MAX_KEY_LENGTH) {
    throw new SiloError(
      ErrorCode.VALIDATION_FAILED,
      `Tenant id must contain letters or digits and be at most ${MAX_KEY_LENGTH} characters once normalised`,
      400,
      { tenantId },
    );
  }
  const base = `silo-tenant-${key}`;
  return {
    key,
    stackId: `tenant-${key}`,
    clusterIdentifier: base,
    finalSnapshotIdentifier: `${base}-final`,
    databaseName: `tenant_${key.replace(/-/g, '_')}`,
    kmsAlias: `alias/silo/tenant-${key}`,
    subnetGroupName: `${base}-db`,
    securityGroupName: `${base}-db`,
    stateFileName: `tenant-${key}.tfstate`,
  };
}

/**
 * The cluster identifier of the tenant whose database is `database` (the inverse of
 * `tenantNames(id).databaseName`: a key has no underscores, so `tenant_<key with _>` names one key),
 * or null for a name the driver does not give its databases.
 */
export function clusterIdentifierForDatabase(database: string): string | null {
  const key = keyForDatabase(database);
  return key === null ? null : tenantNames(key).clusterIdentifier;
}

/**
 * The tenant id behind a database name this driver gives, or null. That is the normalised key:
 * Silo's tenant ids are lowercase UUIDs, which normalise to themselves.
 */
export function tenantIdForDatabase(database: string): string | null {
  return keyForDatabase(database);
}

function keyForDatabase(database: string): string | null {
  const m = /^tenant_([a-z0-9]+(?:_[a-z0-9]+)*)$/.exec(database);
  if (!m) return null;
  const key = m[1].replace(/_/g, '-');
  return key.length > MAX_KEY_LENGTH ? null : key;
}
