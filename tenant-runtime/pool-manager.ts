import { connect as netConnect } from 'node:net';
import { Client, ClientConfig } from 'pg';
import type { SiloError } from '../common/errors';
import { BackendReaper, BackendTerminator } from './backend-terminator';
import { guardedClient } from './guarded-connection';
import { runtimeErrors } from './runtime-errors';

/** What the pool manager needs to reach one tenant's database. */
export interface PoolTarget {
  tenantId: string;
  /** For logs and metrics (the slug). */
  label: string;
  /** The database server (`host:port`): connects to one server are capped together. */
  server: string;
  /** Host, database, user, secret ref, revision, tier: when it changes the old pool is retired. */
  identity: string;
  /** Upper bound of this tenant's pool (also capped by the global budget). */
  max: number;
  /** Where its credentials live: a refused login drops only this tenant's cached copy. */
  secretRef: string;
  client: () => ClientConfig | Promise<ClientConfig>;
}

/** One open connection. `broken` ones are closed on release, never reused. */
export class PooledConnection {
  lastUsed = Date.now();
  closed = false;
  broken = false;
  /** Its socket was destroyed while the backend may still run: counted until the server confirms it gone. */
  abandoned = false;
  /** The server confirmed the abandoned backend has exited. */
  reaped = false;

  constructor(readonly client: Client, readonly pool: TenantPool, private readonly cfg: ClientConfig, private readonly onAbandon: (c: PooledConnection) => void = destroySocket) {}

  /** The backend's process id on the server (null before the connection completed). */
  get pid(): number | null {
    return (this.client as unknown as { processID: number | null }).processID ?? null;
  }

  /** Where the backend runs and as whom: what the terminator needs. */
  get backend(): { host: string; port: number; role: string } {
    // The client's own (parsed) parameters: a config given as a connection string has no `user` field.
    const c = this.client as unknown as { host?: string; port?: number; user?: string };
    return { host: c.host ?? this.cfg.host ?? '127.0.0.1', port: c.port ?? this.cfg.port ?? 5432, role: c.user ?? this.cfg.user ?? '' };
  }

  /**
   * Gives up on this connection whatever its backend is doing: destroys the socket now (the request
   * gets its answer) and has the backend terminated through the privileged path; the connection
   * stays counted against the budget and its tenant's cap until the server confirms the backend
   * exited. For every path that drops a connection whose statement may still run (a cancel that
   * was ignored, an oversized message, shutdown). Still release() it if it is leased. Idempotent.
   */
  abandon(): void {
    this.onAbandon(this);
  }

  /** Cancels whatever this connection is running (CancelRequest on a side socket: no auth needed). */
  cancel(): void {
    const { processID, secretKey } = this.client as unknown as { processID: number | null; secretKey: number | null };
    if (processID == null || secretKey == null) return;
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(processID, 8);
    msg.writeInt32BE(secretKey, 12);
    const s = netConnect({ host: this.cfg.host, port: this.cfg.port ?? 5432 }, () => s.end(msg));
    s.on('error', () => undefined);
    s.setTimeout(2_000, () => s.destroy());
  }
}

interface Waiter {
  /** The pool it waits in: waiters move to a tenant's new pool when its identity changes. */
  pool: TenantPool;
  resolve: (c: PooledConnection) => void;
  reject: (e: SiloError) => void;
  timer: NodeJS.Timeout | null;
  since: number;
  deadline: number;
}

/** Destroys a connection's socket (the backend is not told: it ends when it next reads or writes). */
function destroySocket(c: PooledConnection): void {
  c.broken = true;
  (c.client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
}

/** A tenant's connections. Idle ones are a LIFO stack, so hot connections stay hot and cold ones age out. */
export class TenantPool {
  readonly idle: PooledConnection[] = [];
  readonly waiters: Waiter[] = [];
  busy = 0;
  opening = 0;
  retired = false;
  lastUsed = Date.now();
  /** When the last two requests asked this pool for a connection: a tenant is warm when both are recent. */
  lastAcquired = 0;
  prevAcquired = 0;
  /** What happened to this pool since it was created, for the POOL_EXHAUSTED diagnostic. */
  readonly history = { connects: 0, handedOver: 0, evicted: 0, waitersServed: 0 };

  /**
   * Abandoned connections no longer leased whose backend the server still shows (being terminated).
   * Shared by every pool of the tenant (a retired pool's backends still count against the tenant's cap).
   */
  constructor(readonly target: PoolTarget, readonly terminating: Set<PooledConnection> = new Set()) {}

  get size(): number {
    return this.idle.length + this.busy + this.opening + this.terminating.size;
  }
}

export interface PoolManagerOptions {
  /** Connections this replica may hold across all tenants. */
  budget: number;
  acquireTimeoutMs: number;
  idleTimeoutMs: number;
  /**
   * A tenant that asked for connections twice within this window keeps the connections it used in it
   * even while other tenants wait on the budget: handing one over would cost two new connections
   * (theirs now, ours a moment later), and opening connections is what a busy server runs out of first.
   */
  keepWarmMs?: number;
  /**
   * Connections opened at once to one database server. PostgreSQL's postmaster forks backends one
   * at a time: past one or two concurrent connects its accept rate stays flat while the CPU each
   * connect costs nearly doubles (measured here: 25 ms of server CPU per connect one at a time,
   * 41-45 ms at two to eight at once, ~40 connects/s either way), CPU taken from every tenant's
   * queries. Waiters beyond the cap stay queued without holding a budget slot.
   */
  maxConnectingPerServer?: number;
  /**
   * Connect time assumed until connects have been measured (then a moving average takes over). A
   * waiter with less time left than this is failed rather than given a new connection. Default 25 ms
   * (loopback); a remote TLS endpoint is closer to 50-100 ms.
   */
  connectEstimateMs?: number;
  /**
   * Ends abandoned backends (a statement that ignored its cancel, an oversized message). Without one,
   * an abandoned connection is only dropped, and a backend that ignores the closed socket keeps
   * running uncounted: production wiring always passes one.
   */
  terminator?: BackendTerminator;
  /** The terminator could not be asked (its backends stay counted and are asked again with backoff). */
  onTerminateError?: (err: unknown, server: string, pending: number) => void;
  /** An abandoned backend was confirmed gone, `ms` after it was abandoned. */
  onTerminated?: (ms: number) => void;
  /** How long close() waits for abandoned backends to be confirmed gone (default 5 s). */
  terminateTimeoutMs?: number;
  /** Maps a failed connect to the client's error; also where credentials get dropped. */
  onConnectError: (err: unknown, target: PoolTarget) => SiloError;
  onPoolCreated?: (pool: TenantPool) => void;
  onPoolRemoved?: (pool: TenantPool) => void;
  onEvict?: (reason: 'idle' | 'handover') => void;
  onConnect?: (ms: number) => void;
  /** A request got its connection: how long it waited, and whether from the idle stack, a release or a new connection. */
  onAcquired?: (waitMs: number, via: 'idle' | 'release' | 'connect') => void;
  /**
   * A request got no connection in time. `describe()` returns the state that explains it (no
   * credentials in it); it walks every pool, so call it only for what gets logged.
   */
  onExhausted?: (describe: () => ExhaustedSnapshot) => void;
}

export interface ExhaustedSnapshot {
  tenant: string;
  limit: 'tenant' | 'replica';
  waitedMs: number;
  pool: { size: number; max: number; idle: number; busy: number; opening: number; waiting: number; warm: boolean } & TenantPool['history'];
  replica: { connections: number; budget: number; idle: number; protectedIdle: number; connecting: number; wantingPools: number; pools: number };
}

/**
 * One pg pool per tenant under one global connection budget. Pools are created on first use;
 * when the budget is full, the least recently used idle connection of another tenant is closed
 * to make room. A connection released while other tenants wait on the budget is closed to give
 * them its slot unless its own tenant still needs it: it has requests queued, or it is warm (two
 * requests within `keepWarmMs`). Every handover costs a new connection, and opening connections is
 * what a busy server runs out of first, so a busy tenant keeps what it uses; a waiter that gets
 * nothing within a quarter of the acquire timeout is overdue and takes a connection from a tenant
 * holding more than it (max-min fair), so busy tenants cannot starve the others. Connects to one
 * server are capped. A request that gets no connection within the acquire timeout fails with
 * POOL_EXHAUSTED. Pools with no connections are forgotten, so memory tracks live pools only.
 */
export class PoolManager {
  private readonly pools = new Map<string, TenantPool>();
  /** Pools with waiters blocked on the budget. */
  private readonly wanting = new Set<TenantPool>();
  private total = 0;
  private readonly sweeper: NodeJS.Timeout;
  /** Serves budget waiters once a warm connection they were denied is no longer protected. */
  private retry: NodeJS.Timeout | null = null;
  private closing = false;
  private readonly keepWarmMs: number;
  private readonly maxConnecting: number;
  /** Recent connect time (moving average): a waiter with less time left is not worth a connect. */
  private connectMs: number;
  /** Connects in flight per database server. */
  private readonly connecting = new Map<string, number>();
  private started = 0;
  /** Connections whose goodbye (Terminate) is still under way: close() waits for them. */
  private readonly ending = new Set<Promise<void>>();
  /** Connections handed to callers and not yet released (close() abandons those still out at its deadline). */
  private readonly leased = new Set<PooledConnection>();
  /** Per tenant: abandoned connections being terminated (see TenantPool.terminating). */
  private readonly terminating = new Map<string, Set<PooledConnection>>();
  /** Abandoned backends not yet confirmed gone: close() waits for them. */
  private readonly reaping = new Set<Promise<void>>();
  private readonly reaper: BackendReaper | null;

  constructor(private readonly o: PoolManagerOptions) {
    this.keepWarmMs = o.keepWarmMs ?? 1_000;
    this.maxConnecting = o.maxConnectingPerServer ?? 2;
    this.connectMs = o.connectEstimateMs ?? 25;
    this.sweeper = setInterval(() => this.sweep(), Math.min(1_000, o.idleTimeoutMs));
    this.sweeper.unref();
    this.reaper = o.terminator ? new BackendReaper(o.terminator, { onError: o.onTerminateError }) : null;
  }

  /** Abandoned backends still counted because the server has not confirmed they exited. */
  get terminatingCount(): number {
    let n = 0;
    for (const set of this.terminating.values()) n += set.size;
    return n + [...this.leased].filter((c) => c.abandoned && !c.reaped).length;
  }

  /** Open (and opening) connections across every tenant: never above the budget. */
  get connections(): number {
    return this.total;
  }

  /** Connects in flight, across servers (capped per server by `maxConnectingPerServer`). */
  get connectsInFlight(): number {
    let n = 0;
    for (const v of this.connecting.values()) n += v;
    return n;
  }

  /** Connections opened since start (each one a new server backend). */
  get connectsStarted(): number {
    return this.started;
  }

  get poolCount(): number {
    return this.pools.size;
  }

  stats(): Array<{ tenantId: string; label: string; idle: number; busy: number; opening: number; terminating: number; waiting: number; connects: number }> {
    return [...this.pools.values()].map((p) => ({ tenantId: p.target.tenantId, label: p.target.label, idle: p.idle.length, busy: p.busy, opening: p.opening, terminating: p.terminating.size, waiting: p.waiters.length, connects: p.history.connects }));
  }

  /** The error for a waiter that got no connection in time; reports why to `onExhausted`. */
  private exhausted(pool: TenantPool, w: Waiter): SiloError {
    const limit = pool.size >= pool.target.max ? 'tenant' : 'replica';
    const waitedMs = Date.now() - w.since;
    try {
      this.o.onExhausted?.(() => this.snapshot(pool, limit, waitedMs));
    } catch {
      // A reporting hook must never leave the request without its answer.
    }
    return runtimeErrors.poolExhausted(limit);
  }

  /** Why a waiter of `pool` got nothing: its pool and the replica's budget as they are now. */
  private snapshot(pool: TenantPool, limit: 'tenant' | 'replica', waitedMs: number): ExhaustedSnapshot {
    const now = Date.now();
    let idle = 0;
    let protectedIdle = 0;
    for (const p of this.allPools()) {
      idle += p.idle.length;
      if (this.isWarm(p, now)) protectedIdle += p.idle.filter((c) => now - c.lastUsed < this.keepWarmMs).length;
    }
    return {
      tenant: pool.target.label, limit, waitedMs,
      pool: { size: pool.size, max: pool.target.max, idle: pool.idle.length, busy: pool.busy, opening: pool.opening, waiting: pool.waiters.length, warm: this.isWarm(pool, now), ...pool.history },
      replica: { connections: this.total, budget: this.o.budget, idle, protectedIdle, connecting: this.connectsInFlight, wantingPools: this.wanting.size, pools: this.pools.size },
    };
  }

  has(tenantId: string): boolean {
    return this.pools.has(tenantId);
  }

  acquire(target: PoolTarget, timeoutMs = this.o.acquireTimeoutMs): Promise<PooledConnection> {
    if (this.closing) return Promise.reject(runtimeErrors.draining());
    const pool = this.poolFor(target);
    pool.prevAcquired = pool.lastAcquired;
    pool.lastUsed = pool.lastAcquired = Date.now();
    const idle = pool.idle.pop();
    if (idle) {
      pool.busy++;
      this.leased.add(idle);
      this.o.onAcquired?.(0, 'idle');
      return Promise.resolve(idle);
    }
    return new Promise<PooledConnection>((resolve, reject) => {
      const now = Date.now();
      const w: Waiter = { pool, resolve, reject, timer: null, since: now, deadline: now + timeoutMs };
      w.timer = setTimeout(() => {
        // w.pool, not pool: a waiter moved to the tenant's new pool must leave that queue, or a
        // connection opened for it later would go to a request that is gone, busy for ever.
        const at = w.pool;
        const i = at.waiters.indexOf(w);
        if (i !== -1) at.waiters.splice(i, 1);
        if (!at.waiters.length) this.wanting.delete(at);
        reject(this.exhausted(at, w));
      }, timeoutMs);
      pool.waiters.push(w);
      this.pump(pool);
    });
  }

  /**
   * Returns a connection. `reset` runs first (ROLLBACK / DISCARD ALL), so no session or
   * transaction state reaches the next request; a failed reset or `destroy` closes the connection.
   */
  release(conn: PooledConnection, opts: { destroy?: boolean; reset?: string[] | null } = {}): void {
    this.leased.delete(conn);
    if (conn.abandoned) return this.releaseAbandoned(conn);
    if (opts.destroy || conn.broken || conn.closed) return this.drop(conn);
    if (opts.reset?.length) {
      opts.reset
        .reduce<Promise<unknown>>((p, sql) => p.then(() => conn.client.query(sql)), Promise.resolve())
        .then(() => (conn.broken ? this.drop(conn) : this.returned(conn)), () => this.drop(conn));
      return;
    }
    this.returned(conn);
  }

  /** Stops handing out this tenant's current connections (credentials rotated, tenant suspended...). */
  retire(tenantId: string): void {
    const pool = this.pools.get(tenantId);
    if (pool) this.retirePool(pool);
  }

  /** Drains: refuses new acquires, waits up to `timeoutMs` for leases to come back, then closes everything. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closing = true;
    clearInterval(this.sweeper);
    if (this.retry) clearTimeout(this.retry);
    for (const pool of this.pools.values()) this.retirePool(pool);
    const deadline = Date.now() + timeoutMs;
    while (this.total > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const leftovers = [...this.allPools()].flatMap((p) => p.idle);
    for (const c of leftovers) void this.closeConn(c);
    // Requests still running past the deadline: their statements may run on after the socket
    // closes, so they are terminated, not just disconnected (closing a pg Client with a query
    // active only destroys its socket).
    for (const c of [...this.leased]) c.abandon();
    // Until every backend has said goodbye: a drained replica leaves no session behind on the server.
    const giveUp = new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 1_000).unref());
    await Promise.race([Promise.all([...this.ending]), giveUp]);
    if (this.reaper) {
      const reapGiveUp = new Promise<void>((r) => setTimeout(r, this.o.terminateTimeoutMs ?? 5_000).unref());
      await Promise.race([Promise.all([...this.reaping]), reapGiveUp]);
      this.reaper.stop();
    }
  }

  private poolFor(target: PoolTarget): TenantPool {
    const current = this.pools.get(target.tenantId);
    if (current && current.target.identity === target.identity) return current;
    const pool = new TenantPool(target, this.terminatingFor(target.tenantId));
    this.pools.set(target.tenantId, pool);
    if (current) {
      // Waiters queued under the old identity move over: they want "this tenant", not those credentials.
      for (const w of current.waiters) w.pool = pool;
      pool.waiters.push(...current.waiters.splice(0));
      this.wanting.delete(current);
      this.retirePool(current);
    }
    this.o.onPoolCreated?.(pool);
    return pool;
  }

  private *allPools(): Iterable<TenantPool> {
    const seen = new Set<TenantPool>(this.pools.values());
    for (const p of this.wanting) seen.add(p);
    yield* seen;
  }

  private retirePool(pool: TenantPool): void {
    pool.retired = true;
    if (this.pools.get(pool.target.tenantId) === pool) {
      this.pools.delete(pool.target.tenantId);
      if (!pool.terminating.size) this.terminating.delete(pool.target.tenantId);
      this.o.onPoolRemoved?.(pool);
    }
    for (const c of pool.idle.splice(0)) void this.closeConn(c);
    this.pumpWanting();
  }

  /** Serves waiters from idle connections, then opens new ones within the pool max and the budget. */
  private pump(pool: TenantPool): void {
    while (pool.waiters.length && pool.idle.length) this.give(pool.idle.pop() as PooledConnection, pool.waiters.shift() as Waiter, 'idle');
    while (pool.waiters.length > pool.opening && pool.size < Math.min(pool.target.max, this.o.budget) && this.mayConnect(pool)) {
      if (this.failHopeless(pool)) continue;
      if (this.total >= this.o.budget && !this.evictIdle(this.overdue(pool))) break;
      this.open(pool);
    }
    if (pool.waiters.length > pool.opening && pool.size < pool.target.max) {
      this.wanting.add(pool);
      this.armRetry();
    } else this.wanting.delete(pool);
  }

  /** Budget waiters may be held back only by warm connections: look again when that protection lapses. */
  private armRetry(): void {
    if (this.retry || this.closing) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.pumpWanting();
    }, this.keepWarmMs + 1);
    this.retry.unref();
  }

  /**
   * Offers free budget and connect slots to the waiting pools: overdue waiters first, oldest first,
   * then the others fewest connections first. Fewest-first alone let a steady stream of new tenants
   * (0 connections each) keep a busy tenant that needed one more connection waiting until its
   * requests timed out: it always sorted last (found by the load scenario at 500 tenants).
   */
  private pumpWanting(): void {
    if (!this.wanting.size) return;
    const now = Date.now();
    // Decided once per pool, not in every comparison: this runs on each connect and close.
    const due = new Map([...this.wanting].map((p) => [p, this.overdue(p, now)]));
    const order = [...due.keys()].sort((a, b) => {
      const da = due.get(a);
      if (da !== due.get(b)) return da ? -1 : 1;
      if (da) return oldestWait(a) - oldestWait(b);
      return fairer(a, b) ? -1 : fairer(b, a) ? 1 : 0;
    });
    for (const p of order) {
      this.pump(p);
      if (this.total >= this.o.budget) break;
    }
  }

  /**
   * Under overload the oldest waiters are the ones a new connection would reach too late: a connect
   * started for a request that times out before it completes only takes server time from requests
   * that could still be served. Fails the next uncovered waiter now if it cannot make it.
   */
  private failHopeless(pool: TenantPool): boolean {
    const w = pool.waiters[pool.opening];
    if (!w || w.deadline - Date.now() >= this.connectMs) return false;
    pool.waiters.splice(pool.opening, 1);
    if (w.timer) clearTimeout(w.timer);
    w.reject(this.exhausted(pool, w));
    return true;
  }

  private open(pool: TenantPool): void {
    this.total++;
    pool.opening++;
    const server = pool.target.server;
    this.connecting.set(server, (this.connecting.get(server) ?? 0) + 1);
    this.started++;
    pool.history.connects++;
    void this.connect(pool);
  }

  private mayConnect(pool: TenantPool): boolean {
    return (this.connecting.get(pool.target.server) ?? 0) < this.maxConnecting;
  }

  /** A connect finished (either way): its server may take the next one. */
  private connectDone(pool: TenantPool): void {
    const server = pool.target.server;
    const n = (this.connecting.get(server) ?? 1) - 1;
    if (n > 0) this.connecting.set(server, n);
    else this.connecting.delete(server);
  }

  private async connect(pool: TenantPool): Promise<void> {
    const started = Date.now();
    let client: Client | null = null;
    let cfg: ClientConfig;
    try {
      // Credentials are only needed here: warm requests never touch the secret store or its cache.
      cfg = await pool.target.client();
      client = guardedClient(cfg);
      await client.connect();
    } catch (err) {
      this.connectDone(pool);
      pool.opening--;
      this.total--;
      client?.end().catch(() => undefined);
      const e = this.o.onConnectError(err, pool.target);
      // Each open was started for one waiter: fail one, so a broken database fails requests fast.
      const w = pool.waiters.shift();
      if (w) {
        if (w.timer) clearTimeout(w.timer);
        w.reject(e);
      }
      this.afterClose(pool);
      return;
    }
    this.connectDone(pool);
    pool.opening--;
    const took = Date.now() - started;
    this.connectMs += (took - this.connectMs) / 8;
    this.o.onConnect?.(took);
    const conn = new PooledConnection(client, pool, cfg, (c) => this.abandon(c));
    client.on('error', () => {
      // An idle connection that died (server restart, terminate) is forgotten; a busy one fails its query and is dropped on release.
      conn.broken = true;
      const i = pool.idle.indexOf(conn);
      if (i !== -1) {
        pool.idle.splice(i, 1);
        void this.closeConn(conn);
        this.afterClose(pool);
      }
    });
    pool.busy++; // counted busy until placed
    this.returned(conn, 'connect');
    this.pumpWanting(); // a connect slot on this server is free for the next tenant
  }

  /** A connection is free again (released or freshly opened): hand it to the oldest waiter that may have it. */
  private returned(conn: PooledConnection, via: 'release' | 'connect' = 'release'): void {
    const pool = conn.pool;
    pool.busy--;
    pool.lastUsed = conn.lastUsed = Date.now();
    const own = pool.waiters[0];
    // A connection just opened for this tenant's waiter goes to it: the open was the arbitration
    // (pumpWanting's order), and closing it for someone else would waste the connect and start the
    // same race again (it did, 15 times in a row, behind a stream of new tenants).
    const other = via === 'connect' && own ? null : this.neediest(pool);
    // The budget is full and another tenant waits for a connection that this one can spare: close
    // this one and give them the slot.
    if (other && this.total >= this.o.budget && this.handsOver(pool, other, own)) {
      void this.closeConn(conn);
      pool.history.handedOver++;
      this.o.onEvict?.('handover');
      // The slot goes to the tenant it was freed for: pumpWanting's order could give it back to
      // this one (an older overdue waiter), which would reopen it and starve the other.
      this.pump(other);
      this.afterClose(pool);
      return;
    }
    if (own) {
      this.give(conn, pool.waiters.shift() as Waiter, via);
      return;
    }
    if (pool.retired || this.closing) {
      void this.closeConn(conn);
      this.afterClose(pool);
      return;
    }
    pool.idle.push(conn);
  }

  private give(conn: PooledConnection, w: Waiter, via: 'idle' | 'release' | 'connect'): void {
    if (w.timer) clearTimeout(w.timer);
    this.o.onAcquired?.(Date.now() - w.since, via);
    conn.pool.busy++;
    this.leased.add(conn);
    conn.pool.history.waitersServed++;
    conn.lastUsed = Date.now();
    w.resolve(conn);
  }

  private terminatingFor(tenantId: string): Set<PooledConnection> {
    let set = this.terminating.get(tenantId);
    if (!set) {
      set = new Set();
      this.terminating.set(tenantId, set);
    }
    return set;
  }

  /** The tenant's pool that should get the freed slot: its current one, else the connection's own. */
  private currentPool(conn: PooledConnection): TenantPool {
    return this.pools.get(conn.pool.target.tenantId) ?? conn.pool;
  }

  /** See PooledConnection.abandon(). */
  private abandon(conn: PooledConnection): void {
    if (conn.closed || conn.abandoned) return;
    const pid = conn.pid;
    destroySocket(conn);
    const pool = conn.pool;
    const idleAt = pool.idle.indexOf(conn);
    if (!this.reaper || pid === null) {
      // Nothing can confirm the backend's end: dropped as before (leased ones on release).
      if (idleAt !== -1) {
        pool.idle.splice(idleAt, 1);
        void this.closeConn(conn);
        this.afterClose(pool);
      }
      return;
    }
    conn.abandoned = true;
    if (idleAt !== -1) {
      pool.idle.splice(idleAt, 1);
      this.terminatingFor(pool.target.tenantId).add(conn);
    }
    const since = Date.now();
    const { host, port, role } = conn.backend;
    const done: Promise<void> = this.reaper.watch({ host, port, pid, role }).then(() => {
      this.reaping.delete(done);
      this.o.onTerminated?.(Date.now() - since);
      this.reaped(conn);
    });
    this.reaping.add(done);
  }

  /** A leased abandoned connection came back: it keeps its slot until its backend is gone. */
  private releaseAbandoned(conn: PooledConnection): void {
    const pool = conn.pool;
    pool.busy--;
    if (conn.reaped) return this.freeAbandoned(conn);
    this.terminatingFor(pool.target.tenantId).add(conn);
  }

  /** The server confirmed an abandoned backend has exited. */
  private reaped(conn: PooledConnection): void {
    conn.reaped = true;
    // Still leased: release() frees the slot.
    if (this.terminating.get(conn.pool.target.tenantId)?.delete(conn)) this.freeAbandoned(conn);
  }

  private freeAbandoned(conn: PooledConnection): void {
    conn.closed = true;
    this.total--;
    const tenantId = conn.pool.target.tenantId;
    // Forgotten only with no pool of the tenant current: a current pool shares this set.
    if (!this.terminating.get(tenantId)?.size && !this.pools.has(tenantId)) this.terminating.delete(tenantId);
    void conn.client.end().catch(() => undefined); // the socket is gone already: this only settles the client
    this.afterClose(this.currentPool(conn));
  }

  private drop(conn: PooledConnection): void {
    conn.pool.busy--;
    void this.closeConn(conn);
    this.afterClose(conn.pool);
  }

  /** After a connection closed: refill its pool's waiters, serve the budget queue, forget empty pools. */
  private afterClose(pool: TenantPool): void {
    // Budget-blocked tenants first (fewest connections first): the slot just freed may be theirs.
    this.pumpWanting();
    if (pool.waiters.length) this.pump(pool);
    this.forgetIfEmpty(pool);
  }

  private forgetIfEmpty(pool: TenantPool): void {
    if (pool.size === 0 && !pool.waiters.length && this.pools.get(pool.target.tenantId) === pool) {
      this.pools.delete(pool.target.tenantId);
      if (!this.terminating.get(pool.target.tenantId)?.size) this.terminating.delete(pool.target.tenantId);
      this.o.onPoolRemoved?.(pool);
    }
  }

  /**
   * Whether a released connection goes to another tenant waiting on the budget. A tenant with
   * requests queued keeps it unless the other is overdue (a quarter of the acquire timeout) and
   * would still hold fewer than this one keeps (max-min fairness; on a tie, the longer-waiting
   * request wins, so two starved tenants do not pass a fresh connection back and forth). A tenant
   * with nothing queued keeps it while warm: a handover costs a new connection.
   */
  private handsOver(pool: TenantPool, other: TenantPool, own: Waiter | undefined): boolean {
    // `pool.size` no longer counts the connection being handed back.
    if (!own) return !this.isWarm(pool) || (this.overdue(other) && other.size <= pool.size);
    if (!this.overdue(other)) return false;
    return other.size < pool.size || (other.size === pool.size && (other.waiters[0] as Waiter).since < own.since);
  }

  /**
   * Its tenant asked for connections twice within `keepWarmMs`: the pool keeps the connections it
   * used within that window. (One request is no sign of another: a tenant seen once a minute would
   * hold a slot for nothing.)
   */
  private isWarm(pool: TenantPool, now = Date.now()): boolean {
    return !pool.retired && now - pool.prevAcquired < this.keepWarmMs;
  }

  private overdue(pool: TenantPool, now = Date.now()): boolean {
    return now - oldestWait(pool) >= this.o.acquireTimeoutMs / 4;
  }

  /** The budget-blocked pool that holds the fewest connections (oldest waiter first among equals). */
  private neediest(except: TenantPool | null): TenantPool | null {
    let best: TenantPool | null = null;
    for (const p of this.wanting) {
      // A tenant whose server takes no more connects right now would get nothing from a freed slot.
      if (p === except || !p.waiters.length || !this.mayConnect(p)) continue;
      if (!best || fairer(p, best)) best = p;
    }
    return best;
  }

  /**
   * Closes the least recently used idle connection of any pool. A warm pool's connections used
   * within `keepWarmMs` are spared unless the waiter is overdue.
   */
  private evictIdle(overdue: boolean): boolean {
    let victim: PooledConnection | null = null;
    const now = Date.now();
    for (const p of this.allPools()) {
      const c = p.idle[0]; // bottom of the LIFO stack: the longest idle
      if (!c || (!overdue && now - c.lastUsed < this.keepWarmMs && this.isWarm(p, now))) continue;
      if (!victim || c.lastUsed < victim.lastUsed) victim = c;
    }
    if (!victim) return false;
    const pool = victim.pool;
    pool.idle.splice(pool.idle.indexOf(victim), 1);
    void this.closeConn(victim);
    pool.history.evicted++;
    this.o.onEvict?.('idle');
    this.forgetIfEmpty(pool);
    return true;
  }

  private closeConn(conn: PooledConnection): Promise<void> {
    if (conn.closed) return Promise.resolve();
    conn.closed = true;
    this.total--;
    const ended: Promise<void> = conn.client.end().catch(() => undefined).finally(() => this.ending.delete(ended));
    this.ending.add(ended);
    return ended;
  }

  /** Closes connections idle longer than the idle timeout and forgets pools left empty. */
  private sweep(): void {
    const cutoff = Date.now() - this.o.idleTimeoutMs;
    for (const pool of [...this.pools.values()]) {
      while (pool.idle.length && (pool.idle[0] as PooledConnection).lastUsed < cutoff) void this.closeConn(pool.idle.shift() as PooledConnection);
      this.forgetIfEmpty(pool);
    }
    this.pumpWanting();
  }
}

/** When the pool's oldest waiter started waiting (Infinity with none). */
function oldestWait(pool: TenantPool): number {
  return pool.waiters[0]?.since ?? Infinity;
}

/** Whether `a` should get the next free slot before `b`: fewer connections first, then the older waiter. */
function fairer(a: TenantPool, b: TenantPool): boolean {
  if (a.size !== b.size) return a.size < b.size;
  return oldestWait(a) < oldestWait(b);
}
