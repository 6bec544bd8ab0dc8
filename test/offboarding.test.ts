import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEPROVISION_OPERATION, POINT_OF_NO_RETURN } from '../control-plane/operations/deprovision-steps';
import { TenantService } from '../control-plane/tenants/tenant.service';
import { tenantDbName } from '../provisioning/local/pg-names';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { adminQuery } from './support/test-db';

/**
 * Offboarding's failure paths on the local driver, with a pg_dump wrapper whose behaviour a file
 * picks: `fail` (writes a partial file, exits 1), `ok` (the real pg_dump), `wait` (blocks until `go`, then real).
 */
describe('offboarding: failed exports, failed offboardings and cancel', () => {
  let t: TestControlPlane;
  const root = mkdtempSync(join(tmpdir(), 'silo-offboarding-'));
  const exportDir = join(root, 'exports'); // not there yet: Silo creates it
  const bin = join(root, 'pg_dump');
  const realPgDump = execFileSync('sh', ['-c', 'command -v pg_dump']).toString().trim();
  const mode = (m: 'fail' | 'ok' | 'wait') => writeFileSync(join(root, 'mode'), m);
  const sweep = () => t.cp.app.get(TenantService).runScheduledTransitions();
  const exports = () => (existsSync(exportDir) ? readdirSync(exportDir) : []);
  const tenant = async (slug: string) => (await t.api('GET', `/v1/tenants/${slug}`)).body;
  const dbExists = async (id: string) => (await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [tenantDbName(id)])).length === 1;
  const canLogin = async (id: string) => (await adminQuery<{ l: boolean }>('SELECT rolcanlogin AS l FROM pg_roles WHERE rolname = $1', [tenantDbName(id)]))[0]?.l;
  const jobsOf = (id: string, type: string) => t.sql<{ status: string }>('SELECT status FROM jobs WHERE tenant_id = $1 AND type = $2 ORDER BY created_at', [id, type]);

  beforeAll(async () => {
    writeFileSync(bin, `#!/bin/sh
d=${JSON.stringify(root)}
m=$(cat "$d/mode")
if [ "$m" = wait ]; then touch "$d/started"; while [ ! -f "$d/go" ]; do sleep 0.05; done; m=ok; fi
if [ "$m" = ok ]; then exec ${JSON.stringify(realPgDump)} "$@"; fi
for a in "$@"; do case "$a" in --file=*) printf 'PGDMP partial' > "\${a#--file=}";; esac; done
echo "pg_dump: error: simulated failure" >&2
exit 1
`);
    chmodSync(bin, 0o755);
    mode('fail');
    t = await startTestControlPlane({ EXPORT_DIR: exportDir, PG_DUMP_BIN: bin, JOB_MAX_ATTEMPTS: '1' });
  });
  afterAll(async () => {
    await t.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function activeTenant(slug: string): Promise<string> {
    const created = await t.api('POST', '/v1/tenants', { name: slug, slug });
    await t.drainJobs();
    expect(await tenant(slug)).toMatchObject({ status: 'active' });
    await adminQuery('CREATE TABLE customer_notes (id int PRIMARY KEY, body text); INSERT INTO customer_notes VALUES (1, $$keep me$$)', [], tenantDbName(created.body.id));
    return created.body.id;
  }

  async function offboard(slug: string) {
    expect((await t.api('POST', `/v1/tenants/${slug}/suspend`, {})).status).toBe(200);
    expect((await t.api('POST', `/v1/tenants/${slug}/offboard`, {})).body.status).toBe('deprovisioning');
  }

  it('a failed export leaves no file; the tenant stays failed across sweeps; an admin retry ends deleted with one 0600 export in a 0700 folder', async () => {
    const id = await activeTenant('doomed');
    await offboard('doomed');
    mode('fail');
    await t.drainJobs();

    expect(await tenant('doomed')).toMatchObject({ status: 'failed', failedDuring: 'offboarding' });
    expect(exports()).toEqual([]); // the wrapper wrote a partial file: removed
    expect(statSync(exportDir).mode & 0o777).toBe(0o700);
    expect(await dbExists(id)).toBe(true);

    // offboard_at is still due: the sweep must leave the failed offboarding alone.
    for (let i = 0; i < 4; i++) {
      expect(await sweep()).toBe(0);
      await t.drainJobs();
    }
    expect(await tenant('doomed')).toMatchObject({ status: 'failed', failedDuring: 'offboarding' });
    expect(await jobsOf(id, 'deprovision')).toEqual([{ status: 'failed' }]);
    expect(exports()).toEqual([]);

    mode('ok');
    expect((await t.api('POST', '/v1/tenants/doomed/retry')).body.status).toBe('deprovisioning');
    await t.drainJobs();
    expect(await tenant('doomed')).toMatchObject({ status: 'deleted' });
    expect(await dbExists(id)).toBe(false);

    const files = exports();
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(new RegExp(`^${id}-.*\\.dump$`));
    const file = join(exportDir, files[0]);
    expect(statSync(file).size).toBeGreaterThan(0);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(exportDir).mode & 0o777).toBe(0o700);
    const list = spawnSync('pg_restore', ['--list', file], { encoding: 'utf8' });
    expect(list.status).toBe(0);
    expect(list.stdout).toMatch(/TABLE DATA public customer_notes/);
    const [entry] = await t.sql<{ detail: { exportLocation: string } }>(`SELECT detail FROM audit_log WHERE tenant_id = $1 AND to_status = 'deleted'`, [id]);
    expect(entry.detail.exportLocation).toBe(file);
  });

  it('cancel during deprovisioning before the job ran: suspended, database intact, job cancelled', async () => {
    const id = await activeTenant('rescued');
    await offboard('rescued');
    expect(await jobsOf(id, 'deprovision')).toEqual([{ status: 'queued' }]);

    const cancelled = await t.api('DELETE', '/v1/tenants/rescued/offboarding');
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'suspended', offboardAt: null, suspension: { by: 'admin' } });
    expect(await jobsOf(id, 'deprovision')).toEqual([{ status: 'cancelled' }]);
    await t.drainJobs();
    expect(await sweep()).toBe(0);
    expect(await tenant('rescued')).toMatchObject({ status: 'suspended' });
    expect(await dbExists(id)).toBe(true);
    expect(await canLogin(id)).toBe(true);
    expect((await t.api('POST', '/v1/tenants/rescued/resume')).body.status).toBe('active');
    expect(await adminQuery('SELECT body FROM customer_notes', [], tenantDbName(id))).toEqual([{ body: 'keep me' }]);
  });

  it('cancel of a failed offboarding: suspended with its database, logins given back, never re-offboarded by the sweep', async () => {
    const id = await activeTenant('second-thoughts');
    await offboard('second-thoughts');
    mode('fail');
    await t.drainJobs();
    expect(await tenant('second-thoughts')).toMatchObject({ status: 'failed', failedDuring: 'offboarding' });
    expect(await canLogin(id)).toBe(false); // block-logins ran before the export failed

    const cancelled = await t.api('DELETE', '/v1/tenants/second-thoughts/offboarding');
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'suspended', failedDuring: null, failureReason: null, offboardAt: null });
    expect(await t.sql('SELECT step FROM provisioning_steps WHERE tenant_id = $1 AND operation = $2', [id, DEPROVISION_OPERATION])).toEqual([]);
    await t.drainJobs(); // the reconfigure the cancel queued
    expect(await sweep()).toBe(0);
    expect(await tenant('second-thoughts')).toMatchObject({ status: 'suspended' });
    expect(await canLogin(id)).toBe(true);
    expect(await dbExists(id)).toBe(true);
    expect(exports().filter((f) => f.startsWith(id))).toEqual([]);
  });

  it('cancel while the deprovision job is running (inside pg_dump): the job stops before dropping anything', async () => {
    const id = await activeTenant('mid-flight');
    await offboard('mid-flight');
    mode('wait');
    const draining = t.drainJobs();
    const until = Date.now() + 15_000;
    while (!existsSync(join(root, 'started')) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(await jobsOf(id, 'deprovision')).toEqual([{ status: 'running' }]);

    const cancelled = await t.api('DELETE', '/v1/tenants/mid-flight/offboarding');
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.status).toBe('suspended');
    writeFileSync(join(root, 'go'), '');
    await draining;
    await t.drainJobs();

    expect(await tenant('mid-flight')).toMatchObject({ status: 'suspended' });
    expect(await jobsOf(id, 'deprovision')).toEqual([{ status: 'succeeded' }]);
    const [job] = await t.sql<{ log: string }>(`SELECT log FROM jobs WHERE tenant_id = $1 AND type = 'deprovision'`, [id]);
    expect(job.log).toMatch(/offboarding cancelled before step drop-database/);
    expect(await dbExists(id)).toBe(true);
    expect(await canLogin(id)).toBe(true);
    expect(await t.sql('SELECT step FROM provisioning_steps WHERE tenant_id = $1 AND operation = $2', [id, DEPROVISION_OPERATION])).toEqual([]);
    rmSync(join(root, 'started'));
    rmSync(join(root, 'go'));
  });

  it('cancel is refused with OFFBOARDING_IRREVERSIBLE once a data-destroying step has started', async () => {
    const id = await activeTenant('past-the-point');
    await offboard('past-the-point');
    // What the deprovision handler records, in the tenant's lock, before it starts drop-database.
    await t.sql('INSERT INTO provisioning_steps (tenant_id, operation, step, result) VALUES ($1, $2, $3, $4)', [id, DEPROVISION_OPERATION, POINT_OF_NO_RETURN, JSON.stringify('drop-database')]);

    const refused = await t.api('DELETE', '/v1/tenants/past-the-point/offboarding');
    expect(refused.status).toBe(409);
    expect(refused.body.code ?? refused.body.error?.code).toBe('OFFBOARDING_IRREVERSIBLE');
    expect(JSON.stringify(refused.body)).toMatch(/drop-database/);
    expect(await tenant('past-the-point')).toMatchObject({ status: 'deprovisioning' });
    expect(await jobsOf(id, 'deprovision')).toEqual([{ status: 'queued' }]);

    mode('ok');
    await t.drainJobs();
    expect(await tenant('past-the-point')).toMatchObject({ status: 'deleted' });
    expect((await t.api('DELETE', '/v1/tenants/past-the-point/offboarding')).status).toBe(409);
  });

  it('suspensions (admin or billing) do not pull a deprovisioning or failed tenant out of offboarding', async () => {
    const id = await activeTenant('no-sneaking');
    await offboard('no-sneaking');
    expect((await t.api('POST', '/v1/tenants/no-sneaking/suspend', { reason: 'again' })).status).toBe(409);
    mode('fail');
    await t.drainJobs();
    expect((await t.api('POST', '/v1/tenants/no-sneaking/suspend', {})).status).toBe(409);
    expect(await tenant('no-sneaking')).toMatchObject({ status: 'failed', failedDuring: 'offboarding' });
    expect(await dbExists(id)).toBe(true);
  });
});
