import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { listTenantsWithConnections } from '../../common/control-db/tenant-queries';
import type { KvStore } from '../../common/kv-store';
import type { Logger } from '../../common/logger';
import { DIRECTORY_TTL_SECONDS, directoryKeys } from '../../common/tenant-directory';
import type { ProvisioningDriver } from '../../provisioning/provisioning-driver';
import type { SecretStore } from '../../provisioning/secrets/secret-store';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, DATA_SOURCE, KV_STORE, LOGGER, PROVISIONING_DRIVER, SECRET_STORE } from '../common/tokens';
import { openJobsByTenant } from '../jobs/job.repository';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { SuspendCause, SuspendedBy, TenantStatus } from '../tenants/tenant-status';

export type DriftKind =
  | 'orphan_database' | 'orphan_role' | 'orphan_secret' | 'missing_database' | 'stale_mapping' | 'stuck_provisioning'
  | 'unsealed_database';

export interface Drift {
  kind: DriftKind;
  tenantId: string | null;
  /** The tenant's slug when the control database knows the tenant. */
  slug: string | null;
  object: string;
  /** What was (or, without --apply, would be) done. */
  repair: string;
  destructive: boolean;
  repaired: boolean;
}

const LIVE = new Set<string>([TenantStatus.Active, TenantStatus.Suspended]);
/** Slugs named in the drift warning; the rest are counted. */
const LOGGED_SLUGS = 20;

export interface TenantRow {
  id: string; slug: string; status: string; tier: string; custom_domain: string | null; version: number; updated_at: Date; open_jobs: number;
  host: string | null; port: number | null; database: string | null; username: string | null; secret_ref: string | null; rotated_at: Date | null;
}

export interface ReconcileReport {
  drift: Drift[];
  /** `directory: false` when the directory cache was not checked (not visible from this process, or it did not answer). */
  checked: { tenants: number; databases: number; secrets: number; directory: boolean };
}

/**
 * What the directory cache holds for a tenant, compared with what the control plane would publish
 * now. An absent entry is not drift: the cache is filled on demand (the runtime reads the control
 * database on a miss and writes the entry back) and emptied on purpose (every announced change
 * makes the runtime delete the entry; entries expire). Only an entry that says something else
 * than the control database is: the runtime would route by it until it expires. The signature is
 * not checked: in the default setup the runtime signs its write-backs with a key of its own.
 */
export function directoryEntryDrift(t: TenantRow, cached: string): string | null {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(cached) as Record<string, unknown>;
  } catch {
    return 'unreadable entry';
  }
  if (!o || typeof o !== 'object') return 'unreadable entry';
  if (t.status === TenantStatus.Deleted) return 'entry for a deleted tenant';
  const expected: Record<string, unknown> = {
    tenantId: t.id, slug: t.slug, status: t.status, tier: t.tier, host: t.host, port: t.port, database: t.database,
    username: t.username, secretRef: t.secret_ref, customDomain: t.custom_domain, revision: `${t.version}:${t.rotated_at?.getTime() ?? 0}`,
  };
  const wrong = Object.keys(expected).filter((k) => o[k] !== expected[k]);
  return wrong.length ? `outdated ${wrong.join(', ')}` : null;
}

/** The warning's fields: counts by kind and the tenants concerned (slugs, else ids/objects), capped. */
export function driftSummary(drift: readonly Drift[], cap = LOGGED_SLUGS): { count: number; kinds: Record<string, number>; tenants: string[]; moreTenants: number } {
  const kinds: Record<string, number> = {};
  for (const d of drift) kinds[d.kind] = (kinds[d.kind] ?? 0) + 1;
  const names = [...new Set(drift.map((d) => d.slug ?? d.tenantId ?? d.object))];
  return { count: drift.length, kinds, tenants: names.slice(0, cap), moreTenants: Math.max(0, names.length - cap) };
}

/**
 * Compares the control database (truth) with the database server, the secret store and the
 * directory. Safe repairs (republish a mapping, re-enqueue a stuck provisioning) always run;
 * destructive ones (drop orphans, mark tenants without a database failed) only with apply.
 */
@Injectable()
export class ReconcilerService {
  constructor(
    private readonly tenants: TenantRepository,
    private readonly service: TenantService,
    @Inject(DATA_SOURCE) private readonly ds: DataSource,
    @Inject(PROVISIONING_DRIVER) private readonly driver: ProvisioningDriver,
    @Inject(SECRET_STORE) private readonly secrets: SecretStore,
    @Inject(KV_STORE) private readonly kv: KvStore,
    @Inject(CONFIG) private readonly config: ControlPlaneConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * `checkDirectory: false` when this process cannot see the directory the runtimes use (the CLI
   * against an embedded `npm start`, whose cache is in-process). `now` bounds which deleted
   * tenants can still have a cached entry (DIRECTORY_TTL_SECONDS).
   */
  async run(opts: { apply: boolean; checkDirectory?: boolean; now?: number }): Promise<ReconcileReport> {
    const rows = await this.tenantRows();
    const byId = new Map(rows.map((r) => [r.id, r]));
    const drift: Drift[] = [];
    const add = (d: Omit<Drift, 'repaired' | 'slug'>) => drift.push({ ...d, slug: (d.tenantId && byId.get(d.tenantId)?.slug) || null, repaired: false });

    const inv = await this.driver.inventory();
    // The driver's own naming: local `t_<hex>` databases and roles, AWS `tenant_<key>` cluster databases.
    const owner = (name: string) => this.driver.tenantIdOf(name);
    const dbs = new Set(inv.databases);
    for (const name of inv.databases) {
      const t = byId.get(owner(name) ?? '');
      if (!t || t.status === TenantStatus.Deleted) add({ kind: 'orphan_database', tenantId: t?.id ?? owner(name), object: name, repair: this.driver.name === 'aws' ? 'none: delete the cluster by hand (see docs/provisioning-aws.md)' : 'drop database and role', destructive: true });
    }
    for (const name of inv.roles) {
      const t = byId.get(owner(name) ?? '');
      if ((!t || t.status === TenantStatus.Deleted) && !dbs.has(name)) add({ kind: 'orphan_role', tenantId: t?.id ?? null, object: name, repair: 'drop role', destructive: true });
    }
    for (const name of inv.unsealed ?? []) {
      const t = byId.get(owner(name) ?? '');
      // Safe: takes from the tenant only what lets it block its own lifecycle (ALTER DATABASE).
      if (t && t.status !== TenantStatus.Deleted) add({ kind: 'unsealed_database', tenantId: t.id, object: name, repair: "give the database to Silo's owner role and reset its flags, settings and grants", destructive: false });
    }
    for (const t of rows) {
      if (LIVE.has(t.status) && t.database && !dbs.has(t.database)) add({ kind: 'missing_database', tenantId: t.id, object: t.database, repair: 'suspend the tenant (its database is missing)', destructive: true });
    }

    const secretRefs = await this.secrets.list(this.config.SILO_TENANT_SECRET_PREFIX);
    for (const ref of secretRefs) {
      const id = /([0-9a-f-]{36})$/.exec(ref)?.[1] ?? null;
      const t = id ? byId.get(id) : undefined;
      if (!t || t.status === TenantStatus.Deleted) add({ kind: 'orphan_secret', tenantId: id, object: ref, repair: 'delete secret (recovery window applies)', destructive: true });
    }

    const directory = opts.checkDirectory !== false && (await this.checkDirectory(rows, add, opts.now ?? Date.now()));
    for (const t of rows) {
      if ((t.status === TenantStatus.Provisioning || t.status === TenantStatus.Pending) && t.open_jobs === 0) {
        add({ kind: 'stuck_provisioning', tenantId: t.id, object: t.slug, repair: 're-enqueue provisioning', destructive: false });
      }
    }

    for (const d of drift) {
      if (d.destructive && !opts.apply) continue;
      try {
        await this.repair(d);
        d.repaired = true;
      } catch (err) {
        this.logger.warn({ err, drift: d.kind, object: d.object }, 'reconciler repair failed');
      }
    }
    if (drift.length) this.logger.warn({ event: 'reconcile.drift', apply: opts.apply, ...driftSummary(drift) }, 'reconciler found drift');
    return { drift, checked: { tenants: rows.length, databases: inv.databases.length, secrets: secretRefs.length, directory } };
  }

  /**
   * Every tenant with its connection and number of open jobs, read in one snapshot (a provisioning
   * that finishes between the two reads must not look stuck).
   */
  private tenantRows(): Promise<TenantRow[]> {
    return this.ds.transaction('REPEATABLE READ', async (m) => {
      const tenants = await listTenantsWithConnections(m);
      const openJobs = await openJobsByTenant(m);
      return tenants.map((t) => ({ ...t, open_jobs: openJobs.get(t.id) ?? 0 }));
    });
  }

  /** Entries (slug and custom domain) that disagree with the control database. False when the cache did not answer. */
  private async checkDirectory(rows: readonly TenantRow[], add: (d: Omit<Drift, 'repaired' | 'slug'>) => void, now: number): Promise<boolean> {
    const liveSlugs = new Set(rows.filter((r) => r.status !== TenantStatus.Deleted).map((r) => r.slug));
    const republish = { kind: 'stale_mapping' as const, repair: 'republish directory entry', destructive: false };
    try {
      for (const t of rows) {
        if (t.status === TenantStatus.Deleted) {
          // A reused slug belongs to the live tenant; older deletions' entries have expired.
          if (liveSlugs.has(t.slug) || now - new Date(t.updated_at).getTime() > DIRECTORY_TTL_SECONDS * 1000) continue;
        }
        const cached = await this.kv.get(directoryKeys.slug(t.slug));
        if (cached !== null && directoryEntryDrift(t, cached)) add({ ...republish, tenantId: t.id, object: t.slug });
        if (t.custom_domain && t.status !== TenantStatus.Deleted) {
          const mapped = await this.kv.get(directoryKeys.domain(t.custom_domain));
          if (mapped !== null && domainSlug(mapped) !== t.slug) add({ ...republish, tenantId: t.id, object: t.custom_domain });
        }
      }
      return true;
    } catch (err) {
      this.logger.warn({ err }, 'reconciler could not read the directory cache: directory not checked');
      return false;
    }
  }

  private async repair(d: Drift): Promise<void> {
    switch (d.kind) {
      case 'orphan_database':
      case 'orphan_role':
        await this.driver.dropOrphan(d.object);
        return;
      case 'unsealed_database':
        await this.driver.sealDatabase(d.object);
        return;
      case 'orphan_secret':
        await this.secrets.delete(d.object, { recoveryWindowDays: this.config.SECRET_RECOVERY_WINDOW_DAYS });
        return;
      case 'missing_database':
        await this.service.locked(d.tenantId as string, async (t, m) => {
          return this.service.suspend(t, { type: 'system', id: 'reconciler' }, `database ${d.object} is missing`, m, { by: SuspendedBy.System, cause: SuspendCause.DatabaseMissing });
        });
        return;
      case 'stale_mapping': {
        const t = await this.tenants.findById(d.tenantId as string);
        if (t) await this.service.publish(t);
        return;
      }
      case 'stuck_provisioning':
        await this.tenants.transaction((m) => this.service.enqueueProvision(d.tenantId as string, m));
        return;
    }
  }
}

function domainSlug(raw: string): string | null {
  try {
    const o = JSON.parse(raw) as { slug?: unknown };
    return typeof o?.slug === 'string' ? o.slug : null;
  } catch {
    return null;
  }
}
