import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Redis from 'ioredis';
import { httpCall } from './support/load';
import { ServiceProcess, sleep } from './support/processes';
import { ReliabilityStack } from './support/stack';
import { EmbeddedSilo } from './support/embedded-silo';

/**
 * Issue #14 item 4: SIGTERM to every kind of Silo process drains its work, closes what it opened
 * and exits 0 within a bound. Before, Nest's shutdown hooks re-sent the signal once the app had
 * closed, and processes died with 143 before Redis, the driver, the pools (and, under `npm start`,
 * the runtime and the embedded PostgreSQL) were closed.
 */
const EXIT_BOUND_MS = 20_000;

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function sigterm(p: ServiceProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const started = Date.now();
  const e = await p.stop(EXIT_BOUND_MS);
  return { ...e, ms: Date.now() - started };
}

describe('shutdown: SIGTERM to each process kind', () => {
  let stack: ReliabilityStack;
  beforeAll(async () => {
    stack = await ReliabilityStack.create('relshutdown');
  });
  afterAll(async () => stack?.cleanup());

  it('the worker, `silo worker`, the runtime and the control plane each finish the work in hand, exit 0, and leave no database backends or Redis clients', async () => {
    const cp = await stack.controlPlane({ JOB_WORKER_ENABLED: 'false' });
    await cp.start();
    const createAndStop = async (worker: ServiceProcess, slug: string) => {
      await worker.start();
      const created = await stack.api(cp.url, 'POST', '/v1/tenants', { name: slug, slug });
      expect(created.status).toBe(202);
      // SIGTERM while the worker holds the tenant's provisioning job.
      await waitFor(async () => (await stack.sql<{ status: string }>('SELECT status FROM jobs WHERE tenant_id = $1', [created.body.id]))[0]?.status === 'running', 15_000, `${slug}'s job to start`);
      const exit = await sigterm(worker);
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(exit.ms).toBeLessThan(EXIT_BOUND_MS);
      const [job] = await stack.sql<{ status: string; attempts: number }>('SELECT status, attempts FROM jobs WHERE tenant_id = $1', [created.body.id]);
      expect(job).toEqual({ status: 'succeeded', attempts: 1 }); // finished, not abandoned to a lease expiry
      expect((await stack.api(cp.url, 'GET', `/v1/tenants/${created.body.id}`)).body.status).toBe('active');
      return created.body.id as string;
    };
    const first = await createAndStop(stack.worker(), 'shut-a');
    await createAndStop(stack.siloWorker(), 'shut-b');

    // The runtime, with a tenant pool open.
    const key = (await stack.api(cp.url, 'POST', `/v1/tenants/${first}/api-keys`, { name: 'shutdown' })).body.key as string;
    const runtime = await stack.runtime();
    await runtime.start();
    const q = await httpCall(runtime.url, '/v1/query', { host: 'shut-a.localhost', key, body: { sql: 'SELECT 1 AS n' } });
    expect(q.status).toBe(200);
    const [{ username }] = await stack.sql<{ username: string }>('SELECT username FROM tenant_connections WHERE tenant_id = $1', [first]);
    const rtExit = await sigterm(runtime);
    expect(rtExit).toMatchObject({ code: 0, signal: null });

    const cpExit = await sigterm(cp);
    expect(cpExit).toMatchObject({ code: 0, signal: null });

    // Nothing of theirs is left: no backend on the control database but this test's own, none as the
    // tenant, and no Redis client but the one asking.
    const left = async () => (await stack.sql<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE (datname = current_database() AND pid <> pg_backend_pid() AND application_name <> 'silo-reliability-test') OR usename = $1`, [username]))[0]?.n;
    await waitFor(async () => (await left()) === 0, 3_000, 'backends to exit').catch(() => undefined);
    expect(await left()).toBe(0);
    const redis = new Redis(stack.redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      const clients = String(await redis.client('LIST')).split('\n').filter(Boolean);
      expect(clients).toHaveLength(1);
    } finally {
      redis.disconnect();
    }
  });
});

describe('shutdown: SIGTERM to npm start', () => {
  let silo: EmbeddedSilo;
  beforeAll(async () => {
    silo = await EmbeddedSilo.create();
    await silo.start();
  });
  afterAll(async () => silo?.cleanup());

  it('exits 0 after stopping the runtime, the control plane and both embedded PostgreSQL servers', async () => {
    await silo.provision('shut-embedded');
    const pids = ['pg', 'pg-tenants'].map((sub) => {
      const file = join(silo.dir, '.silo', sub, 'postmaster.pid');
      return Number(readFileSync(file, 'utf8').split('\n')[0]);
    });
    expect(pids.every((p) => p > 0)).toBe(true);
    const exit = await silo.stop();
    expect(exit).toMatchObject({ code: 0, signal: null });
    expect(exit?.ms).toBeLessThan(EXIT_BOUND_MS);
    // A clean PostgreSQL shutdown removes its pid file; its postmaster is gone.
    for (const sub of ['pg', 'pg-tenants']) expect(existsSync(join(silo.dir, '.silo', sub, 'postmaster.pid'))).toBe(false);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
