import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { testRedisUrl } from './env';

/** A key prefix unique to one test file, and a cleanup that deletes every key under it. */
export function testRedisPrefix(label = 't'): { prefix: string; cleanup: () => Promise<void> } {
  const prefix = `silotest:${label}:${randomBytes(4).toString('hex')}:`;
  return {
    prefix,
    cleanup: async () => {
      const r = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
      try {
        let cursor = '0';
        do {
          const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
          cursor = next;
          if (keys.length) await r.del(...keys);
        } while (cursor !== '0');
      } finally {
        r.disconnect();
      }
    },
  };
}
