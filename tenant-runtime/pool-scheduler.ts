/**
 * The pool scheduler: every decision about the runtime's tenant connections, and nothing else. No
 * I/O, no timers, no clock: each call takes `now` (ms) and returns the actions the shell
 * (`pool-manager.ts`) must carry out — open a connection, give one to a waiter, fail a waiter, close
 * one, free a terminated one. The shell reports back what happened (connected, failed, released...).
 *
 * Policy — one rule decides every hand-out, on every path:
 *
 * - Terms. A pool is one tenant's connections; its size counts idle, busy, opening and terminating
 *   (abandoned, still on the server) connections. A *claim* is a pool's oldest waiter not yet covered
 *   by a connect in flight. A claim is *overdue* once it has waited a quarter of the acquire timeout.
 *   A pool is *warm* while its last two acquires were within `keepWarmMs`.
 * - Limits. A pool's size stays within its tenant's cap; all sizes together within the budget;
 *   connects in flight to one database server within `maxConnectingPerServer`. A claim with less time
 *   left than a connect takes (moving average) is failed at once instead of started.
 * - Rank. Claims are served in one order: overdue claims first, oldest first (this bounds every
 *   wait: a stream of newer tenants cannot pass an overdue one); then the others, fewest connections
 *   first, older first (max-min fair while nobody is starving).
 * - Idle first: a pool's own idle connection (most recently used first) goes to its request at once.
 * - Free capacity (room in the budget and a connect slot on the claim's server) goes to claims in
 *   rank order, as a new connection.
 * - With the budget full, a claim may take a slot from another pool — by closing that pool's least
 *   recently used idle connection, or a connection it is releasing — only if the claim may *take*
 *   from that pool:
 *   - the pool has nothing queued: it is not warm (or the idle connection was not used within
 *     `keepWarmMs`), or the claim is overdue;
 *   - the pool has requests queued: the claim is overdue and its pool would still hold fewer
 *     connections than the other keeps (on a tie, the older wait wins).
 *   A hand-over costs a new connection, and opening connections is what a busy server runs out of
 *   first: a busy tenant keeps what it uses until someone is overdue and poorer.
 * - A connection opened for a claim goes to that pool's oldest waiter: the open was the arbitration.
 * - A freed slot goes to the claim it was freed for before anyone else is considered.
 */

export interface SchedulerTarget {
  tenantId: string;
  /** For diagnostics (the slug). */
  label: string;
  /** The database server (`host:port`): connects to one server are capped together. */
  server: string;
  /** Everything a connection depends on: a new identity retires the tenant's old pool. */
  identity: string;
  /** The tenant's cap (also bounded by the budget). */
  max: number;
}

export interface SchedulerOptions {
  budget: number;
  acquireTimeoutMs: number;
  idleTimeoutMs: number;
  keepWarmMs: number;
  maxConnectingPerServer: number;
  /** Connect time assumed until connects have been measured. */
  connectEstimateMs: number;
}

export type Via = 'idle' | 'release' | 'connect';
export type CloseReason = 'idle-timeout' | 'evicted' | 'handover' | 'retired' | 'broken';

export type PoolAction<T> =
  | { kind: 'open'; conn: number; target: T }
  | { kind: 'give'; conn: number; waiter: number; via: Via; waitedMs: number }
  /** `connect`: the connect made for it failed (the shell has the error); `exhausted`: no connection in time. */
  | { kind: 'fail'; waiter: number; cause: 'exhausted' | 'connect'; limit: 'tenant' | 'replica'; snapshot: () => ExhaustedSnapshot }
  | { kind: 'close'; conn: number; reason: CloseReason }
  /** An abandoned connection whose backend the server confirmed gone: its slot is free, settle the client. */
  | { kind: 'free'; conn: number };

export interface ExhaustedSnapshot {
  tenant: string;
  limit: 'tenant' | 'replica';
  waitedMs: number;
  pool: { size: number; max: number; idle: number; busy: number; opening: number; waiting: number; warm: boolean } & Pool<SchedulerTarget>['history'];
  replica: { connections: number; budget: number; idle: number; protectedIdle: number; connecting: number; wantingPools: number; pools: number };
}

interface Waiter<T extends SchedulerTarget> {
  id: number;
  pool: Pool<T>;
  since: number;
  deadline: number;
}

interface Conn<T extends SchedulerTarget> {
  id: number;
  pool: Pool<T>;
  lastUsed: number;
  leased: boolean;
  /** Socket gone, backend being terminated: counted until `reaped`. */
  abandoned: boolean;
  reaped: boolean;
}

class Pool<T extends SchedulerTarget> {
  /** LIFO: hot connections stay hot, cold ones age out from the bottom. */
  readonly idle: Conn<T>[] = [];
  readonly waiters: Waiter<T>[] = [];
  busy = 0;
  opening = 0;
  retired = false;
  lastAcquired = -Infinity;
  prevAcquired = -Infinity;
  readonly history = { connects: 0, handedOver: 0, evicted: 0, waitersServed: 0 };

  /** `terminating` is shared by every pool of the tenant: a retired pool's backends still count against its cap. */
  constructor(public target: T, readonly terminating: Set<Conn<T>>) {}

  get size(): number {
    return this.idle.length + this.busy + this.opening + this.terminating.size;
  }

  /** The claim: the oldest waiter no connect in flight is covering. */
  get claim(): Waiter<T> | undefined {
    return this.waiters[this.opening];
  }
}

export class PoolScheduler<T extends SchedulerTarget> {
  private readonly pools = new Map<string, Pool<T>>();
  /** Pools with a claim they cannot serve themselves (waiting on budget or a connect slot). */
  private readonly wanting = new Set<Pool<T>>();
  private readonly conns = new Map<number, Conn<T>>();
  private readonly waiters = new Map<number, Waiter<T>>();
  private readonly terminating = new Map<string, Set<Conn<T>>>();
  private readonly connecting = new Map<string, number>();
  private total = 0;
  private nextConn = 1;
  private connectMs: number;
  private out: PoolAction<T>[] = [];
  private started = 0;
  closing = false;

  constructor(private readonly o: SchedulerOptions) {
    this.connectMs = o.connectEstimateMs;
  }

  // ---- events ------------------------------------------------------------------------------

  /** A request wants a connection of `target`'s tenant; `waiter` is the shell's id for it. */
  acquire(now: number, target: T, waiter: number, timeoutMs = this.o.acquireTimeoutMs): PoolAction<T>[] {
    const pool = this.poolFor(now, target);
    pool.prevAcquired = pool.lastAcquired;
    pool.lastAcquired = now;
    const w: Waiter<T> = { id: waiter, pool, since: now, deadline: now + timeoutMs };
    const idle = pool.idle.pop();
    if (idle) {
      this.give(now, idle, w, 'idle');
      return this.flush();
    }
    this.waiters.set(waiter, w);
    pool.waiters.push(w);
    if (this.wanting.size === 0) {
      this.serve(now, pool);
      this.updateWanting(pool);
    } else {
      this.updateWanting(pool);
      this.serveAll(now);
    }
    return this.flush();
  }

  /** The waiter's own timeout fired (the shell runs one timer per waiter). */
  expire(now: number, waiter: number): PoolAction<T>[] {
    const w = this.waiters.get(waiter);
    if (w) {
      this.dropWaiter(w);
      this.fail(now, w, 'exhausted');
      // One fewer waiter may uncover the next one behind a connect in flight.
      this.updateWanting(w.pool);
    }
    return this.flush();
  }

  /** A leased connection came back; `reusable` is false when it is broken or its reset failed. */
  release(now: number, connId: number, reusable: boolean): PoolAction<T>[] {
    const c = this.conns.get(connId);
    if (!c || !c.leased) return this.flush();
    c.leased = false;
    if (c.abandoned) {
      c.pool.busy--;
      if (c.reaped) this.free(now, c);
      else c.pool.terminating.add(c);
    } else if (!reusable) {
      c.pool.busy--;
      this.close(c, 'broken');
      this.afterClose(now, c.pool);
    } else {
      this.returned(now, c, 'release');
    }
    return this.flush();
  }

  /** A connect started by an `open` action completed. */
  connected(now: number, connId: number, tookMs: number): PoolAction<T>[] {
    const c = this.conns.get(connId);
    if (!c) return this.flush();
    this.connectDone(c.pool);
    c.pool.opening--;
    this.connectMs += (tookMs - this.connectMs) / 8;
    c.pool.busy++; // counted busy until placed
    this.returned(now, c, 'connect');
    this.serveAll(now); // a connect slot on this server is free for the next claim
    return this.flush();
  }

  /** A connect started by an `open` action failed: one waiter gets the error (a broken database fails requests fast). */
  connectFailed(now: number, connId: number): PoolAction<T>[] {
    const c = this.conns.get(connId);
    if (!c) return this.flush();
    this.conns.delete(connId);
    this.connectDone(c.pool);
    c.pool.opening--;
    this.total--;
    const w = c.pool.waiters[0];
    if (w) {
      this.dropWaiter(w);
      this.fail(now, w, 'connect');
    }
    this.afterClose(now, c.pool);
    return this.flush();
  }

  /** An idle connection died (server restart, terminated): forgotten. A leased one is released as not reusable. */
  lost(now: number, connId: number): PoolAction<T>[] {
    const c = this.conns.get(connId);
    const at = c ? c.pool.idle.indexOf(c) : -1;
    if (c && at !== -1) {
      c.pool.idle.splice(at, 1);
      this.close(c, 'broken');
      this.afterClose(now, c.pool);
    }
    return this.flush();
  }

  /** The shell destroyed the connection's socket and is having its backend terminated: counted until `reaped`. */
  abandon(now: number, connId: number): PoolAction<T>[] {
    const c = this.conns.get(connId);
    if (!c || c.abandoned) return this.flush();
    c.abandoned = true;
    const at = c.pool.idle.indexOf(c);
    if (at !== -1) {
      c.pool.idle.splice(at, 1);
      c.pool.terminating.add(c);
    }
    return this.flush();
  }

  /** The server confirmed an abandoned connection's backend has exited. */
  reaped(now: number, connId: number): PoolAction<T>[] {
    const c = this.conns.get(connId);
    if (!c) return this.flush();
    c.reaped = true;
    if (c.pool.terminating.delete(c)) this.free(now, c); // still leased: release() frees the slot
    return this.flush();
  }

  /** Stops handing out this tenant's current connections (credentials rotated, suspended...). */
  retire(now: number, tenantId: string): PoolAction<T>[] {
    const pool = this.pools.get(tenantId);
    if (pool) this.retirePool(now, pool);
    return this.flush();
  }

  /** Closes connections idle longer than the idle timeout; also the moment to look at the queue again. */
  sweep(now: number): PoolAction<T>[] {
    const cutoff = now - this.o.idleTimeoutMs;
    for (const pool of [...this.pools.values()]) {
      while (pool.idle.length && (pool.idle[0] as Conn<T>).lastUsed < cutoff) this.close(pool.idle.shift() as Conn<T>, 'idle-timeout');
      this.forgetIfEmpty(pool);
    }
    this.serveAll(now);
    return this.flush();
  }

  /** Serves the queue again (a warm connection's protection or a claim's patience ran out: see `wakeAt`). */
  retry(now: number): PoolAction<T>[] {
    this.serveAll(now);
    return this.flush();
  }

  /** Draining: no new acquires (the shell refuses them), every pool retired. */
  drain(now: number): PoolAction<T>[] {
    this.closing = true;
    for (const pool of [...this.pools.values()]) this.retirePool(now, pool);
    return this.flush();
  }

  /** Closes whatever is still idle (the drain deadline passed). */
  closeIdle(): PoolAction<T>[] {
    for (const p of this.allPools()) for (const c of p.idle.splice(0)) this.close(c, 'retired');
    return this.flush();
  }

  // ---- what the shell may ask -----------------------------------------------------------------

  /**
   * When the queue should be looked at again though nothing happens: the next moment a waiting claim
   * becomes overdue (it may then take from others), or a warm connection's protection lapses. Null
   * when nothing waits on the budget.
   */
  wakeAt(now: number): number | null {
    if (!this.wanting.size) return null;
    let at = now + this.o.keepWarmMs + 1;
    for (const p of this.wanting) {
      const due = (p.claim?.since ?? Infinity) + this.overdueMs;
      if (due > now && due < at) at = due;
    }
    return at;
  }

  get connections(): number {
    return this.total;
  }

  get connectsInFlight(): number {
    let n = 0;
    for (const v of this.connecting.values()) n += v;
    return n;
  }

  get connectsStarted(): number {
    return this.started;
  }

  get poolCount(): number {
    return this.pools.size;
  }

  /** Abandoned backends still counted because the server has not confirmed they exited. */
  get terminatingCount(): number {
    let n = 0;
    for (const set of this.terminating.values()) n += set.size;
    for (const c of this.conns.values()) if (c.leased && c.abandoned && !c.reaped) n++;
    return n;
  }

  has(tenantId: string): boolean {
    return this.pools.has(tenantId);
  }

  /** Whether the connection is leased (handed out and not yet released). */
  isLeased(connId: number): boolean {
    return this.conns.get(connId)?.leased ?? false;
  }

  stats(): Array<{ tenantId: string; label: string; idle: number; busy: number; opening: number; terminating: number; waiting: number; connects: number }> {
    return [...this.pools.values()].map((p) => ({ tenantId: p.target.tenantId, label: p.target.label, idle: p.idle.length, busy: p.busy, opening: p.opening, terminating: p.terminating.size, waiting: p.waiters.length, connects: p.history.connects }));
  }

  // ---- the policy -------------------------------------------------------------------------------

  private get overdueMs(): number {
    return this.o.acquireTimeoutMs / 4;
  }

  private overdue(pool: Pool<T>, now: number): boolean {
    const w = pool.claim;
    return !!w && now - w.since >= this.overdueMs;
  }

  private isWarm(pool: Pool<T>, now: number): boolean {
    return !pool.retired && now - pool.prevAcquired < this.o.keepWarmMs;
  }

  /** Rank: whether `a`'s claim is served before `b`'s (see the header). `due` caches overdue(). */
  private before(a: Pool<T>, b: Pool<T>, due: (p: Pool<T>) => boolean): boolean {
    const da = due(a);
    const db = due(b);
    const wa = a.claim?.since ?? Infinity;
    const wb = b.claim?.since ?? Infinity;
    if (da !== db) return da;
    if (da) return wa < wb;
    if (a.size !== b.size) return a.size < b.size;
    return wa < wb;
  }

  /**
   * Whether `claimant` may take a slot from `from` (see the header). `own` is `from`'s oldest
   * waiter, if any; `lastUsed` is that of the idle connection it would lose (none: a release).
   */
  private mayTake(now: number, claimant: Pool<T>, from: Pool<T>, own: Waiter<T> | undefined, lastUsed: number = now): boolean {
    const claimantOverdue = this.overdue(claimant, now);
    if (!own) return claimantOverdue || !this.isWarm(from, now) || now - lastUsed >= this.o.keepWarmMs;
    if (!claimantOverdue) return false;
    // `from.size` no longer counts the connection in question.
    return claimant.size < from.size || (claimant.size === from.size && (claimant.claim as Waiter<T>).since < own.since);
  }

  private ranked(now: number): Pool<T>[] {
    const due = new Map([...this.wanting].map((p) => [p, this.overdue(p, now)]));
    const isDue = (p: Pool<T>) => due.get(p) ?? false;
    return [...this.wanting].sort((a, b) => (this.before(a, b, isDue) ? -1 : this.before(b, a, isDue) ? 1 : 0));
  }

  /** Free capacity to claims in rank order. */
  private serveAll(now: number): void {
    if (!this.wanting.size) return;
    for (const p of this.ranked(now)) {
      const outcome = this.serve(now, p);
      this.updateWanting(p);
      // Nobody ranked lower could take a slot this one could not (overdue claims come first).
      if (outcome === 'budget') break;
    }
  }

  /** Serves one pool's claims with new connections while its cap, its server and the budget allow. */
  private serve(now: number, pool: Pool<T>): 'served' | 'capped' | 'server' | 'budget' {
    while (pool.claim) {
      if (this.failHopeless(now, pool)) continue;
      if (pool.size >= Math.min(pool.target.max, this.o.budget)) return 'capped';
      if (!this.mayConnect(pool)) return 'server';
      if (this.total >= this.o.budget && !this.evictFor(now, pool)) return 'budget';
      this.open(pool);
    }
    return 'served';
  }

  /** A connection is free again (released, or just opened): where it goes. */
  private returned(now: number, c: Conn<T>, via: 'release' | 'connect'): void {
    const pool = c.pool;
    pool.busy--;
    c.lastUsed = now;
    const own = pool.waiters[0];
    if (via === 'connect' && own) return this.give(now, c, this.takeWaiter(own), via);
    const taker = this.total >= this.o.budget ? this.taker(now, pool, own) : null;
    if (taker) {
      this.close(c, 'handover');
      pool.history.handedOver++;
      // The slot goes to the claim it was freed for: the rank could hand it back to this pool.
      this.serve(now, taker);
      this.updateWanting(taker);
      this.afterClose(now, pool);
      return;
    }
    if (own) return this.give(now, c, this.takeWaiter(own), via);
    if (pool.retired || this.closing) {
      this.close(c, 'retired');
      this.afterClose(now, pool);
      return;
    }
    pool.idle.push(c);
  }

  /** The best-ranked claim of another pool that may take the connection `pool` is releasing. */
  private taker(now: number, pool: Pool<T>, own: Waiter<T> | undefined): Pool<T> | null {
    let best: Pool<T> | null = null;
    const due = (p: Pool<T>) => this.overdue(p, now);
    for (const p of this.wanting) {
      if (p === pool || !p.claim || !this.mayConnect(p) || !this.mayTake(now, p, pool, own)) continue;
      if (!best || this.before(p, best, due)) best = p;
    }
    return best;
  }

  /** Frees a budget slot for `claimant`: closes the least recently used idle connection it may take. */
  private evictFor(now: number, claimant: Pool<T>): boolean {
    let victim: Conn<T> | null = null;
    for (const p of this.allPools()) {
      const c = p.idle[0]; // bottom of the stack: the longest idle
      if (!c || p === claimant || !this.mayTake(now, claimant, p, undefined, c.lastUsed)) continue;
      if (!victim || c.lastUsed < victim.lastUsed) victim = c;
    }
    if (!victim) return false;
    const pool = victim.pool;
    pool.idle.splice(pool.idle.indexOf(victim), 1);
    this.close(victim, 'evicted');
    pool.history.evicted++;
    this.forgetIfEmpty(pool);
    return true;
  }

  /** Fails the claim now if it has less time left than a connect takes: a late connect only takes server time. */
  private failHopeless(now: number, pool: Pool<T>): boolean {
    const w = pool.claim;
    if (!w || w.deadline - now >= this.connectMs) return false;
    this.dropWaiter(w);
    this.fail(now, w, 'exhausted');
    return true;
  }

  // ---- bookkeeping ---------------------------------------------------------------------------------

  private poolFor(now: number, target: T): Pool<T> {
    const current = this.pools.get(target.tenantId);
    if (current && current.target.identity === target.identity) {
      current.target = target; // same connections; the cap may have changed (a new tier)
      return current;
    }
    const pool = new Pool(target, this.terminatingFor(target.tenantId));
    this.pools.set(target.tenantId, pool);
    if (current) {
      // Waiters move over: they want "this tenant", not those credentials.
      for (const w of current.waiters) w.pool = pool;
      pool.waiters.push(...current.waiters.splice(0));
      this.wanting.delete(current);
      this.retirePool(now, current, false); // the caller serves the queue once the new pool is in it
    }
    return pool;
  }

  private retirePool(now: number, pool: Pool<T>, serveQueue = true): void {
    pool.retired = true;
    if (this.pools.get(pool.target.tenantId) === pool) {
      this.pools.delete(pool.target.tenantId);
      if (!pool.terminating.size) this.terminating.delete(pool.target.tenantId);
    }
    for (const c of pool.idle.splice(0)) this.close(c, 'retired');
    this.updateWanting(pool);
    if (serveQueue) this.serveAll(now);
  }

  private terminatingFor(tenantId: string): Set<Conn<T>> {
    let set = this.terminating.get(tenantId);
    if (!set) {
      set = new Set();
      this.terminating.set(tenantId, set);
    }
    return set;
  }

  private *allPools(): Iterable<Pool<T>> {
    const seen = new Set<Pool<T>>(this.pools.values());
    for (const p of this.wanting) seen.add(p);
    yield* seen;
  }

  private updateWanting(pool: Pool<T>): void {
    // A retired pool's waiters are still served (with fresh credentials: the shell re-reads them per connect).
    if (pool.claim && pool.size < pool.target.max) this.wanting.add(pool);
    else this.wanting.delete(pool);
  }

  private mayConnect(pool: Pool<T>): boolean {
    return (this.connecting.get(pool.target.server) ?? 0) < this.o.maxConnectingPerServer;
  }

  private open(pool: Pool<T>): void {
    const c: Conn<T> = { id: this.nextConn++, pool, lastUsed: 0, leased: false, abandoned: false, reaped: false };
    this.conns.set(c.id, c);
    this.total++;
    pool.opening++;
    pool.history.connects++;
    this.started++;
    const server = pool.target.server;
    this.connecting.set(server, (this.connecting.get(server) ?? 0) + 1);
    this.out.push({ kind: 'open', conn: c.id, target: pool.target });
  }

  private connectDone(pool: Pool<T>): void {
    const server = pool.target.server;
    const n = (this.connecting.get(server) ?? 1) - 1;
    if (n > 0) this.connecting.set(server, n);
    else this.connecting.delete(server);
  }

  private takeWaiter(w: Waiter<T>): Waiter<T> {
    this.dropWaiter(w);
    return w;
  }

  private dropWaiter(w: Waiter<T>): void {
    this.waiters.delete(w.id);
    const at = w.pool.waiters.indexOf(w);
    if (at !== -1) w.pool.waiters.splice(at, 1);
    if (!w.pool.waiters.length) this.wanting.delete(w.pool);
  }

  private give(now: number, c: Conn<T>, w: Waiter<T>, via: Via): void {
    c.pool.busy++;
    c.leased = true;
    c.lastUsed = now;
    c.pool.history.waitersServed++;
    this.out.push({ kind: 'give', conn: c.id, waiter: w.id, via, waitedMs: now - w.since });
  }

  private fail(now: number, w: Waiter<T>, cause: 'exhausted' | 'connect'): void {
    const pool = w.pool;
    const limit = pool.size >= pool.target.max ? 'tenant' : 'replica';
    const waitedMs = now - w.since;
    this.out.push({ kind: 'fail', waiter: w.id, cause, limit, snapshot: () => this.snapshot(now, pool, limit, waitedMs) });
  }

  private close(c: Conn<T>, reason: CloseReason): void {
    if (!this.conns.delete(c.id)) return;
    this.total--;
    this.out.push({ kind: 'close', conn: c.id, reason });
  }

  private free(now: number, c: Conn<T>): void {
    if (!this.conns.delete(c.id)) return;
    this.total--;
    const tenantId = c.pool.target.tenantId;
    if (!this.terminating.get(tenantId)?.size && !this.pools.has(tenantId)) this.terminating.delete(tenantId);
    this.out.push({ kind: 'free', conn: c.id });
    this.afterClose(now, this.pools.get(tenantId) ?? c.pool);
  }

  /** A slot was freed: the queue first (the slot may be someone's), then this pool, then forget it if empty. */
  private afterClose(now: number, pool: Pool<T>): void {
    this.serveAll(now);
    if (pool.claim) {
      this.serve(now, pool);
      this.updateWanting(pool);
    }
    this.forgetIfEmpty(pool);
  }

  private forgetIfEmpty(pool: Pool<T>): void {
    if (pool.size === 0 && !pool.waiters.length && this.pools.get(pool.target.tenantId) === pool) {
      this.pools.delete(pool.target.tenantId);
      if (!this.terminating.get(pool.target.tenantId)?.size) this.terminating.delete(pool.target.tenantId);
    }
  }

  private snapshot(now: number, pool: Pool<T>, limit: 'tenant' | 'replica', waitedMs: number): ExhaustedSnapshot {
    let idle = 0;
    let protectedIdle = 0;
    for (const p of this.allPools()) {
      idle += p.idle.length;
      if (this.isWarm(p, now)) protectedIdle += p.idle.filter((c) => now - c.lastUsed < this.o.keepWarmMs).length;
    }
    return {
      tenant: pool.target.label, limit, waitedMs,
      pool: { size: pool.size, max: pool.target.max, idle: pool.idle.length, busy: pool.busy, opening: pool.opening, waiting: pool.waiters.length, warm: this.isWarm(pool, now), ...pool.history },
      replica: { connections: this.total, budget: this.o.budget, idle, protectedIdle, connecting: this.connectsInFlight, wantingPools: this.wanting.size, pools: this.pools.size },
    };
  }

  private flush(): PoolAction<T>[] {
    const out = this.out;
    this.out = [];
    return out;
  }
}
