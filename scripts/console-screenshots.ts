import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';
import type { DataSource } from 'typeorm';
import { DATA_SOURCE, SECRET_STORE } from '../control-plane/common/tokens';
import { PeriodicRunner } from '../control-plane/jobs/periodic-runner';
import { migrateTenant, SchemaMirrorRepository } from '../migrations';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { startTestControlPlane, TestControlPlane } from '../test/support/control-plane';
import { createTenants, issueKey, SeededTenant } from '../test/support/runtime-fixtures';
import { deliver, deliverAll } from '../test/support/stripe';
import { newSubscription, scenarioEvents, stripeEvent, stripeId } from '../test/support/stripe-fixtures';

/**
 * Screenshots of every console page for docs/operators.md, written to docs/images/console/.
 * `npm run docs:screenshots` runs this file under Jest so it gets the browser test's harness: a real
 * control plane on a throwaway database (Jest's global setup makes the template), tenants made
 * through the admin API and the Stripe webhook (no SQL), Debian's Chromium (CHROMIUM_BIN, default
 * /usr/bin/chromium). 1280x800 viewport shots (the fleet and tenant pages whole, 1280 wide), one phone-width.
 */
const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const OUT = join(__dirname, '..', 'docs', 'images', 'console');

/** The few fields of admin API answers this script reads. */
type Answer = { id: string; token: string; items: Array<{ id: string; type: string }> };

async function api(t: TestControlPlane, method: string, path: string, body?: unknown): Promise<Answer> {
  const r = await t.api(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body as Answer;
}

/** A fleet that shows something on every page: live, suspended and provisioning tenants, a migration failure, billing events, operators. */
async function seed(t: TestControlPlane): Promise<{ admin: string; acme: SeededTenant; blue: SeededTenant }> {
  const [acme, blue, cobalt] = (await createTenants(t, [{ slug: 'acme', tier: 'pro' }, { slug: 'blue-whale' }, { slug: 'cobalt-labs' }])) as SeededTenant[];
  await issueKey(t, acme, 'production');
  await issueKey(t, acme, 'staging');
  await api(t, 'POST', `/v1/tenants/${cobalt.id}/suspend`, { reason: 'invoice dispute' });
  for (const slug of ['delta-works', 'echo-analytics']) await api(t, 'POST', '/v1/tenants', { name: slug, slug });

  // Billing: a purchase through the signed webhook (creates a tenant) and an event billing ignores.
  await deliverAll(t, scenarioEvents('purchase', newSubscription({ slug: 'globex', customerName: 'Globex' })).events);
  await deliver(t, stripeEvent('charge.refunded', { object: 'charge', id: stripeId('ch') }));

  // A new tenant migration that fails on blue-whale, applied as provisioning applies one.
  const dir = t.config.SILO_TENANT_MIGRATIONS_DIR as string;
  writeFileSync(join(dir, '0002_add_orders.sql'), '-- migrate:up\nALTER TABLE orders ADD COLUMN note text;\n-- migrate:down\nSELECT 1;\n');
  const control = t.cp.app.get<DataSource>(DATA_SOURCE);
  const [row] = await new SchemaMirrorRepository(control).list({ slugs: [blue.slug] });
  if (!row?.connection) throw new Error('blue-whale has no connection');
  await migrateTenant({ id: blue.id, slug: blue.slug, connection: row.connection }, { secretStore: t.cp.app.get<SecretStore>(SECRET_STORE), control }, { dir }).catch(() => undefined);

  const ana = await api(t, 'POST', '/v1/operators', { email: 'ana@example.com', name: 'Ana Admin', role: 'admin' });
  for (const [email, name, role] of [['ola@example.com', 'Ola Operator', 'operator'], ['bea@example.com', 'Bea Billing', 'billing'], ['vic@example.com', 'Vic Viewer', 'viewer']]) {
    const op = await api(t, 'POST', '/v1/operators', { email, name, role });
    await api(t, 'POST', `/v1/operators/${op.id}/tokens`, { name: 'laptop' });
  }
  const admin = (await api(t, 'POST', `/v1/operators/${ana.id}/tokens`, { name: 'console' })).token;

  // The periodic reconcile and storage sweep, for real: the first call schedules them one interval ahead.
  const runner = t.cp.app.get(PeriodicRunner);
  await runner.runDue();
  await new Promise((r) => setTimeout(r, 1_100));
  await runner.runDue();
  return { admin, acme, blue };
}

/** The viewport only (1280x800), or the whole page for the long ones. */
async function shoot(page: Page, url: string, name: string, fullPage = false): Promise<void> {
  await page.goto(url);
  await page.waitForLoadState('load');
  await page.screenshot({ path: join(OUT, `${name}.png`), fullPage });
}

describe('console screenshots for docs/operators.md', () => {
  let t: TestControlPlane;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    t = await startTestControlPlane({ RECONCILE_INTERVAL_SECONDS: '1', STORAGE_SWEEP_INTERVAL_SECONDS: '1' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('writes one PNG per page', async () => {
    const { admin, acme } = await seed(t);
    const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await ctx.newPage();
    await shoot(page, `${t.url}/console/login`, 'login');
    await page.getByLabel('Token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${t.url}/console/tenants`);
    await shoot(page, `${t.url}/console/tenants`, 'tenants');
    await shoot(page, `${t.url}/console/tenants/${acme.id}`, 'tenant', true);
    const job = (await api(t, 'GET', `/v1/tenants/${acme.id}/jobs`)).items.find((j) => j.type === 'provision');
    await shoot(page, `${t.url}/console/tenants/${acme.id}/jobs/${job!.id}`, 'job');
    await shoot(page, `${t.url}/console/fleet`, 'fleet', true);
    await shoot(page, `${t.url}/console/migrations`, 'migrations');
    await shoot(page, `${t.url}/console/billing-events`, 'billing-events');
    await shoot(page, `${t.url}/console/operators`, 'operators');
    await ctx.close();

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const pp = await phone.newPage();
    await pp.goto(`${t.url}/console/login`);
    await pp.getByLabel('Token').fill(admin);
    await pp.getByRole('button', { name: 'Sign in' }).click();
    await pp.waitForURL(`${t.url}/console/tenants`);
    await shoot(pp, `${t.url}/console/tenants/${acme.id}`, 'tenant-phone');
    await phone.close();
  }, 120_000);
});
