/**
 * The shared cache and invalidation bus: Redis in production, an in-process store when
 * REDIS_URL is unset (the embedded single-process mode, where every component shares it).
 * Every method may fail when Redis is down; callers treat the cache as optional.
 */
export interface KvStore {
  readonly kind: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlSeconds?: number): Promise<void>;
  del(...keys: string[]): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  /** Handler runs for every message; the subscription survives reconnects. */
  subscribe(channel: string, handler: (message: string) => void): Promise<void>;
  /** True while the subscription is connected, i.e. invalidations are being received. */
  isSubscribed(): boolean;
  /** Called after the bus reconnects: invalidations may have been missed meanwhile. */
  onReconnect(cb: () => void): void;
  ping(): Promise<boolean>;
  /** Waits up to `timeoutMs` for the connection to be usable (true), else false. */
  ready?(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}
