import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import Stripe from 'stripe';
import { createLogger } from '../../common/logger';
import { MemoryKvStore } from '../../common/memory-kv-store';
import { newSubscription, stripeEvents } from '../../test/support/stripe-fixtures';
import { loadControlPlaneConfig } from '../../control-plane/config';
import { startControlPlane } from '../../control-plane/server';
import { tenantDbName } from '../../provisioning/local/pg-names';
import { loadRuntimeConfig } from '../../tenant-runtime/config';
import { startTenantRuntime } from '../../tenant-runtime/server';
import { ms, summary } from './stats';
import { withDb } from '../support/dev-utils';

/**
 * Time from a signed checkout.session.completed webhook to the new tenant answering a query
 * through the runtime, one tenant at a time, beside a raw CREATE DATABASE … TEMPLATE of the
 * same template on the same server, measured in the same run.
 *   npm run build && node dist/scripts/bench/provisioning.js   (BENCH_TENANTS=100, BENCH_DATABASE_URL)
 */
const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const N = Number(process.env.BENCH_TENANTS ?? 100);
const SECRET = 'whsec_bench_provisioning';
const ADMIN_TOKEN = randomBytes(24).toString('hex');

async function admin(sql: string, params: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const c = new Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows;
  } finally {
    await c.end();
  }
}

async function main(): Promise<void> {
  const run = randomBytes(3).toString('hex');
  const controlDb = `silo_bench_prov_${run}`;
  const template = `silo_bench_tpl_${run}`;
  await admin(`CREATE DATABASE "${controlDb}"`);
  const env = {
    DATABASE_URL: withDb(ADMIN_URL, controlDb), TENANT_DATABASE_URL: ADMIN_URL, TENANT_TEMPLATE_DATABASE: template,
    ADMIN_TOKEN, SILO_MASTER_KEY: randomBytes(32).toString('base64'), STRIPE_WEBHOOK_SECRET: SECRET,
    // One key for the control plane and the runtime: they share the in-process cache.
    SILO_DIRECTORY_KEY: randomBytes(32).toString('base64url'),
    CONTROL_PLANE_PORT: '0', RUNTIME_PORT: '0', RUNTIME_METRICS_PORT: '0', RUNTIME_PG_PORT: '0', LOG_LEVEL: 'silent', JOB_CONCURRENCY: '4', RECONCILE_INTERVAL_SECONDS: '0',
  };
  const logger = createLogger({ name: 'bench', level: 'silent' });
  const kv = new MemoryKvStore();
  const cp = await startControlPlane(loadControlPlaneConfig(env), { logger, kv });
  const rt = await startTenantRuntime(loadRuntimeConfig(env), { logger, kv });
  const stripe = new Stripe('sk_test_bench');
  const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

  const provisionOne = async (slug: string): Promise<number> => {
    const sub = newSubscription({ slug, customerName: slug });
    const payload = JSON.stringify(stripeEvents.checkoutCompleted(sub));
    const started = performance.now();
    const ack = await fetch(`${cp.url}/webhooks/stripe`, { method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET }) }, body: payload });
    if (ack.status !== 200) throw new Error(`webhook answered ${ack.status}: ${await ack.text()}`);
    const keyRes = await fetch(`${cp.url}/v1/tenants/${slug}/api-keys`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'bench' }) });
    const { key } = (await keyRes.json()) as { key: string };
    for (;;) {
      const q = await fetch(`${rt.url}/tenants/${slug}/v1/query`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: '{"sql":"select 1 as ok"}' });
      if (q.status === 200) return performance.now() - started;
      await q.arrayBuffer();
      if (performance.now() - started > 30_000) throw new Error(`${slug} not answering after 30 s (last ${q.status})`);
      await new Promise((r) => setTimeout(r, 2));
    }
  };

  try {
    await provisionOne(`warmup-${run}`); // creates the template and warms every path
    const raw: number[] = [];
    for (let i = 0; i < N; i++) {
      const started = performance.now();
      await admin(`CREATE DATABASE "silo_bench_raw_${run}_${i}" TEMPLATE "${template}"`);
      raw.push(performance.now() - started);
    }
    const e2e: number[] = [];
    for (let i = 0; i < N; i++) e2e.push(await provisionOne(`bench-${run}-${i}`));

    const r = summary(raw);
    const s = summary(e2e);
    const out = {
      tenants: N,
      rawCreateDatabase: { p50: r.p50, p95: r.p95 },
      webhookToFirstQuery: { p50: s.p50, p95: s.p95 },
      ratioP50: s.p50 / r.p50,
    };
    console.log(JSON.stringify(out));
    console.log(`raw CREATE DATABASE … TEMPLATE   p50 ${ms(r.p50)}  p95 ${ms(r.p95)}   (n=${N}, includes a fresh admin connection each)`);
    console.log(`webhook → tenant answers query   p50 ${ms(s.p50)}  p95 ${ms(s.p95)}   (n=${N}, sequential)`);
    console.log(`p50 ratio ${(s.p50 / r.p50).toFixed(2)}× (target ≤ 2×)`);
    if (process.env.BENCH_DEBUG) {
      const c = new Client({ connectionString: withDb(ADMIN_URL, controlDb) });
      await c.connect();
      const logs = await c.query(`SELECT j.log, j.created_at, j.finished_at FROM jobs j ORDER BY created_at DESC LIMIT 3`);
      for (const row of logs.rows) console.log(row.log, row.finished_at - row.created_at, 'ms job');
      await c.end();
    }
  } finally {
    await rt.close();
    await cp.close();
    await kv.close();
    const ids = await admin(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`silo_bench_raw_${run}_%`]);
    for (const { datname } of ids) await admin(`DROP DATABASE IF EXISTS "${datname as string}"`);
    const c = new Client({ connectionString: withDb(ADMIN_URL, controlDb) });
    await c.connect();
    const tenants = (await c.query('SELECT id FROM tenants')).rows as Array<{ id: string }>;
    await c.end();
    for (const { id } of tenants) {
      await admin(`DROP DATABASE IF EXISTS "${tenantDbName(id)}" WITH (FORCE)`);
      await admin(`DROP ROLE IF EXISTS "${tenantDbName(id)}"`);
    }
    await admin(`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`);
    await admin(`DROP DATABASE IF EXISTS "${controlDb}" WITH (FORCE)`);
  }
}

main().catch((err) => {
  console.error(`provisioning benchmark failed: ${(err as Error).message}`);
  process.exit(1);
});
