import type { PoolClient, QueryResult } from 'pg';
import { DataSource, EntityManager } from 'typeorm';

/**
 * A transaction whose statements can share round trips (node-postgres pipeline mode, pg >= 8.21).
 *
 * `query` writes a statement to the wire at once, without waiting for the ones before it; the server
 * still runs them in order, one after another, each with its own snapshot. `defer` is for writes
 * whose result nobody reads before commit (an audit row, an outcome): they are held in the process and
 * written, in order, just before the next statement that is sent (a `query`, a TypeORM call through
 * `manager`, `flush` or the COMMIT), so they cost no round trip of their own; their failure fails the
 * commit. Reads through `manager` (TypeORM) work as in any transaction and come after every statement
 * issued before them.
 *
 * Ordering rule: a statement that must not be overtaken goes through `query`/`defer` (enqueued on the
 * connection synchronously), never through a TypeORM call left un-awaited (TypeORM reaches the
 * connection a few microtasks later).
 *
 * A deferred write is not on the wire until the next statement: whatever the caller does outside the
 * database meanwhile (the webhook path's directory write) happens before the server has seen it.
 */
export interface PipelinedTx {
  readonly manager: EntityManager;
  /** Sends now (after any held deferred writes); resolves with the rows when the server has answered this statement. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Held until the next statement is sent; nobody waits for it. Its failure fails `flush` and the commit. */
  defer(sql: string, params?: unknown[], onRows?: (rows: Record<string, unknown>[]) => void): void;
  /** Sends the held deferred writes and waits for every one; throws the first failure. */
  flush(): Promise<void>;
}

const open = new WeakMap<EntityManager, PipelinedTx>();

/** The pipelined transaction `m` belongs to, if any. */
export function pipelinedTxOf(m: EntityManager): PipelinedTx | undefined {
  return open.get(m);
}

/** Sends now inside a pipelined transaction (call it before any await, so order is kept); else a plain query. */
export function send<R = Record<string, unknown>>(m: EntityManager, sql: string, params: unknown[] = []): Promise<R[]> {
  const tx = open.get(m);
  return tx ? tx.query<R>(sql, params) : (m.query(sql, params) as Promise<R[]>);
}

/** A write whose result the caller does not need: deferred inside a pipelined transaction, else run now. */
export async function write(m: EntityManager, sql: string, params: unknown[] = [], onRows?: (rows: Record<string, unknown>[]) => void): Promise<void> {
  const tx = open.get(m);
  if (tx) {
    tx.defer(sql, params, onRows);
    return;
  }
  const rows = (await m.query(sql, params)) as Record<string, unknown>[];
  onRows?.(rows);
}

/**
 * Runs `fn` in a transaction whose BEGIN and COMMIT share round trips with its statements. Commits
 * when `fn` resolves (after its deferred writes succeeded), rolls back when it or any deferred write
 * fails (deferred writes still held then are dropped, never sent). The connection is switched to
 * pipeline mode only while it is ours and idle, and back before it returns to the pool.
 */
export async function pipelinedTransaction<T>(ds: DataSource, fn: (tx: PipelinedTx) => Promise<T>): Promise<T> {
  const qr = ds.createQueryRunner();
  // pg reads `pipeline` on every dispatch; it is typed readonly because it is a constructor option.
  // Switched on only while the connection is idle and ours, and off before it goes back to the pool.
  const client = (await qr.connect()) as PoolClient & { pipeline: boolean };
  const base = client.query as (...args: unknown[]) => Promise<QueryResult>;
  const ownQuery = Object.prototype.hasOwnProperty.call(client, 'query');
  const pending: Array<Promise<unknown>> = [];
  const held: Array<{ sql: string; params?: unknown[]; onRows?: (rows: Record<string, unknown>[]) => void }> = [];
  let firstError: unknown = null;
  // Statements sent in the same tick leave in one write: the socket is corked until the next tick
  // (a syscall per statement was a sixth of a webhook's CPU).
  const socket = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream;
  let corked = false;
  const cork = () => {
    if (corked || !socket?.cork || !socket.uncork) return;
    corked = true;
    socket.cork();
    process.nextTick(() => {
      corked = false;
      socket.uncork?.();
    });
  };
  const release = () => {
    for (const d of held.splice(0)) {
      pending.push(base.call(client, d.sql, d.params).then((r) => d.onRows?.(r.rows as Record<string, unknown>[]), (err: unknown) => {
        firstError ??= err;
      }));
    }
  };
  // Every statement on this connection, TypeORM's included, goes out behind the held deferred writes.
  const sendNow = (...args: unknown[]): Promise<QueryResult> => {
    cork();
    release();
    return base.apply(client, args);
  };
  const tx: PipelinedTx = {
    manager: qr.manager,
    query: <R>(sql: string, params?: unknown[]) => sendNow(sql, params).then((r) => r.rows as R[]),
    defer(sql, params, onRows) {
      held.push({ sql, params, onRows });
    },
    async flush() {
      cork();
      release();
      while (pending.length) await Promise.all(pending.splice(0));
      if (firstError) throw firstError;
    },
  };
  client.pipeline = true;
  (client as { query: unknown }).query = sendNow;
  open.set(qr.manager, tx);
  // TypeORM must see a transaction, or calls like Repository#save would wrap themselves in one and commit ours.
  const typeorm = qr as unknown as { isTransactionActive: boolean };
  typeorm.isTransactionActive = true;
  let broken = false;
  try {
    tx.defer('BEGIN');
    let result: T;
    try {
      result = await fn(tx);
      const commit = sendNow('COMMIT');
      commit.catch(() => undefined); // awaited below unless a deferred failure comes first
      await tx.flush();
      // A COMMIT of a transaction that failed answers ROLLBACK: a deferred failure flush already threw.
      if ((await commit).command !== 'COMMIT') throw new Error('transaction was rolled back');
      return result;
    } catch (err) {
      const sentBegin = !(held.length && held[0].sql === 'BEGIN');
      held.length = 0;
      await Promise.allSettled(pending.splice(0));
      if (sentBegin) {
        await base.call(client, 'ROLLBACK').catch(() => {
          broken = true;
        });
      }
      throw err;
    }
  } finally {
    open.delete(qr.manager);
    if (ownQuery) (client as { query: unknown }).query = base;
    else delete (client as { query?: unknown }).query; // the prototype's again
    typeorm.isTransactionActive = false;
    client.pipeline = false;
    // A connection whose ROLLBACK failed is destroyed, not returned to the pool in an unknown state
    // (releasePostgresConnection(err) is TypeORM's documented way to do that).
    const runner = qr as unknown as { releasePostgresConnection(err?: Error): Promise<void> };
    await (broken ? runner.releasePostgresConnection(new Error('rollback failed')) : qr.release()).catch(() => undefined);
  }
}
