import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tenantDbName } from '../provisioning/local/pg-names';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { silo } from './support/migration-fixtures';
import { adminQuery } from './support/test-db';

describe('silo reconcile and silo provision plan', () => {
  let t: TestControlPlane;
  let env: Record<string, string>;
  const out = mkdtempSync(join(tmpdir(), 'silo-plan-'));
  const orphan = tenantDbName(randomUUID());

  beforeAll(async () => {
    t = await startTestControlPlane();
    await t.api('POST', '/v1/tenants', { name: 'Planned', slug: 'planned', tier: 'pro' });
    await t.drainJobs();
    // REDIS_URL unset on purpose: the CLI then leaves the directory alone (nothing written to shared Redis).
    env = {
      DATABASE_URL: t.config.DATABASE_URL, SILO_MASTER_KEY: t.config.SILO_MASTER_KEY as string,
      TENANT_DATABASE_URL: t.config.TENANT_DATABASE_URL as string, TENANT_TEMPLATE_DATABASE: t.config.TENANT_TEMPLATE_DATABASE as string,
    };
  });
  afterAll(async () => {
    await adminQuery(`DROP DATABASE IF EXISTS "${orphan}" WITH (FORCE)`);
    await t.close();
    rmSync(out, { recursive: true, force: true });
  });

  it('reconcile: exit 0 on a consistent fleet, 1 while destructive drift waits for --apply, 0 once applied', async () => {
    const clean = await silo(['reconcile', '--json'], env, { cwd: out });
    expect(clean.code).toBe(0);
    expect(JSON.parse(clean.stdout)).toMatchObject({ drift: [], checked: { tenants: 1 } });

    await adminQuery(`CREATE DATABASE "${orphan}"`);
    await adminQuery(`COMMENT ON DATABASE "${orphan}" IS 'silo-instance:${t.db.name}'`);
    const dry = await silo(['reconcile'], env, { cwd: out });
    expect(dry.code).toBe(1);
    expect(dry.stdout).toMatch(new RegExp(`needs --apply\\s+orphan_database\\s+${orphan}`));
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [orphan])).toHaveLength(1);

    const applied = await silo(['reconcile', '--apply'], env, { cwd: out });
    expect(applied.code).toBe(0);
    expect(await adminQuery('SELECT 1 FROM pg_database WHERE datname = $1', [orphan])).toHaveLength(0);
  });

  it('provision plan: synthesizes the tenant stack for review, applies nothing', async () => {
    // A deleted tenant that once had the slug, newer than the live one: the plan is the live tenant's (tier pro).
    const gone = randomUUID();
    await t.sql(`INSERT INTO tenants (id, slug, slug_source, name, status, tier, region, deleted_at, created_at) VALUES ($1, 'planned', 'admin', 'Gone', 'deleted', 'starter', 'local', now(), now() + interval '1 hour')`, [gone]);
    await t.sql(`UPDATE tenants SET name = name WHERE slug = 'planned' AND status <> 'deleted'`); // its row now comes after the deleted one in a scan
    const run = await silo(['provision', 'plan', 'planned', '--out', out], env, { cwd: out });
    await t.sql('DELETE FROM tenants WHERE id = $1', [gone]);
    expect(run.code).toBe(0);
    const file = /: (\/\S+cdk\.tf\.json)/.exec(run.stdout)?.[1] as string;
    expect(existsSync(file)).toBe(true);
    const stack = JSON.parse(readFileSync(file, 'utf8'));
    const [cluster] = Object.values(stack.resource.aws_rds_cluster) as Array<Record<string, any>>;
    expect(cluster).toMatchObject({ storage_encrypted: true, deletion_protection: true, manage_master_user_password: true, serverlessv2_scaling_configuration: { min_capacity: 1, max_capacity: 8 } });
    expect(run.stdout).toContain('Nothing was applied.');
    expect(run.stderr).toMatch(/Placeholders used for unset .*AWS_TENANT_VPC_ID/);
  });

  it('provision plan: an unknown tenant is a usage error with a one-line reason', async () => {
    const run = await silo(['provision', 'plan', 'nobody'], env, { cwd: out });
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe('error: no tenant nobody');
  });
});
