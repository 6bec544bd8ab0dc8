import type { ConnectionOptions } from 'node:tls';
import { Pool } from 'pg';

/** One server backend the runtime gave up on: its process id, and the role it must still run as. */
export interface BackendRef {
  host: string;
  port: number;
  pid: number;
  /** The tenant role: a pid reused by another role's backend is never signalled. */
  role: string;
}

/**
 * Port: ends backends through a path the tenant cannot touch, and reports which are still there.
 * It differs per platform (local: a per-installation role with pg_signal_backend; AWS: the
 * cluster's management credentials), so it is an interface at the process/database boundary.
 */
export interface BackendTerminator {
  /**
   * Sends a terminate to those of `backends` (all on `host:port`) that the server still shows
   * running as their role, and returns their pids. A pid not returned is gone from the server.
   * Rejects when the server could not be asked (nothing is known then).
   */
  reap(server: { host: string; port: number }, backends: ReadonlyArray<BackendRef>): Promise<Set<number>>;
  close(): Promise<void>;
}

/** Credentials of the privileged role on one server, and the database it logs into (not a tenant's). */
export interface TerminatorLogin {
  user: string;
  /** A function is called on every connect (an RDS IAM token is signed per connect and lives 15 minutes). */
  password: string | (() => Promise<string>);
  database: string;
  /** TLS of the connection (IAM logins: required and verified). Default none. */
  ssl?: ConnectionOptions;
}

/** The login for one database server (`host:port` of the backends it will end). */
export type TerminatorLoginSource = (server: { host: string; port: number }) => Promise<TerminatorLogin>;

// Joined on pid *and* role: a pid the OS reused for someone else's backend is left alone, and a
// superuser's backend (which pg_signal_backend may not touch, an error for the whole batch) never matches.
const REAP_SQL = `SELECT a.pid, pg_terminate_backend(a.pid) AS signalled
  FROM pg_stat_activity a JOIN unnest($1::int[], $2::name[]) AS t(pid, role) ON a.pid = t.pid AND a.usename = t.role`;
const AUTH_FAILED = new Set(['28P01', '28000']);

/**
 * The PostgreSQL implementation: one small pool per server, logged in as a role that is a member of
 * pg_signal_backend and pg_read_all_stats (never a superuser, never a tenant's role). `login` is
 * asked per server, when its pool is made, and again after an authentication failure (password
 * rotated).
 */
export class PgBackendTerminator implements BackendTerminator {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly login: TerminatorLoginSource, private readonly o: { connectTimeoutMs?: number; idleTimeoutMs?: number } = {}) {}

  async reap(server: { host: string; port: number }, backends: ReadonlyArray<BackendRef>): Promise<Set<number>> {
    if (!backends.length) return new Set();
    const pool = await this.poolFor(server);
    try {
      const { rows } = await pool.query<{ pid: number }>(REAP_SQL, [backends.map((b) => b.pid), backends.map((b) => b.role)]);
      return new Set(rows.map((r) => r.pid));
    } catch (err) {
      if (AUTH_FAILED.has((err as { code?: string }).code ?? '')) await this.forgetLogin();
      throw err;
    }
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }

  private async poolFor(server: { host: string; port: number }): Promise<Pool> {
    const key = `${server.host}:${server.port}`;
    const have = this.pools.get(key);
    if (have) return have;
    const login = await this.login({ host: server.host, port: server.port });
    const raced = this.pools.get(key);
    if (raced) return raced;
    const pool = new Pool({
      host: server.host, port: server.port, user: login.user, password: login.password, database: login.database, ssl: login.ssl,
      // One connection is enough (batches are per server); it stays a while so a crisis (server
      // slots scarce) finds it open.
      max: 1, idleTimeoutMillis: this.o.idleTimeoutMs ?? 60_000, connectionTimeoutMillis: this.o.connectTimeoutMs ?? 3_000,
      application_name: 'silo-runtime-terminator', statement_timeout: 5_000,
    });
    pool.on('error', () => undefined);
    this.pools.set(key, pool);
    return pool;
  }

  private async forgetLogin(): Promise<void> {
    await this.close();
  }
}

/**
 * How long to wait before asking about a backend again, by how often it was asked already: at once,
 * then 25 ms doubling up to 2 s. A terminated backend is usually gone by the second look; one stuck
 * in an uninterruptible wait keeps being asked (and signalled) at most every 2 s.
 */
export function reapDelayMs(round: number, base = 25, cap = 2_000): number {
  if (round <= 0) return 0;
  return Math.min(cap, base * 2 ** (round - 1));
}

interface Watch {
  ref: BackendRef;
  round: number;
  due: number;
  done: () => void;
}

/** The watches of one server due at `now`, and when to look again for the rest (null: none left). */
export function dueWatches<T extends { due: number }>(watches: Iterable<T>, now: number): { due: T[]; next: number | null } {
  const due: T[] = [];
  let next: number | null = null;
  for (const w of watches) {
    if (w.due <= now) due.push(w);
    else next = next === null ? w.due : Math.min(next, w.due);
  }
  return { due, next };
}

/**
 * The shell around a terminator: `watch()` resolves once the server confirms the backend has
 * exited. Backends of one server are asked about in one query; each is re-signalled and re-checked
 * with backoff (`reapDelayMs`) until it is gone, however long that takes: the caller keeps counting
 * it meanwhile, so the runtime's accounting never shows fewer backends than the server has.
 */
export class BackendReaper {
  private readonly servers = new Map<string, { host: string; port: number; watches: Map<number, Watch>; timer: NodeJS.Timeout | null; running: boolean }>();
  private stopped = false;

  constructor(private readonly terminator: BackendTerminator, private readonly o: { onError?: (err: unknown, server: string, pending: number) => void; now?: () => number } = {}) {}

  /** Backends being terminated and not yet confirmed gone. */
  get pending(): number {
    let n = 0;
    for (const s of this.servers.values()) n += s.watches.size;
    return n;
  }

  watch(ref: BackendRef): Promise<void> {
    const key = `${ref.host}:${ref.port}`;
    let s = this.servers.get(key);
    if (!s) {
      s = { host: ref.host, port: ref.port, watches: new Map(), timer: null, running: false };
      this.servers.set(key, s);
    }
    const server = s;
    const existing = server.watches.get(ref.pid);
    if (existing) return new Promise((resolve) => {
      const prev = existing.done;
      existing.done = () => (prev(), resolve());
    });
    return new Promise<void>((resolve) => {
      server.watches.set(ref.pid, { ref, round: 0, due: this.now(), done: resolve });
      this.schedule(key);
    });
  }

  /** Stops asking (the runtime is gone): pending watches never resolve. */
  stop(): void {
    this.stopped = true;
    for (const s of this.servers.values()) if (s.timer) clearTimeout(s.timer);
  }

  private now(): number {
    return this.o.now?.() ?? Date.now();
  }

  private schedule(key: string): void {
    const s = this.servers.get(key);
    if (!s || s.running || this.stopped) return;
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    if (!s.watches.size) {
      this.servers.delete(key);
      return;
    }
    const now = this.now();
    const { due, next } = dueWatches(s.watches.values(), now);
    // Not unref'd: a process must not exit while it still owes the server a terminate.
    s.timer = setTimeout(() => void this.run(key), due.length ? 0 : Math.max(0, (next as number) - now));
  }

  private async run(key: string): Promise<void> {
    const s = this.servers.get(key);
    if (!s || this.stopped) return;
    s.timer = null;
    const { due } = dueWatches(s.watches.values(), this.now());
    if (due.length) {
      s.running = true;
      try {
        const present = await this.terminator.reap({ host: s.host, port: s.port }, due.map((w) => w.ref));
        for (const w of due) {
          if (present.has(w.ref.pid)) this.backOff(w);
          else {
            s.watches.delete(w.ref.pid);
            w.done();
          }
        }
      } catch (err) {
        for (const w of due) this.backOff(w);
        try {
          this.o.onError?.(err, key, s.watches.size);
        } catch {
          // A reporting hook must not stop the reaping.
        }
      } finally {
        s.running = false;
      }
    }
    this.schedule(key);
  }

  private backOff(w: Watch): void {
    w.round++;
    w.due = this.now() + reapDelayMs(w.round);
  }
}
