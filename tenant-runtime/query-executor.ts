import { DatabaseError, Query, types as pgTypes } from 'pg';
import { ErrorCode } from '../common/error-codes';
import { isSiloError, SiloError } from '../common/errors';
import type { PooledConnection } from './pool-manager';
import { guardOf } from './guarded-connection';
import { runtimeErrors } from './runtime-errors';

export interface Statement {
  sql: string;
  params: unknown[];
}

export interface StatementResult {
  fields: unknown[];
  rows: unknown[];
  rowCount: number | null;
  command: string;
  rowAsArray?: boolean;
}

/**
 * How rows come back. `json` (the /v1 API): objects, JSON-native types parsed (numbers, booleans,
 * json/jsonb and their arrays), everything else as Postgres prints it (so no time-zone surprises).
 * `neon`: the serverless driver's shape: raw text values and/or arrays, full field descriptions.
 */
export type RowFormat = { kind: 'json' } | { kind: 'neon'; arrayMode: boolean; rawText: boolean };

/** A Postgres error: the client sees its SQLSTATE and message (it came from the tenant's own database). */
export class PgQueryError extends SiloError {
  constructor(code: ErrorCode, message: string, status: number, readonly pg: Record<string, unknown>, details: Record<string, unknown>) {
    super(code, message, status, details);
  }
}

const identity = (v: string) => v;
const RAW_TYPES = { getTypeParser: () => identity };
// bool, int2, int4, oid, float4, float8, json, jsonb and arrays of those: the rest stays text.
const NATIVE = new Set([16, 21, 23, 26, 700, 701, 114, 3802, 1000, 1005, 1007, 1028, 1021, 1022, 199, 3807, 1009, 1015, 1014]);
const JSON_TYPES = {
  getTypeParser: (oid: number, format?: string) => (NATIVE.has(oid) ? pgTypes.getTypeParser(oid, (format as 'text') ?? 'text') : identity),
};
/**
 * Every field of a PostgreSQL ErrorResponse (pg-protocol's names). The client gets them all: they
 * describe its own statement on its own database.
 */
export const PG_FIELDS = [
  'severity', 'code', 'detail', 'hint', 'position', 'internalPosition', 'internalQuery', 'where',
  'schema', 'table', 'column', 'dataType', 'constraint', 'file', 'line', 'routine',
] as const;

/**
 * Whether a server error ended the session. PostgreSQL says so itself: FATAL and PANIC abort the
 * session, ERROR only the statement (a protocol mistake such as a wrong parameter count, 08P01 at
 * ERROR, leaves the backend ready for the next query; so does any SQLSTATE a tenant RAISEs).
 * `severity` is the localized field: when it is neither (a server with non-English lc_messages),
 * the classes that end sessions (connection exceptions, operator intervention) are taken as ended.
 */
function endsSession(e: DatabaseError): boolean {
  if (e.severity === 'FATAL' || e.severity === 'PANIC') return true;
  if (e.severity === 'ERROR') return false;
  return /^(08|57P0)/.test(e.code ?? '');
}

/**
 * Resource exhaustion (53: out of memory, lock table full, disk full) and internal errors (XX):
 * the session goes on, but a fresh one is cheap and the old one is not trusted (its session
 * advisory locks, say, when the lock table filled): that connection is not reused.
 */
const DISCARD_AFTER = /^(53|XX)/;

/** How long each failed statement ran, measured from just before it was sent (for telling the tier's timeout from other cancels). */
const elapsedMs = new WeakMap<object, number>();

export interface ResultBudget {
  rows: number;
  bytes: number;
}

type Handler = (this: Query, msg: { fields: Array<string | Buffer | null> }) => void;
const baseHandleDataRow = (Query.prototype as unknown as { handleDataRow: Handler }).handleDataRow;

/**
 * A pg Query that stops collecting once the request's row budget is spent. Bytes are charged by the
 * connection's MessageGuard from each row's header, before the row is buffered; only on a client
 * without one (`countBytes`) are they counted here, after the fact.
 */
class CappedQuery extends Query {
  overflow: SiloError | null = null;

  constructor(config: object, private readonly budget: ResultBudget, private readonly limits: ResultBudget, private readonly countBytes: boolean, private readonly onOverflow: () => void) {
    super(config as never);
  }

  handleDataRow(msg: { fields: Array<string | Buffer | null> }): void {
    if (this.overflow) return;
    if (this.countBytes) {
      let bytes = 0;
      for (const f of msg.fields) bytes += f === null ? 4 : f.length;
      this.budget.bytes -= bytes;
    }
    this.budget.rows -= 1;
    if (this.budget.rows < 0 || this.budget.bytes < 0) {
      this.overflow = this.budget.rows < 0 ? runtimeErrors.resultTooLarge('rows', this.limits.rows) : runtimeErrors.resultTooLarge('bytes', this.limits.bytes);
      // Makes pg skip the remaining rows and report this error once the server is done.
      (this as unknown as { _canceledDueToError: unknown })._canceledDueToError = this.overflow;
      this.onOverflow();
      return;
    }
    baseHandleDataRow.call(this, msg);
  }
}

/** What happens to a statement past its timeout: cancelled after `cancelGraceMs`, then terminated `terminateGraceMs` after that cancel. */
export interface StatementOverrun {
  cancelGraceMs: number;
  terminateGraceMs: number;
}

export interface ExecOptions {
  format: RowFormat;
  timeoutMs: number;
  /** Run the statements atomically, opening with this (e.g. `BEGIN ISOLATION LEVEL SERIALIZABLE`). */
  transaction?: string | null;
}

/**
 * Runs a request's statements on a leased connection, always with the extended protocol (one
 * statement per `sql`). The tier's statement_timeout is set on the connection; a client-side
 * backstop cancels, then kills, a statement that overruns it even if the tenant changed the setting.
 */
export class QueryExecutor {
  constructor(private readonly limits: ResultBudget, private readonly overrun: StatementOverrun = { cancelGraceMs: 250, terminateGraceMs: 750 }) {}

  async run(conn: PooledConnection, statements: Statement[], opts: ExecOptions): Promise<{ results: StatementResult[] }> {
    const budget = { ...this.limits };
    const results: StatementResult[] = [];
    let index = -1;
    try {
      if (opts.transaction) await this.simple(conn, opts.transaction, opts.timeoutMs);
      for (index = 0; index < statements.length; index++) {
        results.push(await this.exec(conn, statements[index] as Statement, opts, budget));
      }
      index = -1;
      if (opts.transaction) await this.simple(conn, 'COMMIT', opts.timeoutMs);
    } catch (err) {
      if (opts.transaction && !conn.broken) await this.simple(conn, 'ROLLBACK', opts.timeoutMs).catch(() => (conn.broken = true));
      throw this.mapError(err, conn, opts.timeoutMs, statements.length > 1 || opts.transaction ? (index === -1 ? 'commit' : index) : null);
    }
    return { results };
  }

  private simple(conn: PooledConnection, sql: string, timeoutMs: number): Promise<StatementResult> {
    return this.exec(conn, { sql, params: [] }, { format: { kind: 'json' }, timeoutMs }, { ...this.limits });
  }

  private exec(conn: PooledConnection, st: Statement, opts: ExecOptions, budget: ResultBudget): Promise<StatementResult> {
    return new Promise<StatementResult>((resolve, reject) => {
      const neon = opts.format.kind === 'neon' ? opts.format : null;
      // Result bytes are charged as they arrive, across the request's statements (one budget).
      const guarded = guardOf(conn.client);
      if (guarded) guarded.guard.allowance = { budget, limit: this.limits.bytes };
      let kill: NodeJS.Timeout | null = null;
      // Backstop: the server's statement_timeout should fire first; this catches a tenant that turned
      // it off, or a statement that trapped the cancel (EXCEPTION WHEN query_canceled). One that
      // ignores our cancel too is abandoned: socket destroyed, backend terminated and counted until gone.
      const backstop = setTimeout(() => {
        q.overflow ??= runtimeErrors.queryTimeout(opts.timeoutMs);
        conn.broken = true;
        conn.cancel();
        kill = setTimeout(() => conn.abandon(), this.overrun.terminateGraceMs);
      }, opts.timeoutMs + this.overrun.cancelGraceMs);
      const sent = process.hrtime.bigint();
      const q: CappedQuery = new CappedQuery(
        {
          text: st.sql,
          values: st.params,
          queryMode: 'extended',
          rowMode: neon?.arrayMode ? 'array' : undefined,
          types: neon ? (neon.rawText ? RAW_TYPES : pgTypes) : JSON_TYPES,
          callback: (err: Error | null, res: { fields: Array<{ name: string; dataTypeID: number }>; rows: unknown[]; rowCount: number | null; command: string }) => {
            clearTimeout(backstop);
            if (kill) clearTimeout(kill);
            if (guarded) guarded.guard.allowance = null;
            if (guarded?.violation) {
              // The socket is already gone at the oversized message's header; the backend may still be producing it.
              conn.broken = true;
              conn.abandon();
              // A row cap or timeout already hit comes first: the guard scans a chunk before pg parses its rows.
              return reject(q.overflow ?? guarded.violation);
            }
            if (q.overflow) return reject(q.overflow);
            if (err) {
              elapsedMs.set(err, Number(process.hrtime.bigint() - sent) / 1e6);
              return reject(err);
            }
            resolve({
              fields: neon ? res.fields : res.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID })),
              rows: res.rows,
              rowCount: res.rowCount,
              command: res.command,
              ...(neon ? { rowAsArray: neon.arrayMode } : {}),
            });
          },
        },
        budget,
        this.limits,
        !guarded,
        () => {
          // The cancel travels on a side socket and may land after this statement ended, on the
          // connection's next statement: this connection is not reused.
          conn.broken = true;
          conn.cancel();
        },
      );
      conn.client.query(q as never);
    });
  }

  private mapError(err: unknown, conn: PooledConnection, timeoutMs: number, statementIndex: number | 'commit' | null): SiloError {
    const where = statementIndex === null ? {} : { statementIndex };
    if (isSiloError(err)) {
      if (err.code === ErrorCode.QUERY_TIMEOUT) conn.broken = true;
      return new SiloError(err.code, err.message, err.status, { ...err.details, ...where });
    }
    // A server ErrorResponse (pg's DatabaseError): socket errors carry a `code` too (EPIPE), never a severity.
    if (err instanceof DatabaseError && typeof err.code === 'string') {
      const e = err as DatabaseError & Record<string, unknown>;
      const pg = Object.fromEntries(PG_FIELDS.filter((k) => e[k] !== undefined).map((k) => [k, e[k]])) as Record<string, string>;
      const sqlstate = err.code as string;
      const fields = pgDetails(pg);
      if (endsSession(err)) {
        // The server dropped the session (terminated, shutting down...): the database's fault, not
        // the query's, so a retryable 503 rather than a 400 the client would not retry.
        conn.broken = true;
        return new PgQueryError(ErrorCode.TENANT_UNAVAILABLE, 'Connection to the tenant database was lost: retry', 503, pg, { sqlstate, ...fields, ...where });
      }
      // 57014 is every cancel: the tier's statement_timeout, but also a lower one the tenant set (SET
      // LOCAL statement_timeout), its own pg_cancel_backend, a COPY FROM STDIN pg refuses... The
      // runtime's own cancels (backstop, result cap) never get here (their SiloError is reported).
      // Only a statement that ran for the tier's whole timeout was stopped by it: the server starts
      // its timer after this process sent the statement, so that one's elapsed time here is longer.
      if (sqlstate === '57014' && (elapsedMs.get(err) ?? 0) >= timeoutMs) {
        return new PgQueryError(ErrorCode.QUERY_TIMEOUT, `Query exceeded the ${timeoutMs} ms statement timeout`, 504, pg, { sqlstate, timeoutMs, ...fields, ...where });
      }
      if (DISCARD_AFTER.test(sqlstate)) conn.broken = true;
      return new PgQueryError(ErrorCode.QUERY_FAILED, err.message || 'Query failed', 400, pg, { sqlstate, ...fields, ...where });
    }
    // No SQLSTATE: the connection itself failed (reset, terminated, bad parameter encoding...).
    if (err instanceof TypeError || err instanceof RangeError) return runtimeErrors.invalid(`Invalid query parameters: ${(err as Error).message}`);
    conn.broken = true;
    return runtimeErrors.unavailable('Connection to the tenant database was lost');
  }
}

/**
 * The PostgreSQL fields for Silo's `error.details`: all of them but `code` (that is `sqlstate`
 * there), positions as numbers (1-based character offsets), the rest as the server sent them.
 */
function pgDetails(pg: Record<string, string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(pg)) {
    if (k === 'code') continue;
    out[k] = k === 'position' || k === 'internalPosition' ? Number(v) : v;
  }
  return out;
}

/**
 * What runs before a connection goes back to the pool: ROLLBACK if the request left a transaction
 * open, then always DISCARD ALL (settings, temp tables, prepared statements, cursors, listeners,
 * session advisory locks). Not guessed from the SQL text: dynamic SQL in a DO block or a function,
 * or pg_try_advisory_lock, change the session without any telltale keyword.
 */
export function resetFor(conn: PooledConnection): string[] {
  const tx = (conn.client as unknown as { getTransactionStatus(): string | null }).getTransactionStatus();
  return tx && tx !== 'I' ? ['ROLLBACK', 'DISCARD ALL'] : ['DISCARD ALL'];
}
