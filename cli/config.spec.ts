import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnvironment, loadCliConfig, tenantMigrationsDir } from './config';

describe('CLI configuration', () => {
  let cwd: string;
  const key = Buffer.alloc(32, 7).toString('base64');
  beforeEach(() => (cwd = mkdtempSync(join(tmpdir(), 'silo-cli-config-'))));
  afterEach(() => rmSync(cwd, { recursive: true, force: true }));

  it('uses a running embedded Postgres (.silo/state.json) when DATABASE_URL is unset', () => {
    mkdirSync(join(cwd, '.silo'));
    writeFileSync(join(cwd, '.silo', 'state.json'), JSON.stringify({ adminToken: 'x'.repeat(30), masterKey: key, webhookSecret: 'whsec_x', postgresPassword: 'p w', postgresPort: 54329 }));
    const config = loadCliConfig({}, cwd);
    expect(config).toMatchObject({ embedded: true, DATABASE_URL: 'postgres://postgres:p%20w@127.0.0.1:54329/silo', SILO_MASTER_KEY: key });
    expect(config.TENANT_DATABASE_URL).toMatch(/:54329\/postgres$/);
    // Explicit settings win over the embedded ones.
    expect(loadCliConfig({ TENANT_TEMPLATE_DATABASE: 'tpl' }, cwd).TENANT_TEMPLATE_DATABASE).toBe('tpl');
    expect(loadCliConfig({ DATABASE_URL: 'postgres://h/db', SILO_MASTER_KEY: key }, cwd)).toMatchObject({ embedded: false, DATABASE_URL: 'postgres://h/db' });
  });

  it('with DATABASE_URL set, takes only the generated secrets from .silo/state.json (as npm start does), never its URLs', () => {
    mkdirSync(join(cwd, '.silo'));
    writeFileSync(join(cwd, '.silo', 'state.json'), JSON.stringify({
      adminToken: 'x'.repeat(30), masterKey: key, webhookSecret: 'whsec_x', directoryKey: 'k'.repeat(43), postgresPassword: 'p', postgresPort: 54329,
      tenantServer: 'separate', tenantPostgresPassword: 't', tenantPostgresPort: 54330,
    }));
    const { env, embedded } = cliEnvironment({ DATABASE_URL: 'postgres://h/db' }, cwd);
    expect(embedded).toBe(false);
    expect(env).toMatchObject({ DATABASE_URL: 'postgres://h/db', SILO_MASTER_KEY: key, SILO_DIRECTORY_KEY: 'k'.repeat(43) });
    expect(env.TENANT_DATABASE_URL).toBeUndefined();
    expect(env.TENANT_DATABASE_CA_DIR).toBeUndefined();
    const other = Buffer.alloc(32, 8).toString('base64');
    expect(cliEnvironment({ DATABASE_URL: 'postgres://h/db', SILO_MASTER_KEY: other, SILO_DIRECTORY_KEY: 'mine' }, cwd).env).toMatchObject({ SILO_MASTER_KEY: other, SILO_DIRECTORY_KEY: 'mine' });
  });

  it('needs no ADMIN_TOKEN, and lists every bad variable', () => {
    expect(loadCliConfig({ DATABASE_URL: 'postgres://h/db', SILO_MASTER_KEY: key }, cwd).DATABASE_URL).toBe('postgres://h/db');
    expect(() => loadCliConfig({ DATABASE_URL: 'mysql://h/db', SILO_MASTER_KEY: 'short', JOB_CONCURRENCY: '0' }, cwd)).toThrow(
      /DATABASE_URL: must be a postgres:\/\/ URL[\s\S]*SILO_MASTER_KEY[\s\S]*JOB_CONCURRENCY/,
    );
  });

  it('finds the migrations directory from --dir, then SILO_TENANT_MIGRATIONS_DIR, then the shipped one', () => {
    expect(tenantMigrationsDir({ SILO_TENANT_MIGRATIONS_DIR: 'env-dir' }, cwd, 'flag-dir')).toBe(join(cwd, 'flag-dir'));
    expect(tenantMigrationsDir({ SILO_TENANT_MIGRATIONS_DIR: 'env-dir' }, cwd)).toBe(join(cwd, 'env-dir'));
    expect(tenantMigrationsDir({}, cwd)).toMatch(/migrations\/tenant$/);
  });
});
