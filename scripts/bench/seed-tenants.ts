import type { Pool } from 'pg';
import { generateApiKey, apiKeyScramVerifier } from '../../common/api-key-format';
import type { LocalProvisioningDriver } from '../../provisioning/local/local-provisioning.driver';
import type { SecretStore } from '../../provisioning/secrets/secret-store';
import { DEFAULT_TIERS } from '../../provisioning/tiers';

/** A tenant seeded for a benchmark or a load test: its database role, password and one API key. */
export interface SeededTenant {
  id: string;
  slug: string;
  /** Database and role name (`t_<uuid hex>`). */
  role: string;
  password: string;
  key: string;
}

/**
 * Many tenants, fast: each is provisioned with the local driver (secret, role, database cloned from
 * the template, ownership), `concurrency` at a time, then all are registered in the control database
 * (tenants, tenant_connections, one API key each) in three bulk INSERTs: the rows the control plane's
 * provisioning jobs and admin API would leave, without a job and an HTTP call per tenant.
 */
export async function seedTenants(o: {
  driver: LocalProvisioningDriver;
  secrets: SecretStore;
  control: Pool;
  specs: Array<{ id: string; slug: string }>;
  concurrency: number;
  tier?: keyof typeof DEFAULT_TIERS;
  /** Called as each tenant's database is ready (before the control rows exist): for progress and for cleanup after a failure. */
  onProvisioned?: (tenant: SeededTenant, done: number) => void;
}): Promise<SeededTenant[]> {
  const tierName = o.tier ?? 'starter';
  const tier = DEFAULT_TIERS[tierName];
  if (!tier) throw new Error(`unknown tier ${tierName}`);
  const tenants = new Array<SeededTenant>(o.specs.length);
  const conns = new Array<{ host: string; port: number; secretRef: string }>(o.specs.length);
  let next = 0;
  let done = 0;
  await Promise.all(Array.from({ length: Math.min(o.concurrency, o.specs.length) }, async () => {
    while (next < o.specs.length) {
      const i = next++;
      const s = o.specs[i] as { id: string; slug: string };
      const conn = await o.driver.provision({ tenant: { id: s.id, slug: s.slug, tier, region: 'local' }, step: (_n, fn) => fn(), log: () => undefined });
      const { password } = await o.secrets.get(conn.secretRef);
      conns[i] = { host: conn.host, port: conn.port, secretRef: conn.secretRef };
      tenants[i] = { id: s.id, slug: s.slug, role: conn.username, password, key: '' };
      o.onProvisioned?.(tenants[i] as SeededTenant, ++done);
    }
  }));
  const keys = tenants.map(() => generateApiKey());
  tenants.forEach((t, i) => (t.key = keys[i]?.key as string));
  const ids = tenants.map((t) => t.id);
  await o.control.query(
    `INSERT INTO tenants (id, slug, name, status, tier, region) SELECT id, slug, slug, 'active', $3, 'local' FROM unnest($1::uuid[], $2::text[]) AS u(id, slug)`,
    [ids, tenants.map((t) => t.slug), tierName],
  );
  await o.control.query(
    `INSERT INTO tenant_connections (tenant_id, driver, host, port, database, username, secret_ref)
     SELECT id, 'local', host, port, role, role, ref FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[]) AS u(id, role, ref, host, port)`,
    [ids, tenants.map((t) => t.role), conns.map((c) => c.secretRef), conns.map((c) => c.host), conns.map((c) => c.port)],
  );
  // With SCRAM verifiers, as the admin API issues keys: the front door's SCRAM login needs them.
  const verifiers = tenants.map((t, i) => apiKeyScramVerifier(keys[i]?.key as string, t.id));
  await o.control.query(
    `INSERT INTO api_keys (id, tenant_id, name, prefix, hash, scram_stored_key, scram_server_key)
     SELECT gen_random_uuid(), id, 'seed', prefix, hash, stored, server FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(id, prefix, hash, stored, server)`,
    [ids, keys.map((k) => k.prefix), keys.map((k) => k.hash), verifiers.map((v) => v.storedKey.toString('base64')), verifiers.map((v) => v.serverKey.toString('base64'))],
  );
  return tenants;
}
