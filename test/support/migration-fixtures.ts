import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Client, Pool } from 'pg';
import type { CliIo } from '../../cli/io';
import { runCli } from '../../cli/program';
import { prepareTemplate } from '../../migrations';
import { FleetRunner } from '../../migrations/fleet-runner';
import { SchemaMirrorRepository } from '../../migrations/schema-mirror.repository';
import type { TenantConnectionInfo } from '../../provisioning/provisioning-driver';
import { testDatabaseUrl, withDatabase } from './env';
import { localProvisioningKit, LocalProvisioningKit, memoryDriverContext } from './provisioning';
import { copyShippedMigrations } from './tenant-migrations';
import { createTestDatabase, TestDatabase } from './test-db';

/** A migrations directory in a temp folder, starting with Silo's shipped migrations (the template's lineage), never a user's own. */
export class MigrationDir {
  readonly path = mkdtempSync(join(tmpdir(), 'silo-tenant-migrations-'));

  constructor(withBaseline = true) {
    if (withBaseline) copyShippedMigrations(this.path);
  }

  write(file: string, up: string, down = '', opts: { noTransaction?: boolean } = {}): this {
    writeFileSync(join(this.path, file), `${opts.noTransaction ? '-- silo:no-transaction\n' : ''}-- migrate:up\n${up}\n\n-- migrate:down\n${down}\n`);
    return this;
  }

  remove(file: string): void {
    unlinkSync(join(this.path, file));
  }

  cleanup(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

export interface FleetTenant {
  id: string;
  slug: string;
  connection: TenantConnectionInfo;
}

/**
 * A control database, a real local driver whose template is prepared by the runner (with the
 * shipped baseline), and helpers to add tenants (real roles, databases, secrets) with their
 * control rows. Tenants are created in order: `created_at` is what fleet runs follow.
 */
export class MigrationFleet {
  db!: TestDatabase;
  kit!: LocalProvisioningKit;
  pool!: Pool;
  private seq = 0;

  static async create(label: string): Promise<MigrationFleet> {
    const f = new MigrationFleet();
    f.db = await createTestDatabase(label);
    f.pool = new Pool({ connectionString: f.db.url, max: 4 });
    const baseline = new MigrationDir();
    f.kit = localProvisioningKit(f.db.url, f.db.name, { prepareTemplate: (url) => prepareTemplate(url, undefined, { dir: baseline.path }) });
    await f.kit.driver.ensureReady();
    baseline.cleanup();
    return f;
  }

  /** Provisions a tenant with the real driver and records it in the control database. */
  async addTenant(slug: string, opts: { tier?: string; status?: string } = {}): Promise<FleetTenant> {
    const id = randomUUID();
    this.kit.track(id);
    const connection = await this.kit.driver.provision(memoryDriverContext(id));
    await this.insertRows(id, slug, opts.tier ?? 'starter', opts.status ?? 'active', connection);
    return { id, slug, connection };
  }

  /** A tenant row without a database (pending/provisioning/deleted). */
  async addRowOnly(slug: string, status: string, tier = 'starter'): Promise<string> {
    const id = randomUUID();
    await this.insertRows(id, slug, tier, status, null);
    return id;
  }

  private async insertRows(id: string, slug: string, tier: string, status: string, c: TenantConnectionInfo | null): Promise<void> {
    const createdAt = new Date(Date.UTC(2024, 0, 1) + ++this.seq * 1000);
    await this.pool.query(`INSERT INTO tenants (id, slug, name, status, tier, region, created_at) VALUES ($1, $2, $3, $4, $5, 'local', $6)`, [id, slug, slug, status, tier, createdAt]);
    if (c) {
      await this.pool.query(
        `INSERT INTO tenant_connections (tenant_id, driver, host, port, database, username, secret_ref) VALUES ($1, 'local', $2, $3, $4, $5, $6)`,
        [id, c.host, c.port, c.database, c.username, c.secretRef],
      );
    }
  }

  runner(): FleetRunner {
    return new FleetRunner(this.repo(), this.kit.secrets);
  }

  repo(): SchemaMirrorRepository {
    return new SchemaMirrorRepository(this.pool);
  }

  /** Runs SQL in a tenant's database as the admin (to look, or to plant data). */
  async inTenant<T = Record<string, unknown>>(t: FleetTenant, sql: string, params: unknown[] = []): Promise<T[]> {
    const c = new Client({ connectionString: withDatabase(testDatabaseUrl(), t.connection.database) });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  }

  async ledger(t: FleetTenant): Promise<string[]> {
    const rows = await this.inTenant<{ version: string }>(t, 'SELECT version FROM silo._silo_migrations ORDER BY version');
    return rows.map((r) => r.version);
  }

  async mirror(t: FleetTenant): Promise<{ version: string | null; last_error: string | null; drift: string | null; applied_count: number } | undefined> {
    const { rows } = await this.pool.query('SELECT version, last_error, drift, applied_count FROM tenant_schema_versions WHERE tenant_id = $1', [t.id]);
    return rows[0];
  }

  /** Environment for the CLI against this fleet. */
  cliEnv(dir: string): Record<string, string> {
    return {
      DATABASE_URL: this.db.url,
      TENANT_DATABASE_URL: testDatabaseUrl(),
      SILO_MASTER_KEY: this.kit.masterKey.toString('base64'),
      TENANT_TEMPLATE_DATABASE: this.kit.templateDatabase,
      SILO_TENANT_MIGRATIONS_DIR: dir,
    };
  }

  async cleanup(): Promise<void> {
    await this.pool.end();
    await this.kit.cleanup();
    await this.db.drop();
  }
}

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the `silo` program in-process, without a terminal (no prompts, line output). */
export async function silo(args: string[], env: Record<string, string>, opts: { cwd?: string; confirm?: (q: string) => Promise<boolean> } = {}): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const sink = (into: string[]) => new Writable({ write: (chunk, _enc, cb) => { into.push(chunk.toString()); cb(); } });
  const io: CliIo = { stdout: sink(out), stderr: sink(err), env, cwd: opts.cwd ?? tmpdir(), confirm: opts.confirm };
  const code = await runCli(args, io);
  return { code, stdout: out.join(''), stderr: err.join('') };
}
