import type { ClientConfig } from 'pg';
import type { Logger } from '../common/logger';
import type { DirectoryEntry } from '../common/tenant-directory';
import { tenantLogin } from '../provisioning/aws/rds-iam-token';
import type { ApiKeyVerifier } from './api-key-verifier';
import type { RuntimeConfig } from './config';
import type { CredentialCache } from './credentials';
import { credentialsRevision, TenantDirectory } from './directory';
import type { PoolTarget } from './pool-manager';
import { runtimeErrors } from './runtime-errors';
import type { TenantRef } from './tenant-resolver';
import type { RuntimeTiers } from './tiers';

export interface TenantAccessDeps {
  config: RuntimeConfig;
  logger: Logger;
  directory: TenantDirectory;
  keys: ApiKeyVerifier;
  credentials: CredentialCache;
}

/**
 * Who may use which tenant database, the same for every front door (HTTP and the PostgreSQL wire
 * protocol): the key is checked first, its owner's entry loaded, and only then compared with the
 * tenant the client named; then the tenant's status. And the one pool target per tenant entry, so
 * both front doors share a tenant's pool, its cap and the replica's budget.
 */
export class TenantAccess {
  private readonly targets = new WeakMap<DirectoryEntry, PoolTarget>();

  constructor(private readonly d: TenantAccessDeps) {}

  /**
   * An unknown, deleted or other tenant and any key problem give the one API_KEY_INVALID after the
   * same work, and an outage the same 503 whichever name was asked for, so no answer (nor its
   * timing) tells whether a tenant exists. Only a caller holding the tenant's key learns its status.
   */
  async authenticate(ref: TenantRef, key: string | null): Promise<DirectoryEntry> {
    let entry: DirectoryEntry | null;
    try {
      const tenantId = await this.d.keys.owner(key);
      entry = tenantId === null ? null : await this.d.directory.forTenant(tenantId);
    } catch (err) {
      this.d.logger.error({ err }, 'directory unavailable');
      throw runtimeErrors.unavailable('Tenant directory is unavailable: retry shortly');
    }
    if (!entry || !names(ref, entry)) throw runtimeErrors.apiKeyInvalid();
    return entry;
  }

  /**
   * For a proof that does not reveal the key (SCRAM): the live tenant this slug names, or null —
   * the caller then checks the proof against that tenant's own keys, and refuses an unknown tenant
   * and a wrong proof alike.
   */
  async tenantNamed(slug: string): Promise<DirectoryEntry | null> {
    try {
      return await this.d.directory.forSlug(slug);
    } catch (err) {
      this.d.logger.error({ err }, 'directory unavailable');
      throw runtimeErrors.unavailable('Tenant directory is unavailable: retry shortly');
    }
  }

  /** Throws the error a request of a tenant in this state gets; returns for an active tenant with a database. */
  assertServable(entry: DirectoryEntry): void {
    switch (entry.status) {
      case 'active':
        break;
      case 'suspended':
        throw runtimeErrors.suspended();
      case 'deprovisioning':
        throw runtimeErrors.offboarding();
      default:
        throw runtimeErrors.unavailable(`Tenant is ${entry.status}`);
    }
    if (!entry.host || !entry.database || !entry.secretRef) throw runtimeErrors.unavailable('Tenant has no database yet');
  }

  /** One PoolTarget per directory entry object: a new entry (new revision) means a new identity. */
  targetFor(entry: DirectoryEntry, tier: ReturnType<RuntimeTiers['get']>): PoolTarget {
    const cached = this.targets.get(entry);
    if (cached) return cached;
    const c = this.d.config;
    const target: PoolTarget = {
      tenantId: entry.tenantId,
      label: entry.slug,
      server: `${entry.host}:${entry.port ?? 5432}`,
      // Only what a connection depends on: a renamed tenant, a new custom domain or a tier with another
      // cap keeps its pool (retiring it would briefly double the tenant's connections, exactly when its
      // role's limit bites; the scheduler takes the new cap in place); rotated credentials or another
      // statement timeout (a connection parameter) do not.
      identity: `${entry.host}:${entry.port}/${entry.database}|${entry.username}|${entry.secretRef}|${credentialsRevision(entry.revision)}|${tier.statementTimeoutMs}`,
      max: Math.max(1, Math.min(tier.connectionLimit, c.RUNTIME_MAX_CONNECTIONS_PER_TENANT)),
      secretRef: entry.secretRef as string,
      client: async (): Promise<ClientConfig> => {
        const secret = await this.d.credentials.get(entry.secretRef as string, entry.revision);
        const host = entry.host as string;
        const port = entry.port ?? 5432;
        const user = entry.username ?? secret.username;
        // An IAM secret (Aurora): a token signed for this connect and verified TLS; otherwise password and tenantTlsOptions.
        const { password, ssl } = await tenantLogin(secret, { host, port, user });
        return {
          host, port, database: entry.database as string, user, password, ssl,
          statement_timeout: tier.statementTimeoutMs, idle_in_transaction_session_timeout: c.RUNTIME_IDLE_IN_TRANSACTION_TIMEOUT_MS, application_name: 'silo-runtime',
          connectionTimeoutMillis: c.RUNTIME_CONNECT_TIMEOUT_MS, keepAlive: true,
        };
      },
    };
    this.targets.set(entry, target);
    return target;
  }
}

function names(ref: TenantRef, entry: DirectoryEntry): boolean {
  if (ref.kind === 'slug') return ref.slug === entry.slug;
  return entry.customDomain !== null && entry.customDomain.toLowerCase() === ref.domain;
}
