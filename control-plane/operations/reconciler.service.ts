import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { KvStore } from '../../common/kv-store';
import type { Logger } from '../../common/logger';
import { directoryKeys } from '../../common/tenant-directory';
import { tenantIdFromDbName } from '../../provisioning/local/pg-names';
import type { ProvisioningDriver } from '../../provisioning/provisioning-driver';
import type { SecretStore } from '../../provisioning/secrets/secret-store';
import type { ControlPlaneConfig } from '../config';
import { CONFIG, DATA_SOURCE, KV_STORE, LOGGER, PROVISIONING_DRIVER, SECRET_STORE } from '../common/tokens';
import { TenantRepository } from '../tenants/tenant.repository';
import { TenantService } from '../tenants/tenant.service';
import { SuspendCause, SuspendedBy, TenantStatus } from '../tenants/tenant-status';

export type DriftKind =
  | 'orphan_database' | 'orphan_role' | 'orphan_secret' | 'missing_database' | 'missing_mapping' | 'stale_mapping' | 'stuck_provisioning'
  | 'unsealed_database';

export interface Drift {
  kind: DriftKind;
  tenantId: string | null;
  object: string;
  /** What was (or, without --apply, would be) done. */
  repair: string;
  destructive: boolean;
  repaired: boolean;
}

interface Inventory {
  /** `unsealed`: databases whose owner, flags, settings or grants are not what Silo sets (e.g. still owned by the tenant). */
  inventory(): Promise<{ databases: string[]; roles: string[]; unsealed?: string[] }>;
  dropOrphan(name: string): Promise<void>;
  sealDatabase?(name: string): Promise<void>;
}

const LIVE = new Set<string>([TenantStatus.Active, TenantStatus.Suspended]);

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
   * against an embedded `npm start`, whose cache is in-process).
   */
  async run(opts: { apply: boolean; checkDirectory?: boolean }): Promise<{ drift: Drift[]; checked: { tenants: number; databases: number; secrets: number } }> {
    const rows: Array<{ id: string; slug: string; status: string; database: string | null; updated_at: Date; open_jobs: number }> = await this.ds.query(
      `SELECT t.id, t.slug, t.status, c.database, t.updated_at,
              (SELECT count(*)::int FROM jobs j WHERE j.tenant_id = t.id AND j.status IN ('queued','running')) AS open_jobs
       FROM tenants t LEFT JOIN tenant_connections c ON c.tenant_id = t.id`,
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    const drift: Drift[] = [];
    const add = (d: Omit<Drift, 'repaired'>) => drift.push({ ...d, repaired: false });

    const inv = isInventory(this.driver) ? await this.driver.inventory() : null;
    if (inv) {
      const dbs = new Set(inv.databases);
      for (const name of inv.databases) {
        const t = byId.get(tenantIdFromDbName(name) ?? '');
        if (!t || t.status === TenantStatus.Deleted) add({ kind: 'orphan_database', tenantId: t?.id ?? tenantIdFromDbName(name), object: name, repair: 'drop database and role', destructive: true });
      }
      for (const name of inv.roles) {
        const t = byId.get(tenantIdFromDbName(name) ?? '');
        if ((!t || t.status === TenantStatus.Deleted) && !dbs.has(name)) add({ kind: 'orphan_role', tenantId: t?.id ?? null, object: name, repair: 'drop role', destructive: true });
      }
      for (const name of inv.unsealed ?? []) {
        const t = byId.get(tenantIdFromDbName(name) ?? '');
        // Safe: takes from the tenant only what lets it block its own lifecycle (ALTER DATABASE).
        if (t && t.status !== TenantStatus.Deleted) add({ kind: 'unsealed_database', tenantId: t.id, object: name, repair: "give the database to Silo's owner role and reset its flags, settings and grants", destructive: false });
      }
      for (const t of rows) {
        if (LIVE.has(t.status) && t.database && !dbs.has(t.database)) add({ kind: 'missing_database', tenantId: t.id, object: t.database, repair: 'suspend the tenant (its database is missing)', destructive: true });
      }
    }

    const secretRefs = await this.secrets.list(this.config.SILO_TENANT_SECRET_PREFIX);
    for (const ref of secretRefs) {
      const id = /([0-9a-f-]{36})$/.exec(ref)?.[1] ?? null;
      const t = id ? byId.get(id) : undefined;
      if (!t || t.status === TenantStatus.Deleted) add({ kind: 'orphan_secret', tenantId: id, object: ref, repair: 'delete secret (recovery window applies)', destructive: true });
    }

    for (const t of rows) {
      if (opts.checkDirectory !== false && LIVE.has(t.status) && t.database) {
        const cached = await this.kv.get(directoryKeys.slug(t.slug)).catch(() => 'unavailable');
        if (cached === null) add({ kind: 'missing_mapping', tenantId: t.id, object: t.slug, repair: 'republish directory entry', destructive: false });
        else if (cached !== 'unavailable' && (JSON.parse(cached) as { status?: string }).status !== t.status) add({ kind: 'stale_mapping', tenantId: t.id, object: t.slug, repair: 'republish directory entry', destructive: false });
      }
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
    if (drift.length) this.logger.warn({ event: 'reconcile.drift', count: drift.length, kinds: drift.map((d) => d.kind) }, 'reconciler found drift');
    return { drift, checked: { tenants: rows.length, databases: inv?.databases.length ?? 0, secrets: secretRefs.length } };
  }

  private async repair(d: Drift): Promise<void> {
    switch (d.kind) {
      case 'orphan_database':
      case 'orphan_role':
        if (isInventory(this.driver)) await this.driver.dropOrphan(d.object);
        return;
      case 'unsealed_database':
        if (isInventory(this.driver)) await this.driver.sealDatabase?.(d.object);
        return;
      case 'orphan_secret':
        await this.secrets.delete(d.object, { recoveryWindowDays: this.config.SECRET_RECOVERY_WINDOW_DAYS });
        return;
      case 'missing_database':
        await this.service.locked(d.tenantId as string, async (t, m) => {
          return this.service.suspend(t, { type: 'system', id: 'reconciler' }, `database ${d.object} is missing`, m, { by: SuspendedBy.System, cause: SuspendCause.DatabaseMissing });
        });
        return;
      case 'missing_mapping':
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

function isInventory(d: unknown): d is Inventory {
  return typeof (d as Inventory).inventory === 'function' && typeof (d as Inventory).dropOrphan === 'function';
}
