import { randomBytes } from 'node:crypto';
import { deleteRedisPrefix } from '../../scripts/support/dev-utils';
import { testRedisUrl } from './env';

/** A key prefix unique to one test file, and a cleanup that deletes every key under it. */
export function testRedisPrefix(label = 't'): { prefix: string; cleanup: () => Promise<void> } {
  const prefix = `silotest:${label}:${randomBytes(4).toString('hex')}:`;
  return {
    prefix,
    cleanup: () => deleteRedisPrefix(testRedisUrl(), prefix),
  };
}
