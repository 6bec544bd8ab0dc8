import { createHash } from 'node:crypto';
import { Client } from 'pg';

/** The template name every installation used before names were per installation. */
export const LEGACY_TEMPLATE_DATABASE = 'silo_tenant_template';

/** One template per installation (instances may share a server): `silo_tenant_template_<12 hex of the instance id>`. */
export function templateDatabaseName(instanceId: string): string {
  return `${LEGACY_TEMPLATE_DATABASE}_${createHash('sha256').update(instanceId).digest('hex').slice(0, 12)}`;
}

export interface TemplateChoice {
  name: string;
  /** `configured`: TENANT_TEMPLATE_DATABASE; `instance`: derived from the instance id; `legacy`: an older installation's template kept. */
  source: 'configured' | 'instance' | 'legacy';
}

/**
 * The pure rule. An installation keeps the legacy shared name only when it already has tenants on
 * this server (databases or roles carrying its marker), its own derived template does not exist,
 * and the legacy one does: it was set up before per-installation names and its tenants were cloned
 * from that template. Anything else (a fresh installation, one without tenants, one whose derived
 * template exists) uses the derived name; a template is rebuilt from the migration files, so moving
 * costs nothing.
 */
export function chooseTemplate(o: { configured?: string; instanceId: string; derivedExists: boolean; legacyExists: boolean; hasTenants: boolean; legacyName?: string }): TemplateChoice {
  if (o.configured) return { name: o.configured, source: 'configured' };
  const derived = templateDatabaseName(o.instanceId);
  if (!o.derivedExists && o.legacyExists && o.hasTenants) return { name: o.legacyName ?? LEGACY_TEMPLATE_DATABASE, source: 'legacy' };
  return { name: derived, source: 'instance' };
}

/** chooseTemplate with the facts read from the server (one short admin connection; none when configured). `legacyName` is for tests. */
export async function resolveTemplateDatabase(adminUrl: string, o: { configured?: string; instanceId: string; legacyName?: string }): Promise<TemplateChoice> {
  if (o.configured) return chooseTemplate({ ...o, derivedExists: false, legacyExists: false, hasTenants: false });
  const c = new Client({ connectionString: adminUrl, application_name: 'silo-template-name' });
  await c.connect();
  try {
    const { rows } = await c.query<{ derived: boolean; legacy: boolean; tenants: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS derived,
              EXISTS (SELECT 1 FROM pg_database WHERE datname = $2) AS legacy,
              EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname ~ '^t_[0-9a-f]{32}$' AND shobj_description(r.oid, 'pg_authid') = $3)
              OR EXISTS (SELECT 1 FROM pg_database d WHERE d.datname ~ '^t_[0-9a-f]{32}$' AND shobj_description(d.oid, 'pg_database') = $3) AS tenants`,
      [templateDatabaseName(o.instanceId), o.legacyName ?? LEGACY_TEMPLATE_DATABASE, `silo-instance:${o.instanceId}`],
    );
    const r = rows[0] as { derived: boolean; legacy: boolean; tenants: boolean };
    return chooseTemplate({ ...o, derivedExists: r.derived, legacyExists: r.legacy, hasTenants: r.tenants });
  } finally {
    await c.end();
  }
}
