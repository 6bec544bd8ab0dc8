import { EventEmitter } from 'node:events';
import { KvStore } from './kv-store';

/** In-process KvStore for the embedded mode. Bounded: expired keys are swept, so memory stays flat. */
export class MemoryKvStore implements KvStore {
  readonly kind = 'memory' as const;
  private readonly data = new Map<string, { value: string; expiresAt: number }>();
  private readonly bus = new EventEmitter();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly prefix = '') {
    this.bus.setMaxListeners(0);
    this.sweeper = setInterval(() => this.sweep(), 30_000);
    this.sweeper.unref();
  }

  async get(key: string): Promise<string | null> {
    const hit = this.data.get(this.prefix + key);
    if (!hit) return null;
    if (hit.expiresAt <= Date.now()) {
      this.data.delete(this.prefix + key);
      return null;
    }
    return hit.value;
  }

  async set(key: string, value: string, ttlSeconds?: number): Promise<void> {
    this.data.set(this.prefix + key, { value, expiresAt: ttlSeconds ? Date.now() + ttlSeconds * 1000 : Infinity });
  }

  async del(...keys: string[]): Promise<void> {
    for (const k of keys) this.data.delete(this.prefix + k);
  }

  async publish(channel: string, message: string): Promise<void> {
    // Async like Redis, so publishers never run subscribers inside their own transaction.
    setImmediate(() => this.bus.emit(this.prefix + channel, message));
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    this.bus.on(this.prefix + channel, handler);
  }

  isSubscribed(): boolean {
    return true;
  }

  onReconnect(): void {
    // never disconnects
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.bus.removeAllListeners();
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, v] of this.data) if (v.expiresAt <= now) this.data.delete(k);
  }
}
