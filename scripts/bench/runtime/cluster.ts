import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { ident } from '../../../provisioning/local/pg-names';
import { mapLimit } from '../../support/dev-utils';

/**
 * A throwaway PostgreSQL cluster for the runtime benchmark: same binaries as the host's server,
 * but with room for one connection per tenant (max_connections=1300), and removed in one step.
 * fsync/full_page_writes are off: they make setup (1,000 CREATE DATABASE) fast and do not touch
 * the measured read-only SELECTs. As root, the server runs as the `postgres` OS user.
 */
export class BenchCluster {
  readonly dir: string;
  private readonly bin: string;
  private readonly asPostgres: string[];

  constructor(readonly port: number) {
    this.bin = process.env.BENCH_PG_BIN || pgBinDir();
    this.dir = mkdtempSync(join(tmpdir(), 'silo-bench-pg-'));
    this.asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
    if (this.asPostgres.length) {
      const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
      chownSync(this.dir, uid, gid);
    }
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  start(): void {
    this.run('initdb', ['-D', join(this.dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const opts = [
      `-p ${this.port}`, `-k ${this.dir}`, '-c listen_addresses=127.0.0.1', '-c max_connections=1300',
      '-c shared_buffers=512MB', '-c fsync=off', '-c full_page_writes=off', '-c synchronous_commit=off',
    ].join(' ');
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-l', join(this.dir, 'server.log'), '-w', '-o', opts, 'start']);
  }

  version(): string {
    return execFileSync(join(this.bin, 'postgres'), ['--version']).toString().trim();
  }

  stop(): void {
    if (existsSync(join(this.dir, 'data', 'postmaster.pid'))) {
      this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop'], true);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private run(tool: string, args: string[], tolerate = false): void {
    const [cmd, ...rest] = [...this.asPostgres, join(this.bin, tool), ...args];
    const r = spawnSync(cmd as string, rest, { encoding: 'utf8' });
    if (r.status !== 0 && !tolerate) throw new Error(`${tool} failed (${r.status}): ${r.stderr || r.stdout}`);
  }
}

function pgBinDir(): string {
  try {
    return execFileSync('pg_config', ['--bindir']).toString().trim();
  } catch {
    throw new Error('pg_config not found: set BENCH_PG_BIN to the PostgreSQL bin directory, or BENCH_DATABASE_URL to use an existing server');
  }
}

/**
 * Cleanup on a server the bench does not own (BENCH_DATABASE_URL): drops each tenant's database
 * and role (named alike), then the bench's own databases and roles. Failures are ignored: it runs
 * on the way out, also after an interrupted run.
 */
export async function dropBenchObjects(admin: Pool, o: { tenantRoles: string[]; databases: string[]; roles?: string[] }): Promise<void> {
  await mapLimit(o.tenantRoles, 4, async (role) => {
    await admin.query(`DROP DATABASE IF EXISTS ${ident(role)} WITH (FORCE)`).catch(() => undefined);
    await admin.query(`DROP ROLE IF EXISTS ${ident(role)}`).catch(() => undefined);
  });
  for (const db of o.databases) await admin.query(`DROP DATABASE IF EXISTS ${ident(db)} WITH (FORCE)`).catch(() => undefined);
  for (const role of o.roles ?? []) await admin.query(`DROP ROLE IF EXISTS ${ident(role)}`).catch(() => undefined);
}
