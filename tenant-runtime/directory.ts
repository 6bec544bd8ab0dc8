import type { Pool } from 'pg';
import { findDirectoryRow, findLiveSlug } from '../common/control-db/tenant-queries';
import type { DirectorySigner } from '../common/directory-signer';
import type { KvStore } from '../common/kv-store';
import { directoryCodec, DirectoryEntry, directoryKeys, Invalidation } from '../common/tenant-directory';
import { CacheSource, TieredCache } from './tiered-cache';

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

/**
 * Tenant id → slug in the KvStore. Only runtimes write it (on a database hit) and drop it (on a
 * tenant invalidation): the control plane publishes by slug. Signed like every other record; a
 * mapping is never trusted on its own anyway, the slug's entry must carry the same tenant id.
 */
const idKey = (tenantId: string) => `silo:tenant:id:${tenantId}`;
const encodeSlugOf = (signer: DirectorySigner, tenantId: string, slug: string) => JSON.stringify({ slug, sig: signer.sign('tenant-id', tenantId, [slug]) });
function decodeSlugOf(signer: DirectorySigner, tenantId: string, raw: string): string | null {
  try {
    const o = JSON.parse(raw) as { slug?: unknown; sig?: unknown } | null;
    return o && typeof o.slug === 'string' && o.slug && signer.verify('tenant-id', tenantId, [o.slug], o.sig) ? o.slug : null;
  } catch {
    return null;
  }
}

/**
 * The runtime's read side of the tenant directory: the tenant an API key belongs to → DirectoryEntry
 * (by id → slug → entry). In-process LRU, then the KvStore the control plane publishes to, then the
 * control database. Deleted tenants read as absent. Never holds a password.
 *
 * Looked up by the key's tenant, never by the slug or domain a request names: what it costs and
 * whether it can answer during an outage then say nothing about whether that name exists.
 */
export class TenantDirectory {
  private readonly bySlug: TieredCache<DirectoryEntry>;
  private readonly slugById: TieredCache<string>;

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
    this.slugById = new TieredCache<string>({
      ...common,
      kvKey: idKey,
      encode: (slug, tenantId) => encodeSlugOf(o.signer, tenantId, slug),
      decode: (raw, tenantId) => decodeSlugOf(o.signer, tenantId, raw),
      load: (tenantId) => findLiveSlug(o.control, tenantId),
      onError: (err, stage) => o.onError(err, `tenant id ${stage}`),
    });
  }

  /** The live (not deleted) tenant with this id, or null. Throws when no source can answer. */
  async forTenant(tenantId: string): Promise<DirectoryEntry | null> {
    for (let attempt = 0; ; attempt++) {
      const slug = await this.slugById.get(tenantId);
      if (!slug) return null;
      const entry = await this.bySlug.get(slug);
      if (entry && entry.tenantId === tenantId) return entry.status === 'deleted' ? null : entry;
      // The tenant was renamed (or its slug went to another tenant) since the mapping was cached: read it once more.
      if (attempt > 0) return null;
      this.slugById.invalidate(tenantId);
    }
  }

  /** The live (not deleted) tenant with this slug, or null. Throws when no source can answer. */
  async forSlug(slug: string): Promise<DirectoryEntry | null> {
    const entry = await this.bySlug.get(slug);
    return entry && entry.status !== 'deleted' ? entry : null;
  }

  /** Applies a control-plane invalidation (pub/sub). */
  invalidate(msg: Extract<Invalidation, { kind: 'tenant' }>): void {
    this.bySlug.invalidate(msg.slug);
    if (typeof msg.tenantId === 'string') this.slugById.invalidate(msg.tenantId);
  }

  clear(): void {
    this.bySlug.clear();
    this.slugById.clear();
  }

  get size(): number {
    return this.bySlug.size + this.slugById.size;
  }

  private async loadBySlug(slug: string): Promise<DirectoryEntry | null> {
    const r = await findDirectoryRow(this.o.control, slug);
    if (!r || r.status === 'deleted') return null;
    return {
      tenantId: r.id, slug: r.slug, status: r.status, tier: r.tier,
      host: r.host, port: r.port, database: r.database, username: r.username, secretRef: r.secret_ref,
      customDomain: r.custom_domain, revision: directoryRevision(r.version, r.rotated_at),
    };
  }
}
