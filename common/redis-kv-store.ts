import Redis from 'ioredis';
import { KvStore } from './kv-store';

/**
 * Redis-backed KvStore. Commands fail fast while Redis is down (no offline queue, short
 * timeouts) so a cache outage costs a fallback, never a hung request.
 */
export class RedisKvStore implements KvStore {
  readonly kind = 'redis' as const;
  private readonly cmd: Redis;
  private sub: Redis | null = null;
  private subscribed = false;
  private readonly reconnectCallbacks: Array<() => void> = [];
  private readonly handlers = new Map<string, Array<(m: string) => void>>();

  constructor(private readonly url: string, private readonly prefix = '', private readonly commandTimeoutMs = 250) {
    this.cmd = new Redis(url, {
      keyPrefix: prefix,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: commandTimeoutMs,
      connectTimeout: 2_000,
      retryStrategy: (times) => Math.min(100 * times, 1_000),
      lazyConnect: false,
    });
    this.cmd.on('error', () => undefined); // surfaced through failed commands and ping(); never crash
  }

  /** Commands fail while connecting (no offline queue): a process starting up waits for this first. */
  ready(timeoutMs: number): Promise<boolean> {
    if (this.cmd.status === 'ready') return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.cmd.off('ready', onReady);
        resolve(ok);
      };
      const onReady = () => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.cmd.once('ready', onReady);
    });
  }

  async get(key: string): Promise<string | null> {
    return this.cmd.get(key);
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    if (ttlSeconds) await this.cmd.set(key, value, 'EX', ttlSeconds);
    else await this.cmd.set(key, value);
  }

  async del(...keys: string[]): Promise<void> {
    if (keys.length) await this.cmd.del(...keys);
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.cmd.publish(this.prefix + channel, message);
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    const full = this.prefix + channel;
    const list = this.handlers.get(full) ?? [];
    list.push(handler);
    this.handlers.set(full, list);
    if (!this.sub) this.sub = this.createSubscriber();
    if (this.sub.status === 'ready') await this.sub.subscribe(full).catch(() => undefined);
  }

  isSubscribed(): boolean {
    return this.subscribed;
  }

  onReconnect(cb: () => void): void {
    this.reconnectCallbacks.push(cb);
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.cmd.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  /** Commands already sent get their replies before the connections close (QUIT, not a hang-up). */
  async close(timeoutMs = 1_000): Promise<void> {
    await Promise.all([quitRedis(this.cmd, timeoutMs), this.sub && quitRedis(this.sub, timeoutMs)]);
  }

  private createSubscriber(): Redis {
    const sub = new Redis(this.url, { enableOfflineQueue: true, autoResubscribe: false, connectTimeout: 2_000, retryStrategy: (t) => Math.min(100 * t, 1_000), maxRetriesPerRequest: null });
    let everReady = false;
    sub.on('error', () => undefined);
    sub.on('ready', () => {
      void (async () => {
        const channels = [...this.handlers.keys()];
        if (channels.length) await sub.subscribe(...channels).catch(() => undefined);
        this.subscribed = true;
        if (everReady) for (const cb of this.reconnectCallbacks) cb();
        everReady = true;
      })();
    });
    sub.on('close', () => {
      this.subscribed = false;
    });
    sub.on('message', (channel: string, message: string) => {
      for (const h of this.handlers.get(channel) ?? []) h(message);
    });
    return sub;
  }
}

/**
 * Closes a connection gracefully: QUIT is answered after every command sent before it, so those
 * complete instead of failing with "Connection is closed". Hangs up if Redis does not answer within
 * `timeoutMs`, and at once when it is not connected (nothing in flight to wait for).
 */
export async function quitRedis(r: Redis, timeoutMs = 1_000): Promise<void> {
  if (r.status === 'end') return;
  if (r.status !== 'ready') return r.disconnect();
  let timer: NodeJS.Timeout | undefined;
  const ended = new Promise<void>((resolve) => r.once('end', resolve));
  const late = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
  r.quit().catch(() => undefined);
  await Promise.race([ended, late]);
  clearTimeout(timer);
  if ((r.status as string) !== 'end') r.disconnect(); // no answer in time: hang up
}
