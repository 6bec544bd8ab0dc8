import { LRUCache } from 'lru-cache';
import type { KvStore } from '../common/kv-store';

export type CacheSource = 'memory' | 'kv' | 'db' | 'stale';

export interface TieredCacheOptions<V> {
  /** Entries kept in process (least recently used go first). */
  max: number;
  /** How long a positive entry is trusted: long while invalidations flow, short while they do not. */
  freshMs: () => number;
  negativeMs: number;
  /** A cached entry may still answer this long when the sources fail (0: never). */
  staleIfErrorMs: number;
  kv: KvStore;
  kvKey: (key: string) => string;
  kvTtlSeconds: number;
  /** `key` is the cache key the value is stored under (signed records bind to it). */
  encode: (v: V, key: string) => string;
  /** Returns null for a value that does not parse or verify (treated as a miss: the database answers). */
  decode: (s: string, key: string) => V | null;
  /** The source of truth; null means "does not exist". */
  load: (key: string) => Promise<V | null>;
  onSource?: (source: CacheSource) => void;
  onError: (err: unknown, stage: 'kv-get' | 'kv-set' | 'db') => void;
}

interface Slot<V> {
  value: V | null;
  at: number;
}

/**
 * Memory (bounded LRU) → KvStore (Redis) → database, with write-through to the KvStore on a
 * database hit. Concurrent misses for one key share one load. An invalidation bumps a generation
 * so a load that started before it can never put its (possibly stale) answer back into either cache.
 */
export class TieredCache<V> {
  private readonly lru: LRUCache<string, Slot<V>>;
  private readonly inflight = new Map<string, Promise<V | null>>();
  private generation = 0;

  constructor(private readonly o: TieredCacheOptions<V>) {
    this.lru = new LRUCache<string, Slot<V>>({ max: o.max });
  }

  async get(key: string): Promise<V | null> {
    const hit = this.lru.get(key);
    if (hit && Date.now() - hit.at < (hit.value === null ? this.o.negativeMs : this.o.freshMs())) {
      this.o.onSource?.('memory');
      return hit.value;
    }
    const running = this.inflight.get(key);
    if (running) return running;
    const p = this.fetch(key, hit).finally(() => {
      if (this.inflight.get(key) === p) this.inflight.delete(key);
    });
    this.inflight.set(key, p);
    return p;
  }

  /** Drops the key here and in the KvStore (a replica may have just written a stale copy back). */
  invalidate(key: string): void {
    this.generation++;
    this.lru.delete(key);
    this.inflight.delete(key);
    this.o.kv.del(this.o.kvKey(key)).catch((err) => this.o.onError(err, 'kv-set'));
  }

  /** Forgets everything held in process (after the bus reconnects: invalidations may have been missed). */
  clear(): void {
    this.generation++;
    this.lru.clear();
    this.inflight.clear();
  }

  /** The in-process value without any I/O (stale or not), for callers that only need a hint. */
  peek(key: string): V | null | undefined {
    return this.lru.peek(key)?.value;
  }

  get size(): number {
    return this.lru.size;
  }

  private async fetch(key: string, previous: Slot<V> | undefined): Promise<V | null> {
    const generation = this.generation;
    const keep = (value: V | null) => {
      if (generation === this.generation) this.lru.set(key, { value, at: Date.now() });
    };
    try {
      const raw = await this.o.kv.get(this.o.kvKey(key));
      const value = raw === null ? null : this.o.decode(raw, key);
      if (value !== null) {
        keep(value);
        this.o.onSource?.('kv');
        return value;
      }
    } catch (err) {
      this.o.onError(err, 'kv-get');
    }
    let value: V | null;
    try {
      value = await this.o.load(key);
    } catch (err) {
      this.o.onError(err, 'db');
      if (previous && Date.now() - previous.at < this.o.staleIfErrorMs) {
        this.o.onSource?.('stale');
        return previous.value;
      }
      throw err;
    }
    this.o.onSource?.('db');
    keep(value);
    if (value !== null && generation === this.generation) {
      this.o.kv.set(this.o.kvKey(key), this.o.encode(value, key), this.o.kvTtlSeconds).catch((err) => this.o.onError(err, 'kv-set'));
    }
    return value;
  }
}
