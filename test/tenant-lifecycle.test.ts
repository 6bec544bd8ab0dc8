import { existsSync } from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { JobRepository } from '../control-plane/jobs/job.repository';
import { LEDGER_TABLE } from '../migrations';
import { shippedTenantMigrations } from './support/tenant-migrations';
import { recordedStepContext } from '../control-plane/operations/step-context';
import { tenantDbName } from '../provisioning/local/pg-names';
import { LocalSecretStore } from '../provisioning/secrets/local-secret-store';
import { DEFAULT_TIERS } from '../provisioning/tiers';
import { SECRET_STORE } from '../control-plane/common/tokens';
import { Tenant } from '../control-plane/tenants/tenant.entity';
import { TenantRepository } from '../control-plane/tenants/tenant.repository';
import { TenantService } from '../control-plane/tenants/tenant.service';
import { directoryKeys } from '../common/tenant-directory';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery, pgDumpCanExport } from './support/test-db';

describe('tenant lifecycle through the admin API and the job worker', () => {
  let t: TestControlPlane;
  const exportDir = mkdtempSync(join(tmpdir(), 'silo-lifecycle-'));

  beforeAll(async () => {
    t = await startTestControlPlane({ EXPORT_DIR: exportDir, JOB_MAX_ATTEMPTS: '2' });
  });
  afterAll(async () => {
    await t.close();
    rmSync(exportDir, { recursive: true, force: true });
  });

  async function secretOf(tenantId: string) {
    const [conn] = await t.sql<{ secret_ref: string }>('SELECT secret_ref FROM tenant_connections WHERE tenant_id = $1', [tenantId]);
    return (t.cp.app.get(SECRET_STORE) as LocalSecretStore).get(conn.secret_ref);
  }

  it('creates, provisions and activates a tenant whose role can use its database', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'Acme Corp', slug: 'acme', tier: 'pro' });
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ slug: 'acme', status: 'pending', tier: 'pro' });
    await t.drainJobs();

    const shown = await t.api('GET', '/v1/tenants/acme');
    expect(shown.body).toMatchObject({ status: 'active', connection: { database: tenantDbName(created.body.id), username: tenantDbName(created.body.id) } });
    expect(JSON.stringify(shown.body)).not.toMatch(/password/i);

    const { password } = await secretOf(created.body.id);
    const c = new Client({ host: shown.body.connection.host, port: shown.body.connection.port, user: shown.body.connection.username, password, database: shown.body.connection.database });
    await c.connect();
    expect((await c.query('SELECT current_user AS u')).rows[0].u).toBe(shown.body.connection.username);
    await c.end();
    const [role] = await adminQuery<{ rolconnlimit: number }>('SELECT rolconnlimit FROM pg_roles WHERE rolname = $1', [shown.body.connection.username]);
    expect(role.rolconnlimit).toBe(DEFAULT_TIERS.pro.connectionLimit + 2); // one runtime replica's cap + TENANT_CONNECTION_RESERVE (defaults)

    // Born at the latest tenant migration: ledger in its own database (schema silo, owned by Silo's role, not the tenant's), mirrored in the control DB.
    const latest = shippedTenantMigrations().at(-1)?.version;
    const [ledger] = await adminQuery<{ owner: string; n: number }>(
      `SELECT pg_get_userbyid(c.relowner) AS owner, (SELECT count(*)::int FROM ${LEDGER_TABLE}) AS n FROM pg_class c WHERE c.oid = $1::regclass`, [LEDGER_TABLE], shown.body.connection.database);
    expect(ledger).toEqual({ owner: 'silo_tenant_db_owner', n: shippedTenantMigrations().length });
    expect(shown.body.schema).toMatchObject({ version: latest, lastError: null });

    const history = await t.api('GET', '/v1/tenants/acme/history');
    expect(history.body.items.map((h: { to: string | null }) => h.to).reverse()).toEqual(['pending', 'provisioning', 'active']);
  });

  it('publishes the committed state to the directory, never a caller\'s stale copy of the tenant', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'Stale Copy', slug: 'stale-copy' });
    expect(created.status).toBe(202);
    const service = t.cp.app.get(TenantService);
    const repo = t.cp.app.get(TenantRepository);
    // A webhook handler's copy, taken while pending; meanwhile the worker provisions the tenant.
    const stale = (await repo.findById(created.body.id)) as Tenant;
    await t.drainJobs();
    expect((await repo.findById(created.body.id))?.status).toBe('active');
    await service.publish(stale); // the webhook's publish, landing last
    const entry = JSON.parse((await t.cp.kv.get(directoryKeys.slug('stale-copy'))) as string);
    expect(entry).toMatchObject({ status: 'active', database: tenantDbName(created.body.id) });
  });

  it('rejects bad input with stable codes and writes nothing', async () => {
    const before = await t.sql('SELECT count(*)::int AS n FROM tenants');
    expect((await t.api('POST', '/v1/tenants', { name: 'X', slug: 'Not A Label!' })).body.error.code).toBe('VALIDATION_FAILED');
    expect((await t.api('POST', '/v1/tenants', { name: 'X', slug: 'admin' })).status).toBe(400);
    expect((await t.api('POST', '/v1/tenants', { name: 'X', tier: 'platinum' })).body.error.code).toBe('VALIDATION_FAILED');
    expect((await t.api('POST', '/v1/tenants', { name: 'Dup', slug: 'acme' })).body.error.code).toBe('TENANT_SLUG_TAKEN');
    expect((await t.api('POST', '/v1/tenants', { name: 'X', extra: 1 })).status).toBe(400);
    expect((await t.api('GET', '/v1/tenants/no-such-tenant')).body.error.code).toBe('TENANT_NOT_FOUND');
    expect(await t.sql('SELECT count(*)::int AS n FROM tenants')).toEqual(before);
  });

  it('suspends and resumes, refuses to offboard an active tenant unless forced, and lists by status', async () => {
    expect((await t.api('POST', '/v1/tenants/acme/suspend', { reason: 'abuse report' })).body).toMatchObject({ status: 'suspended', suspendReason: 'abuse report' });
    expect((await t.api('GET', '/v1/tenants?status=suspended')).body.total).toBe(1);
    expect((await t.api('POST', '/v1/tenants/acme/resume')).body.status).toBe('active');
    const refused = await t.api('POST', '/v1/tenants/acme/offboard', {});
    expect(refused.status).toBe(409);
    expect(refused.body.error.code).toBe('TENANT_NOT_ACTIVE');
    expect((await t.api('GET', '/v1/tenants?status=bogus')).status).toBe(400);
  });

  it('resumes a provisioning job whose worker died mid-way, with no duplicate database, role or secret', async () => {
    const created = await t.api('POST', '/v1/tenants', { name: 'Crashy', slug: 'crashy' });
    const jobs = t.cp.app.get(JobRepository);
    // Worker A claims the job and completes two steps, then dies (its lease is left to expire).
    const job = await jobs.claim('dead-worker', 300);
    expect(job?.tenantId).toBe(created.body.id);
    const ctx = await recordedStepContext(jobs, { id: created.body.id, slug: 'crashy', tier: DEFAULT_TIERS.starter, region: 'local' }, 'provision', () => undefined);
    await ctx.step('secret', () => (t.cp.app.get(SECRET_STORE) as LocalSecretStore).create(`silo/tenants/${created.body.id}`, { username: tenantDbName(created.body.id), password: 'x'.repeat(43) }, { tenantId: created.body.id }));
    await t.sql(`UPDATE jobs SET locked_until = now() - interval '1 second' WHERE id = $1`, [job?.id]);

    await t.drainJobs();
    const shown = await t.api('GET', '/v1/tenants/crashy');
    expect(shown.body.status).toBe('active');
    expect(shown.body.jobs[0]).toMatchObject({ status: 'succeeded', attempts: 2 });
    // Each attempt is on record: the dead worker's as lost, then the one that finished.
    const [listed] = (await t.api('GET', `/v1/tenants/${created.body.id}/jobs`)).body.items;
    expect(listed.runs).toEqual([
      expect.objectContaining({ attempt: 1, worker: 'dead-worker', outcome: 'lost', startedAt: expect.any(String), finishedAt: expect.any(String) }),
      expect.objectContaining({ attempt: 2, outcome: 'succeeded', startedAt: expect.any(String), finishedAt: expect.any(String) }),
    ]);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [tenantDbName(created.body.id)])).toHaveLength(1);
    expect(await t.sql('SELECT 1 FROM local_secrets WHERE tenant_id = $1', [created.body.id])).toHaveLength(1);
  });

  it('marks a tenant failed with its reason when retries run out, and an admin retry finishes it', async () => {
    const template = t.config.TENANT_TEMPLATE_DATABASE;
    await adminQuery(`ALTER DATABASE "${template}" RENAME TO "${template}_away"`);
    const created = await t.api('POST', '/v1/tenants', { name: 'Unlucky', slug: 'unlucky' });
    await t.drainJobs();
    await t.sql(`UPDATE jobs SET run_at = now() WHERE tenant_id = $1 AND status = 'queued'`, [created.body.id]);
    await t.drainJobs();
    const failed = await t.api('GET', '/v1/tenants/unlucky');
    expect(failed.body).toMatchObject({ status: 'failed', failureReason: expect.stringContaining('does not exist') });
    expect(failed.body.jobs[0]).toMatchObject({ status: 'failed', attempts: 2 });

    await adminQuery(`ALTER DATABASE "${template}_away" RENAME TO "${template}"`);
    expect((await t.api('POST', '/v1/tenants/unlucky/retry')).body.status).toBe('provisioning');
    await t.drainJobs();
    expect((await t.api('GET', '/v1/tenants/unlucky')).body.status).toBe('active');
  });

  it('rotates credentials: the secret changes and the new password connects', async () => {
    const shown = await t.api('GET', '/v1/tenants/acme');
    const before = (await secretOf(shown.body.id)).password;
    expect((await t.api('POST', '/v1/tenants/acme/rotate-credentials')).status).toBe(202);
    await t.drainJobs();
    const after = (await secretOf(shown.body.id)).password;
    expect(after).not.toBe(before);
    const c = new Client({ host: shown.body.connection.host, port: shown.body.connection.port, user: shown.body.connection.username, password: after, database: shown.body.connection.database });
    await c.connect();
    await c.end();
    expect((await t.api('GET', '/v1/tenants/acme')).body.connection.rotatedAt).not.toBeNull();
  });

  it('offboards a suspended tenant: export on disk, database, role and secret gone, status deleted', async () => {
    const shown = await t.api('GET', '/v1/tenants/acme');
    await t.api('POST', '/v1/tenants/acme/suspend', {});
    expect((await t.api('POST', '/v1/tenants/acme/offboard', {})).body.status).toBe('deprovisioning');
    await t.drainJobs();
    if (!(await pgDumpCanExport())) {
      // No usable pg_dump (embedded PostgreSQL 18): the offboarding waits at the export step, data intact.
      expect((await t.api('GET', '/v1/tenants/acme')).body.status).toBe('deprovisioning');
      expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [shown.body.connection.database])).toHaveLength(1);
      return;
    }
    const gone = await t.api('GET', '/v1/tenants/acme');
    expect(gone.body.status).toBe('deleted');
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [shown.body.connection.database])).toHaveLength(0);
    expect(await adminQuery('SELECT 1 FROM pg_roles WHERE rolname = $1', [shown.body.connection.username])).toHaveLength(0);
    expect(await t.sql('SELECT 1 FROM local_secrets WHERE tenant_id = $1 AND deleted_at IS NULL', [shown.body.id])).toHaveLength(0);
    const [entry] = await t.sql<{ detail: { exportLocation: string } }>(`SELECT detail FROM audit_log WHERE tenant_id = $1 AND to_status = 'deleted'`, [shown.body.id]);
    expect(existsSync(entry.detail.exportLocation)).toBe(true);
    expect((await t.api('POST', '/v1/tenants/acme/resume')).status).toBe(409);
  });
});
