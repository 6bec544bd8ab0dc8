import Redis from 'ioredis';
import { RedisKvStore } from '../common/redis-kv-store';
import { testRedisUrl } from './support/env';
import { testRedisPrefix } from './support/redis';

/** The Redis cache adapter against the real Redis, under a key prefix of its own. */
describe('Redis KV store', () => {
  const { prefix, cleanup } = testRedisPrefix('kv');
  const direct = new Redis(testRedisUrl());
  const stores: RedisKvStore[] = [];
  /** Commands fail fast until the connection is up (no offline queue, by design): wait for it. */
  const connected = async (url = testRedisUrl()) => {
    const store = new RedisKvStore(url, prefix);
    stores.push(store);
    for (let i = 0; i < 100 && !(await store.ping()); i++) await new Promise((r) => setTimeout(r, 20));
    return store;
  };
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await cleanup();
    await direct.quit();
  });

  it('keeps its keys under its prefix, with TTLs', async () => {
    const store = await connected();
    await store.set('a', '1');
    await store.set('b', '2', 60);
    expect(await direct.get(`${prefix}a`)).toBe('1');
    expect(await direct.ttl(`${prefix}b`)).toBeGreaterThan(50);
    await store.del('a', 'b');
    expect(await direct.exists(`${prefix}a`, `${prefix}b`)).toBe(0);
    await store.close();
  });

  it('answers every command already sent, and has hung up both connections, when close() resolves', async () => {
    const store = await connected();
    expect(await store.ping()).toBe(true);
    await store.subscribe('news', () => undefined);
    for (let i = 0; i < 100 && !store.isSubscribed(); i++) await new Promise((r) => setTimeout(r, 20));
    const subscribers = async () => Number((await direct.pubsub('NUMSUB', `${prefix}news`))[1]);
    expect(await subscribers()).toBe(1);
    // Sent, not yet answered, when close() is called.
    const writes = Array.from({ length: 200 }, (_, i) => store.set(`inflight:${i}`, String(i)));
    const closed = store.close();
    await closed;
    // Gone by now, not a moment later: a process may exit right after close().
    expect(await subscribers()).toBe(0);
    const outcomes = await Promise.allSettled(writes);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([]);
    expect(await direct.get(`${prefix}inflight:199`)).toBe('199');
    expect(await store.ping()).toBe(false);
  });

  it('closes at once when Redis is unreachable, without waiting for its timeout', async () => {
    const store = new RedisKvStore('redis://127.0.0.1:1', prefix);
    stores.push(store);
    const started = Date.now();
    await store.close(5_000);
    expect(Date.now() - started).toBeLessThan(2_500);
  });
});
