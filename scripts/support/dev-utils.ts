/**
 * Small helpers shared by the benchmarks (scripts/bench) and the test harnesses (test/): not
 * used by the services themselves.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import Redis from 'ioredis';
import { quitRedis } from '../../common/redis-kv-store';

/** A TCP port free on loopback right now (for a child server about to be started). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** True when a Redis server answers PING at `url` (one attempt, no retries). */
export async function redisAnswers(url: string, timeoutMs = 1_000): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    await quitRedis(r);
  }
}

/** The same server URL with another database name. */
export function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** Runs `fn` over `items` with at most `n` in flight; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], n: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  }));
  return out;
}

/**
 * Replaces the `## <heading>` section of a markdown file (up to the next `## `), or appends it:
 * each benchmark owns one section of docs/benchmarks.md.
 */
export function writeDocSection(file: string, heading: string, section: string): void {
  const current = existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmarks\n';
  const escaped = heading.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const start = current.search(new RegExp(`^## ${escaped}\\s*$`, 'm'));
  let next: string;
  if (start === -1) {
    next = `${current.trimEnd()}\n\n${section}\n`;
  } else {
    const rest = current.slice(start + 1);
    const end = rest.search(/^## /m);
    next = `${current.slice(0, start)}${section}\n${end === -1 ? '' : `\n${rest.slice(end)}`}`;
  }
  writeFileSync(file, next);
}

/** Whether a process with this pid is alive (to tell a dead run's leftovers from a live one's). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Deletes every Redis key under `prefix` (SCAN, never KEYS). */
export async function deleteRedisPrefix(url: string, prefix: string): Promise<void> {
  const r = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await r.del(...keys);
    } while (cursor !== '0');
  } finally {
    await quitRedis(r);
  }
}

/** The value after `--name` on a command line, if given. */
export function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i === -1 ? undefined : args[i + 1];
}
