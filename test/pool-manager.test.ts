import { PoolManager, PoolTarget } from '../tenant-runtime/pool-manager';
import { testDatabaseUrl } from './support/env';

/** The pool manager on its own, against the real PostgreSQL (the test server's maintenance database). */
describe('pool manager', () => {
  const url = testDatabaseUrl();
  const target = (tenantId: string): PoolTarget => ({
    tenantId, label: tenantId, server: new URL(url).host, identity: tenantId, max: 2,
    client: () => ({ connectionString: url, application_name: 'silo-pool-manager-test' }),
  });
  let pools: PoolManager;

  afterEach(async () => {
    await pools?.close(1_000);
  });

  it('fails a waiter at once, without opening a connection, when it has less time left than a connect takes', async () => {
    pools = new PoolManager({ budget: 1, acquireTimeoutMs: 5_000, idleTimeoutMs: 30_000, onConnectError: () => new Error('connect failed') as never });
    const held = await pools.acquire(target('holder'));
    expect(pools.connectsStarted).toBe(1);
    const started = Date.now();
    const late = pools.acquire(target('late'), 100).then(() => 'served', (e: { code?: string }) => e.code);
    // Released with ~15 ms left on the waiter's clock: less than any connect here (25+ ms).
    await new Promise((r) => setTimeout(r, 85));
    pools.release(held);
    expect(await late).toBe('POOL_EXHAUSTED');
    expect(Date.now() - started).toBeLessThan(100); // failed at once, not at its timeout
    expect(pools.connectsStarted).toBe(1); // and no backend was started for a request that was gone
  });
});
