import { connect as netConnect } from 'node:net';
import { Client, ClientConfig } from 'pg';
import type { SiloError } from '../common/errors';
import { BackendReaper, BackendTerminator } from './backend-terminator';
import { guardedClient } from './guarded-connection';
import { ExhaustedSnapshot, PoolAction, PoolScheduler } from './pool-scheduler';
import { runtimeErrors } from './runtime-errors';

export type { ExhaustedSnapshot } from './pool-scheduler';

/** What the pool manager needs to reach one tenant's database. */
export interface PoolTarget {
  tenantId: string;
  /** For logs and metrics (the slug). */
  label: string;
  /** The database server (`host:port`): connects to one server are capped together. */
  server: string;
  /** Host, port, database, user, secret ref, credentials revision, statement timeout: when it changes the old pool is retired. A new cap alone keeps the pool. */
  identity: string;
  /** Upper bound of this tenant's pool (also capped by the global budget). */
  max: number;
  /** Where its credentials live: a refused login drops only this tenant's cached copy. */
  secretRef: string;
  client: () => ClientConfig | Promise<ClientConfig>;
}

/** One open connection. `broken` ones are closed on release, never reused. */
export class PooledConnection {
  closed = false;
  broken = false;
  /** Its socket was destroyed while the backend may still run: counted until the server confirms it gone. */
  abandoned = false;
  /** Server-side names of the protocol-level statements the front door prepared here (oldest first); a reset empties it. */
  readonly statements = new Set<string>();
  /** A transaction-mode wire client gave it back without a reset: `clean()` resets it before a user that needs a fresh session. */
  resetPending = false;

  /** `id` is the scheduler's. */
  constructor(readonly client: Client, readonly id: number, private readonly cfg: ClientConfig, private readonly onAbandon: (c: PooledConnection) => void = destroySocket) {}

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

  /**
   * A cancel sent and not yet acted on: the server signals the backend only when it has read the
   * CancelRequest (it closes that socket then), so a release waits for it — otherwise a cancel meant
   * for this statement could land on the next user's.
   */
  cancelling: Promise<void> | null = null;

  /** Cancels whatever this connection is running (CancelRequest on a side socket: no auth needed). */
  cancel(): void {
    const { processID, secretKey } = this.client as unknown as { processID: number | null; secretKey: number | null };
    if (processID == null || secretKey == null) return;
    // One in flight at a time: another would cancel the same statement, and a client sending
    // CancelRequests in a loop must not make the runtime open a connection to the server for each.
    if (this.cancelling) return;
    const msg = Buffer.alloc(16);
    msg.writeInt32BE(16, 0);
    msg.writeInt32BE(80877102, 4);
    msg.writeInt32BE(processID, 8);
    msg.writeInt32BE(secretKey, 12);
    const s = netConnect({ host: this.cfg.host, port: this.cfg.port ?? 5432 }, () => s.end(msg));
    s.on('error', () => undefined);
    s.setTimeout(2_000, () => s.destroy());
    const sent = new Promise<void>((resolve) => s.once('close', () => resolve()));
    const all = sent.then(() => {
      if (this.cancelling === all) this.cancelling = null;
    });
    this.cancelling = all;
  }
}

/** Destroys a connection's socket (the backend is not told: it ends when it next reads or writes). */
function destroySocket(c: PooledConnection): void {
  c.broken = true;
  (c.client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
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
  /** How long a release's reset (ROLLBACK / DISCARD ALL) may take before the connection is abandoned (default 5 s). */
  resetTimeoutMs?: number;
  /** How long close() waits for abandoned backends to be confirmed gone (default 5 s). */
  terminateTimeoutMs?: number;
  /** Maps a failed connect to the client's error; also where credentials get dropped. */
  onConnectError: (err: unknown, target: PoolTarget) => SiloError;
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


interface Waiter {
  resolve: (c: PooledConnection) => void;
  reject: (e: SiloError) => void;
  timer: NodeJS.Timeout;
}

/**
 * The I/O shell around the pool scheduler (`pool-scheduler.ts`, where the policy lives): opens and
 * closes `pg` connections, runs the timers (one per waiter, the idle sweep, the scheduler's wake-up),
 * resolves and rejects requests, and has abandoned backends terminated. Every decision — who gets a
 * connection, what to open, evict or hand over — is the scheduler's; this class only carries out
 * the actions it returns and tells it what happened.
 */
export class PoolManager {
  private readonly core: PoolScheduler<PoolTarget>;
  /** Connected connections by scheduler id. */
  private readonly conns = new Map<number, PooledConnection>();
  private readonly waiters = new Map<number, Waiter>();
  private nextWaiter = 1;
  private readonly sweeper: NodeJS.Timeout;
  private wake: { at: number; timer: NodeJS.Timeout } | null = null;
  /** Connections whose goodbye (Terminate) is still under way: close() waits for them. */
  private readonly ending = new Set<Promise<void>>();
  /** Abandoned backends not yet confirmed gone: close() waits for them. */
  private readonly reaping = new Set<Promise<void>>();
  private readonly reaper: BackendReaper | null;

  constructor(private readonly o: PoolManagerOptions) {
    this.core = new PoolScheduler<PoolTarget>({
      budget: o.budget, acquireTimeoutMs: o.acquireTimeoutMs, idleTimeoutMs: o.idleTimeoutMs,
      keepWarmMs: o.keepWarmMs ?? 1_000, maxConnectingPerServer: o.maxConnectingPerServer ?? 2, connectEstimateMs: o.connectEstimateMs ?? 25,
    });
    this.sweeper = setInterval(() => this.run(this.core.sweep(Date.now())), Math.min(1_000, o.idleTimeoutMs));
    this.sweeper.unref();
    this.reaper = o.terminator ? new BackendReaper(o.terminator, { onError: o.onTerminateError }) : null;
  }

  /** Abandoned backends still counted because the server has not confirmed they exited. */
  get terminatingCount(): number {
    return this.core.terminatingCount;
  }

  /** Open (and opening) connections across every tenant: never above the budget. */
  get connections(): number {
    return this.core.connections;
  }

  /** Connects in flight, across servers (capped per server by `maxConnectingPerServer`). */
  get connectsInFlight(): number {
    return this.core.connectsInFlight;
  }

  /** Connections opened since start (each one a new server backend). */
  get connectsStarted(): number {
    return this.core.connectsStarted;
  }

  get poolCount(): number {
    return this.core.poolCount;
  }

  stats(): ReturnType<PoolScheduler<PoolTarget>['stats']> {
    return this.core.stats();
  }

  has(tenantId: string): boolean {
    return this.core.has(tenantId);
  }

  acquire(target: PoolTarget, timeoutMs = this.o.acquireTimeoutMs): Promise<PooledConnection> {
    if (this.core.closing) return Promise.reject(runtimeErrors.draining());
    return new Promise<PooledConnection>((resolve, reject) => {
      const id = this.nextWaiter++;
      const timer = setTimeout(() => this.run(this.core.expire(Date.now(), id)), timeoutMs);
      this.waiters.set(id, { resolve, reject, timer });
      this.run(this.core.acquire(Date.now(), target, id, timeoutMs));
    });
  }

  /**
   * Returns a connection. `reset` runs first (ROLLBACK / DISCARD ALL), so no session or
   * transaction state reaches the next request; a failed reset or `destroy` closes the connection.
   */
  release(conn: PooledConnection, opts: { destroy?: boolean; reset?: string[] | null } = {}): void {
    if (!this.core.isLeased(conn.id)) return;
    if (conn.cancelling && !opts.destroy) {
      // Still leased until the server has read the cancel (see PooledConnection.cancelling).
      void conn.cancelling.then(() => this.release(conn, opts));
      return;
    }
    let done = false;
    const back = (reusable: boolean) => {
      if (done) return;
      done = true;
      this.run(this.core.release(Date.now(), conn.id, reusable && !conn.broken && !conn.closed && !conn.abandoned));
    };
    if (opts.destroy || conn.broken || conn.closed || conn.abandoned || !opts.reset?.length) return back(!opts.destroy);
    // DISCARD ALL deallocates every statement; the session state is known again.
    conn.statements.clear();
    conn.resetPending = false;
    // A reset that never answers (a backend still busy or mid-protocol) must not hold the slot for
    // ever: past the deadline the connection is abandoned (terminated, counted until gone).
    const deadline = setTimeout(() => {
      conn.abandon();
      back(false);
    }, this.o.resetTimeoutMs ?? 5_000);
    deadline.unref();
    opts.reset
      .reduce<Promise<unknown>>((p, sql) => p.then(() => conn.client.query(sql)), Promise.resolve())
      .then(() => back(true), () => back(false))
      .finally(() => clearTimeout(deadline));
  }

  /**
   * Resets a connection a transaction-mode wire client gave back without one (its transactions
   * looked free of session state): for the HTTP API and session mode, which promise a fresh session.
   */
  async clean(conn: PooledConnection): Promise<void> {
    if (!conn.resetPending) return;
    conn.statements.clear();
    await conn.client.query('DISCARD ALL');
    conn.resetPending = false;
  }

  /** Stops handing out this tenant's current connections (credentials rotated, tenant suspended...). */
  retire(tenantId: string): void {
    this.run(this.core.retire(Date.now(), tenantId));
  }

  /** Drains: refuses new acquires, waits up to `timeoutMs` for leases to come back, then closes everything. */
  async close(timeoutMs = 5_000): Promise<void> {
    clearInterval(this.sweeper);
    this.run(this.core.drain(Date.now()));
    const deadline = Date.now() + timeoutMs;
    while (this.core.connections > this.core.terminatingCount && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.run(this.core.closeIdle());
    // Requests still running past the deadline: their statements may run on after the socket
    // closes, so they are terminated, not just disconnected (closing a pg Client with a query
    // active only destroys its socket).
    for (const c of [...this.conns.values()]) if (this.core.isLeased(c.id)) c.abandon();
    if (this.wake) clearTimeout(this.wake.timer);
    // Until every backend has said goodbye: a drained replica leaves no session behind on the server.
    const giveUp = new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now()) + 1_000).unref());
    await Promise.race([Promise.all([...this.ending]), giveUp]);
    if (this.reaper) {
      const reapGiveUp = new Promise<void>((r) => setTimeout(r, this.o.terminateTimeoutMs ?? 5_000).unref());
      await Promise.race([Promise.all([...this.reaping]), reapGiveUp]);
      this.reaper.stop();
    }
  }

  /** Carries out the scheduler's actions. `connectError` is the error of the connect that just failed. */
  private run(actions: PoolAction<PoolTarget>[], connectError?: SiloError): void {
    for (const a of actions) {
      if (a.kind === 'open') void this.connect(a.conn, a.target);
      else if (a.kind === 'give') {
        const w = this.settle(a.waiter);
        const conn = this.conns.get(a.conn);
        if (!w || !conn) continue;
        this.o.onAcquired?.(a.waitedMs, a.via);
        w.resolve(conn);
      } else if (a.kind === 'fail') {
        const w = this.settle(a.waiter);
        if (!w) continue;
        if (a.cause === 'connect' && connectError) {
          w.reject(connectError);
          continue;
        }
        try {
          this.o.onExhausted?.(a.snapshot);
        } catch {
          // A reporting hook must never leave the request without its answer.
        }
        w.reject(runtimeErrors.poolExhausted(a.limit));
      } else if (a.kind === 'close') {
        const conn = this.conns.get(a.conn);
        this.conns.delete(a.conn);
        if (conn) void this.closeConn(conn);
        if (a.reason === 'evicted') this.o.onEvict?.('idle');
        else if (a.reason === 'handover') this.o.onEvict?.('handover');
      } else {
        const conn = this.conns.get(a.conn);
        this.conns.delete(a.conn);
        if (conn) {
          conn.closed = true;
          void conn.client.end().catch(() => undefined); // the socket is gone already: this only settles the client
        }
      }
    }
    this.armWake();
  }

  private settle(id: number): Waiter | undefined {
    const w = this.waiters.get(id);
    if (!w) return undefined;
    this.waiters.delete(id);
    clearTimeout(w.timer);
    return w;
  }

  /** The scheduler's wake-up: when a waiting claim becomes overdue or a warm connection's protection lapses. */
  private armWake(): void {
    if (this.core.closing) return;
    const now = Date.now();
    const at = this.core.wakeAt(now);
    if (at === null || (this.wake && this.wake.at <= at)) return;
    if (this.wake) clearTimeout(this.wake.timer);
    const timer = setTimeout(() => {
      this.wake = null;
      this.run(this.core.retry(Date.now()));
    }, Math.max(0, at - now));
    timer.unref();
    this.wake = { at, timer };
  }

  private async connect(id: number, target: PoolTarget): Promise<void> {
    const started = Date.now();
    let client: Client | null = null;
    let cfg: ClientConfig;
    try {
      // Credentials are only needed here: warm requests never touch the secret store or its cache.
      cfg = await target.client();
      client = guardedClient(cfg);
      await client.connect();
    } catch (err) {
      client?.end().catch(() => undefined);
      const e = this.o.onConnectError(err, target);
      this.run(this.core.connectFailed(Date.now(), id), e);
      return;
    }
    const took = Date.now() - started;
    this.o.onConnect?.(took);
    const conn = new PooledConnection(client, id, cfg, (c) => this.abandon(c));
    this.conns.set(id, conn);
    client.on('error', () => {
      // An idle connection that died (server restart, terminate) is forgotten; a busy one fails its query and is dropped on release.
      conn.broken = true;
      this.run(this.core.lost(Date.now(), id));
    });
    this.run(this.core.connected(Date.now(), id, took));
  }

  /** See PooledConnection.abandon(). */
  private abandon(conn: PooledConnection): void {
    if (conn.closed || conn.abandoned) return;
    const pid = conn.pid;
    destroySocket(conn);
    if (!this.reaper || pid === null) {
      // Nothing can confirm the backend's end: dropped as before (a leased one on release).
      this.run(this.core.lost(Date.now(), conn.id));
      return;
    }
    conn.abandoned = true;
    this.run(this.core.abandon(Date.now(), conn.id));
    const since = Date.now();
    const { host, port, role } = conn.backend;
    const done: Promise<void> = this.reaper.watch({ host, port, pid, role }).then(() => {
      this.reaping.delete(done);
      this.o.onTerminated?.(Date.now() - since);
      this.run(this.core.reaped(Date.now(), conn.id));
    });
    this.reaping.add(done);
  }

  private closeConn(conn: PooledConnection): Promise<void> {
    if (conn.closed) return Promise.resolve();
    conn.closed = true;
    const ended: Promise<void> = conn.client.end().catch(() => undefined).finally(() => this.ending.delete(ended));
    this.ending.add(ended);
    return ended;
  }
}
