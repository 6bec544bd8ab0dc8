import type { Pool } from 'pg';
import type { DirectorySigner } from '../common/directory-signer';
import type { KvStore } from '../common/kv-store';
import { directoryCodec, DirectoryEntry, directoryKeys, Invalidation } from '../common/tenant-directory';
import { CacheSource, TieredCache } from './tiered-cache';
import type { TenantRef } from './tenant-resolver';

export interface DirectoryOptions {
  control: Pool;
  kv: KvStore;
  /** Verifies what the KvStore holds (a forged or unsigned record is a miss) and signs write-throughs. */
  signer: DirectorySigner;
  cacheSize: number;
  freshMs: () => number;
  negativeMs: number;
  staleIfErrorMs: number;
  onSource?: (source: CacheSource) => void;
  onError: (err: unknown, stage: string) => void;
}

/** Seconds a runtime-written KvStore entry lives: short, since the control plane owns these keys. */
const WRITE_THROUGH_TTL_SECONDS = 300;

/** Same formula as the control plane's publisher: tenant version + credential rotation time. */
export function directoryRevision(version: number, rotatedAt: Date | null): string {
  return `${version}:${rotatedAt?.getTime() ?? 0}`;
}

/** The part of a revision that changes with the credentials (their rotation time), not with every tenant update. */
export function credentialsRevision(revision: string): string {
  return revision.slice(revision.indexOf(':') + 1);
}

const BY_SLUG = `
  SELECT t.id, t.slug, t.status, t.tier, t.custom_domain, t.version,
         c.host, c.port, c.database, c.username, c.secret_ref, c.rotated_at
  FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id
  WHERE t.slug = $1
  ORDER BY (t.status = 'deleted'), t.created_at DESC LIMIT 1`;
const BY_DOMAIN = `SELECT slug FROM tenants WHERE custom_domain = $1 AND status <> 'deleted'`;

interface Row {
  id: string; slug: string; status: string; tier: string; custom_domain: string | null; version: number;
  host: string | null; port: number | null; database: string | null; username: string | null; secret_ref: string | null; rotated_at: Date | null;
}

/**
 * The runtime's read side of the tenant directory: slug or custom domain → DirectoryEntry.
 * In-process LRU, then the KvStore the control plane publishes to, then the control database.
 * Deleted tenants read as absent. Never holds a password.
 */
export class TenantDirectory {
  private readonly bySlug: TieredCache<DirectoryEntry>;
  private readonly byDomain: TieredCache<string>;

  constructor(private readonly o: DirectoryOptions) {
    const common = { max: o.cacheSize, freshMs: o.freshMs, negativeMs: o.negativeMs, staleIfErrorMs: o.staleIfErrorMs, kv: o.kv, kvTtlSeconds: WRITE_THROUGH_TTL_SECONDS, onSource: o.onSource };
    this.bySlug = new TieredCache<DirectoryEntry>({
      ...common,
      kvKey: directoryKeys.slug,
      encode: (e) => directoryCodec.encodeEntry(o.signer, e),
      decode: (raw, slug) => directoryCodec.decodeEntry(o.signer, slug, raw),
      load: (slug) => this.loadBySlug(slug),
      onError: (err, stage) => o.onError(err, `directory ${stage}`),
    });
    this.byDomain = new TieredCache<string>({
      ...common,
      kvKey: directoryKeys.domain,
      encode: (slug, domain) => directoryCodec.encodeDomain(o.signer, domain, slug),
      decode: (raw, domain) => directoryCodec.decodeDomain(o.signer, domain, raw),
      load: async (domain) => (await o.control.query<{ slug: string }>(BY_DOMAIN, [domain])).rows[0]?.slug ?? null,
      onError: (err, stage) => o.onError(err, `domain ${stage}`),
    });
  }

  async resolve(ref: TenantRef): Promise<DirectoryEntry | null> {
    if (ref.kind === 'slug') return this.bySlug.get(ref.slug);
    const slug = await this.byDomain.get(ref.domain);
    if (!slug) return null;
    const entry = await this.bySlug.get(slug);
    // The domain may have moved since either entry was cached: only a matching entry counts.
    return entry && entry.customDomain === ref.domain ? entry : null;
  }

  /** Applies a control-plane invalidation (pub/sub). */
  invalidate(msg: Extract<Invalidation, { kind: 'tenant' }>): void {
    const cached = this.bySlug.peek(msg.slug);
    this.bySlug.invalidate(msg.slug);
    for (const d of new Set([msg.customDomain, cached?.customDomain])) if (d) this.byDomain.invalidate(d);
  }

  clear(): void {
    this.bySlug.clear();
    this.byDomain.clear();
  }

  get size(): number {
    return this.bySlug.size + this.byDomain.size;
  }

  private async loadBySlug(slug: string): Promise<DirectoryEntry | null> {
    const r = (await this.o.control.query<Row>(BY_SLUG, [slug])).rows[0];
    if (!r || r.status === 'deleted') return null;
    return {
      tenantId: r.id, slug: r.slug, status: r.status, tier: r.tier,
      host: r.host, port: r.port, database: r.database, username: r.username, secretRef: r.secret_ref,
      customDomain: r.custom_domain, revision: directoryRevision(r.version, r.rotated_at),
    };
  }
}
