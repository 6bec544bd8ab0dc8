import { KvStore } from './kv-store';

/**
 * The tenant directory: what the runtime needs to route a request, published by the control
 * plane into the KvStore. It never contains a password, only the secret store reference.
 */
export interface DirectoryEntry {
  tenantId: string;
  slug: string;
  status: string;
  tier: string;
  host: string | null;
  port: number | null;
  database: string | null;
  username: string | null;
  secretRef: string | null;
  customDomain: string | null;
  /** Bumped on every change (tenant version + credential rotation), so replicas can tell stale pool credentials. */
  revision: string;
}

export type Invalidation =
  | { kind: 'tenant'; tenantId: string; slug: string; customDomain?: string | null }
  | { kind: 'api-key'; prefix: string; tenantId: string };

export const DIRECTORY_CHANNEL = 'silo:directory:invalidate';
export const DIRECTORY_TTL_SECONDS = 3600;
export const directoryKeys = {
  slug: (slug: string) => `silo:tenant:slug:${slug}`,
  domain: (domain: string) => `silo:tenant:domain:${domain.toLowerCase()}`,
  apiKey: (prefix: string) => `silo:apikey:${prefix}`,
};

/** Writer side, used by the control plane. Cache failures are reported, never thrown: the control DB is the truth. */
export class DirectoryPublisher {
  constructor(private readonly kv: KvStore, private readonly onError: (err: unknown) => void = () => undefined) {}

  async publishTenant(entry: DirectoryEntry, previousDomain?: string | null): Promise<void> {
    await this.safe(async () => {
      if (entry.status === 'deleted') {
        await this.kv.del(directoryKeys.slug(entry.slug), ...(entry.customDomain ? [directoryKeys.domain(entry.customDomain)] : []));
      } else {
        await this.kv.set(directoryKeys.slug(entry.slug), JSON.stringify(entry), DIRECTORY_TTL_SECONDS);
        if (entry.customDomain) await this.kv.set(directoryKeys.domain(entry.customDomain), entry.slug, DIRECTORY_TTL_SECONDS);
      }
      if (previousDomain && previousDomain !== entry.customDomain) await this.kv.del(directoryKeys.domain(previousDomain));
    });
    await this.invalidate({ kind: 'tenant', tenantId: entry.tenantId, slug: entry.slug, customDomain: entry.customDomain });
  }

  async removeTenant(slug: string, tenantId: string, customDomain: string | null): Promise<void> {
    await this.safe(() => this.kv.del(directoryKeys.slug(slug), ...(customDomain ? [directoryKeys.domain(customDomain)] : [])));
    await this.invalidate({ kind: 'tenant', tenantId, slug, customDomain });
  }

  async invalidateApiKey(prefix: string, tenantId: string): Promise<void> {
    await this.safe(() => this.kv.del(directoryKeys.apiKey(prefix)));
    await this.invalidate({ kind: 'api-key', prefix, tenantId });
  }

  private async invalidate(msg: Invalidation): Promise<void> {
    await this.safe(() => this.kv.publish(DIRECTORY_CHANNEL, JSON.stringify(msg)));
  }

  private async safe(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.onError(err);
    }
  }
}
