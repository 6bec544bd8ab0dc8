import type { KvStore } from './kv-store';
import { MemoryKvStore } from './memory-kv-store';
import { RedisKvStore } from './redis-kv-store';

/** Redis when REDIS_URL is set, else the in-process store (embedded single-process mode). */
export function createKvStore(redisUrl: string | undefined, prefix = ''): KvStore {
  return redisUrl ? new RedisKvStore(redisUrl, prefix) : new MemoryKvStore(prefix);
}
