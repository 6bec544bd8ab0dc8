import type { DirectorySigner } from './directory-signer';
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

/** What the runtime caches about an API key: its owner and hash, never the key itself. */
export interface ApiKeyRecord {
  tenantId: string;
  hash: string;
  revoked: boolean;
  expiresAt: number | null;
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

const str = (v: unknown): v is string => typeof v === 'string';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
const intOrNull = (v: unknown): v is number | null => v === null || Number.isInteger(v);

const entryFields = (e: DirectoryEntry): unknown[] =>
  [e.tenantId, e.slug, e.status, e.tier, e.host, e.port, e.database, e.username, e.secretRef, e.customDomain, e.revision];
const keyFields = (r: ApiKeyRecord): unknown[] => [r.tenantId, r.hash, r.revoked, r.expiresAt];

/**
 * How directory and key records are stored in the KvStore: JSON with an HMAC (`sig`, see
 * DirectorySigner) over the fields and the key they are stored under. Decoders return null
 * (a cache miss: the control database answers) for anything malformed, unsigned, badly
 * signed, or stored under another key than the one it was signed for.
 */
export const directoryCodec = {
  encodeEntry(signer: DirectorySigner, e: DirectoryEntry): string {
    const entry: DirectoryEntry = {
      tenantId: e.tenantId, slug: e.slug, status: e.status, tier: e.tier, host: e.host, port: e.port, database: e.database,
      username: e.username, secretRef: e.secretRef, customDomain: e.customDomain, revision: e.revision,
    };
    return JSON.stringify({ ...entry, sig: signer.sign('tenant', e.slug, entryFields(entry)) });
  },
  decodeEntry(signer: DirectorySigner, slug: string, raw: string): DirectoryEntry | null {
    const o = parse(raw);
    if (!o) return null;
    const e = o as unknown as DirectoryEntry;
    const shaped = str(e.tenantId) && str(e.slug) && str(e.status) && str(e.tier) && strOrNull(e.host) && intOrNull(e.port) && strOrNull(e.database)
      && strOrNull(e.username) && strOrNull(e.secretRef) && strOrNull(e.customDomain) && str(e.revision);
    if (!shaped || e.slug !== slug || !signer.verify('tenant', slug, entryFields(e), o.sig)) return null;
    return {
      tenantId: e.tenantId, slug: e.slug, status: e.status, tier: e.tier, host: e.host, port: e.port, database: e.database,
      username: e.username, secretRef: e.secretRef, customDomain: e.customDomain, revision: e.revision,
    };
  },
  encodeDomain(signer: DirectorySigner, domain: string, slug: string): string {
    return JSON.stringify({ slug, sig: signer.sign('domain', domain.toLowerCase(), [slug]) });
  },
  decodeDomain(signer: DirectorySigner, domain: string, raw: string): string | null {
    const o = parse(raw);
    return o && str(o.slug) && o.slug && signer.verify('domain', domain.toLowerCase(), [o.slug], o.sig) ? o.slug : null;
  },
  encodeApiKey(signer: DirectorySigner, prefix: string, r: ApiKeyRecord): string {
    const record: ApiKeyRecord = { tenantId: r.tenantId, hash: r.hash, revoked: r.revoked, expiresAt: r.expiresAt };
    return JSON.stringify({ ...record, sig: signer.sign('apikey', prefix, keyFields(record)) });
  },
  decodeApiKey(signer: DirectorySigner, prefix: string, raw: string): ApiKeyRecord | null {
    const o = parse(raw);
    if (!o) return null;
    const r = o as unknown as ApiKeyRecord;
    if (!(str(r.tenantId) && str(r.hash) && typeof r.revoked === 'boolean' && intOrNull(r.expiresAt))) return null;
    if (!signer.verify('apikey', prefix, keyFields(r), o.sig)) return null;
    return { tenantId: r.tenantId, hash: r.hash, revoked: r.revoked, expiresAt: r.expiresAt };
  },
};

function parse(raw: string): Record<string, unknown> | null {
  try {
    const o: unknown = JSON.parse(raw);
    return o && typeof o === 'object' && !Array.isArray(o) ? (o as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** Writer side, used by the control plane. Cache failures are reported, never thrown: the control DB is the truth. */
export class DirectoryPublisher {
  constructor(private readonly kv: KvStore, private readonly signer: DirectorySigner, private readonly onError: (err: unknown) => void = () => undefined) {}

  /**
   * The writes and then the invalidation, all sent at once on the one command connection (one round
   * trip): Redis runs them in order, so a replica that hears the invalidation reads the new entry.
   */
  async publishTenant(entry: DirectoryEntry, previousDomain?: string | null): Promise<boolean> {
    const sent: Array<Promise<boolean>> = [];
    const send = (op: () => Promise<void>) => sent.push(this.safe(op));
    if (entry.status === 'deleted') {
      send(() => this.kv.del(directoryKeys.slug(entry.slug), ...(entry.customDomain ? [directoryKeys.domain(entry.customDomain)] : [])));
    } else {
      send(() => this.kv.set(directoryKeys.slug(entry.slug), directoryCodec.encodeEntry(this.signer, entry), DIRECTORY_TTL_SECONDS));
      if (entry.customDomain) send(() => this.kv.set(directoryKeys.domain(entry.customDomain as string), directoryCodec.encodeDomain(this.signer, entry.customDomain as string, entry.slug), DIRECTORY_TTL_SECONDS));
    }
    if (previousDomain && previousDomain !== entry.customDomain) send(() => this.kv.del(directoryKeys.domain(previousDomain)));
    sent.push(this.invalidate({ kind: 'tenant', tenantId: entry.tenantId, slug: entry.slug, customDomain: entry.customDomain }));
    // Whether every write landed: a caller records the entry as published only then, so a write
    // lost to a Redis outage (or a connection not ready yet) is left for the repair to redo.
    return (await Promise.all(sent)).every(Boolean);
  }

  async removeTenant(slug: string, tenantId: string, customDomain: string | null): Promise<boolean> {
    const removed = await this.safe(() => this.kv.del(directoryKeys.slug(slug), ...(customDomain ? [directoryKeys.domain(customDomain)] : [])));
    return (await this.invalidate({ kind: 'tenant', tenantId, slug, customDomain })) && removed;
  }

  async invalidateApiKey(prefix: string, tenantId: string): Promise<void> {
    await this.safe(() => this.kv.del(directoryKeys.apiKey(prefix)));
    await this.invalidate({ kind: 'api-key', prefix, tenantId });
  }

  private async invalidate(msg: Invalidation): Promise<boolean> {
    return this.safe(() => this.kv.publish(DIRECTORY_CHANNEL, JSON.stringify(msg)));
  }

  /** Runs a cache write; a failure is reported and answered false, never thrown. */
  private async safe(fn: () => Promise<unknown>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (err) {
      this.onError(err);
      return false;
    }
  }
}
