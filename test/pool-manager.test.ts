import { PgBackendTerminator } from '../tenant-runtime/backend-terminator';
import { ExhaustedSnapshot, PooledConnection, PoolManager, PoolTarget } from '../tenant-runtime/pool-manager';
import { testDatabaseUrl } from './support/env';
import { Client } from 'pg';

/** The pool manager on its own, against the real PostgreSQL (the test server's maintenance database). */
describe('pool manager', () => {
  const url = testDatabaseUrl();
  const target = (tenantId: string): PoolTarget => ({
    tenantId, label: tenantId, server: new URL(url).host, identity: tenantId, max: 2, secretRef: `test:${tenantId}`,
    client: () => ({ connectionString: url, application_name: 'silo-pool-manager-test' }),
  });
  let pools: PoolManager;

  afterEach(async () => {
    await pools?.close(1_000);
  });

  it('fails a waiter at once, without opening a connection, when it has less time left than a connect takes', async () => {
    const reported: ExhaustedSnapshot[] = [];
    // Connects assumed to take ~10 s (the holder's fast connect moves the average to ~8.75 s): the waiter
    // below, with 9 s to go, is worth a connect when it arrives and no longer once 500 ms have passed.
    // Seconds of margin both ways, so a loaded machine's late timers cannot turn this into a timeout.
    pools = new PoolManager({ budget: 1, acquireTimeoutMs: 60_000, idleTimeoutMs: 30_000, connectEstimateMs: 10_000, onConnectError: () => new Error('connect failed') as never, onExhausted: (describe) => reported.push(describe()) });
    const held = await pools.acquire(target('holder'));
    expect(pools.connectsStarted).toBe(1);
    const started = Date.now();
    const late = pools.acquire(target('late'), 9_000).then((c) => { pools.release(c); return 'served'; }, (e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 500));
    pools.release(held);
    expect(await late).toBe('POOL_EXHAUSTED');
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(450); // queued while it could still make it,
    expect(elapsed).toBeLessThan(4_000); // then failed when the slot freed, not at its 9 s timeout
    expect(pools.connectsStarted).toBe(1); // and no backend was started for a request that was gone
    // The operator's account of it: whose request, which limit, and the budget as it stood.
    expect(reported).toEqual([expect.objectContaining({ tenant: 'late', limit: 'replica', pool: expect.objectContaining({ max: 2, waiting: 0 }), replica: expect.objectContaining({ budget: 1 }) })]);
  });

  it('serves an overdue waiter of a tenant that has connections before newer tenants that have none (found by the reliability load scenario)', async () => {
    // One connect at a time and more first requests of new tenants than that lets through: a queue of
    // 0-connection tenants that never empties. The busy tenant's second request must not wait behind
    // every later arrival: once overdue (a quarter of the timeout) it goes first.
    pools = new PoolManager({ budget: 4, acquireTimeoutMs: 2_000, idleTimeoutMs: 30_000, maxConnectingPerServer: 1, onConnectError: () => new Error('connect failed') as never });
    const busy = { ...target('busy'), max: 5 };
    // New tenants' connects take 50 ms more (a loaded server), so some of them are overdue too when
    // the busy tenant's connection arrives.
    const slow = (id: string): PoolTarget => ({ ...target(id), client: async () => {
      await new Promise((r) => setTimeout(r, 50));
      return target(id).client();
    } });
    const held = await pools.acquire(busy);
    let stop = false;
    let n = 0;
    const tail: Array<Promise<unknown>> = [];
    const stream = (async () => {
      while (!stop) {
        // Five new tenants every 10 ms: more than any server accepts one connect at a time.
        for (let k = 0; k < 5; k++) tail.push(pools.acquire(slow(`tail-${n++}`)).then((c) => pools.release(c), () => undefined));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const started = Date.now();
    let busyConnects = 0;
    const second = await pools.acquire(busy).then((c) => {
      busyConnects = pools.stats().find((p) => p.tenantId === 'busy')?.connects ?? 0;
      pools.release(c);
      return Date.now() - started;
    }, (e: { code?: string }) => e.code);
    stop = true;
    await stream;
    await Promise.all(tail);
    pools.release(held);
    expect(typeof second).toBe('number'); // served, not POOL_EXHAUSTED
    expect(second).toBeGreaterThanOrEqual(400); // it did wait behind the queue (the scenario is real)
    expect(second).toBeLessThan(1_600); // but only until overdue (500 ms) and the few connects queued before it
    // One connect for each of its two connections: the one opened for it was not handed to a newer tenant.
    expect(busyConnects).toBe(2);
  });

  it('gives a connection handed over to a starved tenant to that tenant, not back to the busy one it came from', async () => {
    pools = new PoolManager({ budget: 2, acquireTimeoutMs: 3_000, idleTimeoutMs: 30_000, onConnectError: () => new Error('connect failed') as never });
    const busy = { ...target('busy'), max: 5 };
    const [c1, c2] = [await pools.acquire(busy), await pools.acquire(busy)]; // the whole budget
    const busyWaiter = pools.acquire(busy).then((c) => c, (e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 100));
    const starved = pools.acquire(target('starved')).then((c) => c, (e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 900)); // both overdue (750 ms); the busy tenant's waiter is the older one
    // Released with the busy tenant's own request queued: the tenant with none takes the slot (max-min)...
    pools.release(c1 as PooledConnection);
    const got = await starved;
    // ...and gets it, rather than the busy tenant reopening it for its older waiter until the other times out.
    expect(got).toBeInstanceOf(PooledConnection);
    expect(pools.stats().find((p) => p.tenantId === 'busy')?.connects).toBe(2);
    pools.release(got as PooledConnection);
    pools.release(c2 as PooledConnection);
    const served = await busyWaiter;
    expect(served).toBeInstanceOf(PooledConnection);
    pools.release(served as PooledConnection);
  });

  it('does not leak a connection to a waiter that moved to its tenant\'s new pool and then timed out', async () => {
    pools = new PoolManager({ budget: 5, acquireTimeoutMs: 5_000, idleTimeoutMs: 30_000, onConnectError: () => new Error('connect failed') as never });
    // Connects that take 300 ms (a slow server): still under way when the first request gives up.
    const version = (identity: string): PoolTarget => ({ ...target('t'), identity, client: async () => {
      await new Promise((r) => setTimeout(r, 300));
      return target('t').client();
    } });
    const early = pools.acquire(version('t-v1'), 150).then(() => 'served', (e: { code?: string }) => e.code);
    // Credentials rotated: a new identity, a new pool; the queued request moves over to it.
    const late = pools.acquire(version('t-v2'), 3_000).then((c) => c, (e: { code?: string }) => e.code);
    expect(await early).toBe('POOL_EXHAUSTED');
    const got = await late;
    expect(got).toBeInstanceOf(PooledConnection);
    pools.release(got as PooledConnection);
    await new Promise((r) => setTimeout(r, 400)); // every connect done
    // No connection went to the request that gave up: nothing is left busy.
    expect(pools.stats().reduce((n, p) => n + p.busy, 0)).toBe(0);
  });

  it('close() ends every connection: a drained replica leaves no backend behind', async () => {
    const app = `silo-pool-close-${process.pid}`;
    const tagged = (id: string): PoolTarget => ({ ...target(id), client: () => ({ connectionString: url, application_name: app }) });
    pools = new PoolManager({ budget: 6, acquireTimeoutMs: 5_000, idleTimeoutMs: 30_000, onConnectError: () => new Error('connect failed') as never });
    const held = await Promise.all(['a', 'a', 'b', 'b', 'c', 'c'].map((id) => pools.acquire(tagged(id))));
    // Connected beforehand: counting must not take a connect's time, which would hide the race.
    const admin = new Client({ connectionString: url });
    await admin.connect();
    const backends = async () => (await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app])).rows[0]?.n;
    expect(await backends()).toBe(6);
    held.forEach((c) => pools.release(c));
    await pools.close(1_000);
    const left = await backends();
    await admin.end();
    expect(left).toBe(0);
  });

  it('abandon() keeps a connection counted until the server shows its backend gone, then gives its slot to the next request', async () => {
    const u = new URL(url);
    // The test server's superuser stands in for the terminator role here: this is about the accounting.
    const terminator = new PgBackendTerminator(async () => ({ user: decodeURIComponent(u.username) || 'postgres', password: decodeURIComponent(u.password), database: u.pathname.slice(1) || 'postgres' }));
    pools = new PoolManager({ budget: 1, acquireTimeoutMs: 5_000, idleTimeoutMs: 30_000, terminator, onConnectError: () => new Error('connect failed') as never });
    const admin = new Client({ connectionString: url });
    await admin.connect();
    const alive = async (pid: number | null) => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 1;
    try {
      // A leased connection whose statement runs on: abandoned mid-statement, released, still counted.
      const busy = await pools.acquire(target('a'));
      const busyPid = busy.pid;
      const running = busy.client.query('SELECT pg_sleep(30)').catch(() => 'failed');
      await new Promise((r) => setTimeout(r, 50));
      busy.abandon();
      expect(await running).toBe('failed');
      pools.release(busy);
      expect(pools.connections).toBe(1);
      // The budget (1) is held until the server confirms: the next request is served only after that.
      const next = await pools.acquire(target('b'));
      expect(await alive(busyPid)).toBe(false);
      expect(pools.terminatingCount).toBe(0);
      // An idle connection abandoned: counted until gone too.
      pools.release(next);
      const idlePid = next.pid;
      next.abandon();
      expect(pools.connections).toBe(1);
      expect(pools.stats().find((p) => p.tenantId === 'b')?.terminating).toBe(1);
      for (let i = 0; i < 100 && pools.connections > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(pools.connections).toBe(0);
      expect(await alive(idlePid)).toBe(false);
    } finally {
      await pools.close(1_000);
      await terminator.close();
      await admin.end();
    }
  });

  it('a cancel sent just before a release cannot reach the next user of the connection', async () => {
    pools = new PoolManager({ budget: 1, acquireTimeoutMs: 5_000, idleTimeoutMs: 30_000, onConnectError: () => new Error('connect failed') as never });
    const t = { ...target('cancel-race'), max: 1 };
    for (let i = 0; i < 5; i++) {
      const first = await pools.acquire(t);
      await first.client.query('SELECT 1');
      // Its statement is over when the cancel goes out (the race: it finished as the client gave up).
      first.cancel();
      pools.release(first);
      const next = await pools.acquire(t);
      expect(next.id).toBe(first.id); // the same backend, budget 1
      await expect(next.client.query('SELECT pg_sleep(0.2)')).resolves.toBeDefined();
      pools.release(next);
    }
  });
});
