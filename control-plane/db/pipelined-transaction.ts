import type { PoolClient, QueryResult } from 'pg';
import { DataSource, EntityManager } from 'typeorm';

/**
 * A transaction whose statements can share round trips (node-postgres pipeline mode, pg >= 8.21).
 *
 * `query` writes a statement to the wire at once, without waiting for the ones before it; the server
 * still runs them in order, one after another, each with its own snapshot. `defer` is for writes
 * whose result nobody reads before commit (an audit row, an outcome): they ride along with the next
 * statement that is awaited, and their failure fails the commit. Reads through `manager` (TypeORM)
 * work as in any transaction and come after every statement issued before them.
 *
 * Ordering rule: a statement that must not be overtaken goes through `query`/`defer` (enqueued on the
 * connection synchronously), never through a TypeORM call left un-awaited (TypeORM reaches the
 * connection a few microtasks later).
 */
export interface PipelinedTx {
  readonly manager: EntityManager;
  /** Sends now; resolves with the rows when the server has answered this statement. */
  query<R = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Sends now; nobody waits for it. Its failure fails `flush` and the commit. */
  defer(sql: string, params?: unknown[], onRows?: (rows: Record<string, unknown>[]) => void): void;
  /** Waits for every deferred statement; throws the first failure. */
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
 * fails. The connection is switched to pipeline mode only while it is ours and idle, and back before
 * it returns to the pool.
 */
export async function pipelinedTransaction<T>(ds: DataSource, fn: (tx: PipelinedTx) => Promise<T>): Promise<T> {
  const qr = ds.createQueryRunner();
  // pg reads `pipeline` on every dispatch; it is typed readonly because it is a constructor option.
  // Switched on only while the connection is idle and ours, and off before it goes back to the pool.
  const client = (await qr.connect()) as PoolClient & { pipeline: boolean };
  const pending: Array<Promise<unknown>> = [];
  let firstError: unknown = null;
  // Statements sent in the same tick leave in one write: the socket is corked until the next tick
  // (a syscall per statement was a sixth of a webhook's CPU).
  const socket = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream;
  let corked = false;
  const send = <R>(sql: string, params?: unknown[]): Promise<R[]> => {
    if (!corked && socket?.cork && socket.uncork) {
      corked = true;
      socket.cork();
      process.nextTick(() => {
        corked = false;
        socket.uncork?.();
      });
    }
    return client.query(sql, params).then((r: QueryResult) => r.rows as R[]);
  };
  const tx: PipelinedTx = {
    manager: qr.manager,
    query: send,
    defer(sql, params, onRows) {
      pending.push(send<Record<string, unknown>>(sql, params).then(onRows, (err: unknown) => {
        firstError ??= err;
      }));
    },
    async flush() {
      while (pending.length) await Promise.all(pending.splice(0));
      if (firstError) throw firstError;
    },
  };
  client.pipeline = true;
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
      const commit = client.query('COMMIT');
      commit.catch(() => undefined); // awaited below unless a deferred failure comes first
      await tx.flush();
      // A COMMIT of a transaction that failed answers ROLLBACK: a deferred failure flush already threw.
      if ((await commit).command !== 'COMMIT') throw new Error('transaction was rolled back');
      return result;
    } catch (err) {
      await Promise.allSettled(pending.splice(0));
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    }
  } finally {
    open.delete(qr.manager);
    typeorm.isTransactionActive = false;
    client.pipeline = false;
    // A connection whose ROLLBACK failed is destroyed, not returned to the pool in an unknown state
    // (releasePostgresConnection(err) is TypeORM's documented way to do that).
    const runner = qr as unknown as { releasePostgresConnection(err?: Error): Promise<void> };
    await (broken ? runner.releasePostgresConnection(new Error('rollback failed')) : qr.release()).catch(() => undefined);
  }
}
