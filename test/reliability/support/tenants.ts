import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { decodeKey } from '../../../common/config-schema';
import { LocalSecretStore } from '../../../provisioning/secrets/local-secret-store';
import { DEFAULT_TIERS, TierSettings } from '../../../provisioning/tiers';
import { httpCall, HttpResult } from './load';
import { sleep } from './processes';
import type { ReliabilityStack } from './stack';

/** A tenant provisioned through a control-plane process, with one API key. */
export interface LiveTenant {
  id: string;
  slug: string;
  tier: string;
  /** Role and database name (`t_<uuid hex>`). */
  role: string;
  database: string;
  secretRef: string;
  key: string;
  keyId: string;
}

/**
 * Writes a TIERS_FILE (for the control plane and the runtime alike): the built-in tiers plus
 * `extra`, each a full tier so the control plane's schema accepts it. Returns its path.
 */
export function writeTiersFile(label: string, extra: Record<string, Partial<TierSettings>>): string {
  const tiers: Record<string, Omit<TierSettings, 'name'>> = {};
  for (const [name, t] of Object.entries(extra)) {
    const { name: _n, ...base } = DEFAULT_TIERS.starter as TierSettings;
    tiers[name] = { ...base, ...t };
  }
  const file = join(tmpdir(), `silo-${label}-${process.pid}-tiers.json`);
  writeFileSync(file, JSON.stringify({ tiers }));
  return file;
}

/**
 * Creates tenants with the admin API of a running control plane (its in-process worker
 * provisions them), waits until each is active, and issues one API key per tenant.
 */
export async function provisionTenants(stack: ReliabilityStack, cpUrl: string, specs: Array<{ slug: string; tier?: string }>, timeoutMs = 60_000): Promise<LiveTenant[]> {
  const created: Array<{ id: string; slug: string; tier: string }> = [];
  for (const s of specs) {
    const r = await stack.api(cpUrl, 'POST', '/v1/tenants', { name: s.slug, slug: s.slug, ...(s.tier ? { tier: s.tier } : {}) });
    if (r.status !== 202) throw new Error(`create ${s.slug}: ${r.status} ${JSON.stringify(r.body)}`);
    created.push({ id: r.body.id, slug: r.body.slug, tier: r.body.tier });
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await stack.sql<{ id: string; status: string }>('SELECT id, status FROM tenants WHERE id = ANY($1)', [created.map((c) => c.id)]);
    if (rows.length === created.length && rows.every((r) => r.status === 'active')) break;
    if (Date.now() > deadline) throw new Error(`tenants not active after ${timeoutMs} ms: ${JSON.stringify(rows)}`);
    await sleep(100);
  }
  const conns = await stack.sql<{ tenant_id: string; username: string; database: string; secret_ref: string }>(
    'SELECT tenant_id, username, database, secret_ref FROM tenant_connections WHERE tenant_id = ANY($1)', [created.map((c) => c.id)]);
  const out: LiveTenant[] = [];
  for (const c of created) {
    const conn = conns.find((x) => x.tenant_id === c.id);
    if (!conn) throw new Error(`no connection row for ${c.slug}`);
    const k = await issueApiKey(stack, cpUrl, c.id);
    out.push({ ...c, role: conn.username, database: conn.database, secretRef: conn.secret_ref, key: k.key, keyId: k.id });
  }
  return out;
}

export async function issueApiKey(stack: ReliabilityStack, cpUrl: string, tenantId: string, name = 'reliability'): Promise<{ id: string; key: string }> {
  const r = await stack.api(cpUrl, 'POST', `/v1/tenants/${tenantId}/api-keys`, { name });
  if (r.status !== 201) throw new Error(`issue key: ${r.status} ${JSON.stringify(r.body)}`);
  return { id: r.body.id, key: r.body.key };
}

/** A tenant's database password, read from the local secret store with the stack's master key (test-only). */
export async function tenantPassword(stack: ReliabilityStack, secretRef: string): Promise<string> {
  const pool = new Pool({ connectionString: stack.db.url, max: 1 });
  try {
    const store = new LocalSecretStore(pool, decodeKey(stack.masterKey) as Buffer);
    return (await store.get(secretRef)).password;
  } finally {
    await pool.end();
  }
}

/** `POST /v1/query` for a tenant by subdomain (`<slug>.localhost`). */
export function tenantQuery(runtimeUrl: string, t: { slug: string; key: string }, sql: string, params: unknown[] = [], timeoutMs = 30_000): Promise<HttpResult> {
  return httpCall(runtimeUrl, '/v1/query', { host: `${t.slug}.localhost`, key: t.key, body: { sql, params }, timeoutMs });
}

/** Polls `fn` until `ok` or the deadline; returns the last value and how long it took. */
export async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, stepMs = 20): Promise<{ value: T; ms: number; ok: boolean }> {
  const started = Date.now();
  for (;;) {
    const value = await fn();
    if (ok(value)) return { value, ms: Date.now() - started, ok: true };
    if (Date.now() - started > timeoutMs) return { value, ms: Date.now() - started, ok: false };
    await sleep(stepMs);
  }
}
