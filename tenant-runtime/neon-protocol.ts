import { runtimeErrors } from './runtime-errors';
import type { Statement } from './query-executor';
import { PgQueryError } from './query-executor';
import type { SiloError } from '../common/errors';
import type { TenantRef } from './tenant-resolver';

/**
 * Where the driver posts by default: `https://api.<connection host minus its first label>/sql`, so
 * with a `<slug>.<RUNTIME_BASE_DOMAIN>` connection host, `api.<RUNTIME_BASE_DOMAIN>` for every tenant.
 * `api` is a reserved slug (control-plane/tenants/slug.ts): on /sql that host names no tenant, the
 * connection string does.
 */
export const NEON_API_LABEL = 'api';

/** Whether a request's host is the driver's endpoint host (`api.<base domain>`) rather than a tenant's. */
export function isNeonEndpointHost(ref: TenantRef | null): boolean {
  return ref !== null && ref.kind === 'slug' && ref.via === 'host' && ref.slug === NEON_API_LABEL;
}

/**
 * The HTTP protocol of `@neondatabase/serverless` (`neon()`, `drizzle-orm/neon-http`): POST /sql
 * with the connection string in `Neon-Connection-String`, `{query, params}` or
 * `{queries: [...]}` as body, and the driver's result shape back. The connection string is
 * `postgres://<slug>:<api key>@<runtime host>/<any db name>`.
 */
export interface NeonRequest {
  slug: string | null;
  key: string | null;
  statements: Statement[];
  batch: boolean;
  /** BEGIN with the batch's isolation level / read-only / deferrable options. */
  begin: string;
  arrayMode: boolean;
  rawText: boolean;
}

const ISOLATION: Record<string, string> = {
  ReadUncommitted: 'READ UNCOMMITTED', ReadCommitted: 'READ COMMITTED', RepeatableRead: 'REPEATABLE READ', Serializable: 'SERIALIZABLE',
};

type Headers = Record<string, string | string[] | undefined>;
const header = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** Tenant and key from the connection string; null parts when absent or malformed. */
export function neonCredentials(headers: Headers): { slug: string | null; key: string | null } {
  const cs = header(headers, 'neon-connection-string');
  if (!cs) return { slug: null, key: null };
  try {
    const u = new URL(cs);
    if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') return { slug: null, key: null };
    return { slug: decodeURIComponent(u.username).toLowerCase() || null, key: decodeURIComponent(u.password) || null };
  } catch {
    return { slug: null, key: null };
  }
}

export function parseNeonRequest(headers: Headers, body: unknown, maxStatements: number): Omit<NeonRequest, 'slug' | 'key'> {
  const b = body as { query?: unknown; params?: unknown; queries?: unknown };
  if (!b || typeof b !== 'object') throw runtimeErrors.invalid('Body must be {query, params} or {queries: [...]}');
  const batch = Array.isArray(b.queries);
  const list = batch ? (b.queries as unknown[]) : [b];
  // An empty batch (`sql.transaction([])`) is valid: Neon answers it with `{results: []}`.
  if (batch && list.length > maxStatements) throw runtimeErrors.invalid(`queries must hold at most ${maxStatements} items`);
  const statements = list.map((q, i) => {
    const { query, params } = (q ?? {}) as { query?: unknown; params?: unknown };
    if (typeof query !== 'string' || !query.trim()) throw runtimeErrors.invalid(batch ? `queries[${i}].query must be a non-empty string` : 'query must be a non-empty string');
    if (params !== undefined && !Array.isArray(params)) throw runtimeErrors.invalid('params must be an array');
    return { sql: query, params: (params as unknown[] | undefined) ?? [] };
  });
  let begin = 'BEGIN';
  if (batch) {
    const iso = header(headers, 'neon-batch-isolation-level');
    if (iso !== undefined && !ISOLATION[iso]) throw runtimeErrors.invalid(`Unknown Neon-Batch-Isolation-Level: ${iso}`);
    if (iso) begin += ` ISOLATION LEVEL ${ISOLATION[iso]}`;
    if (header(headers, 'neon-batch-read-only') === 'true') begin += ' READ ONLY';
    if (header(headers, 'neon-batch-deferrable') === 'true') begin += ' DEFERRABLE';
  }
  return {
    statements, batch, begin,
    arrayMode: header(headers, 'neon-array-mode') === 'true',
    rawText: header(headers, 'neon-raw-text-output') === 'true',
  };
}

/**
 * Error body the driver understands. On 400 it reads only `message` and the PostgreSQL fields
 * (`code`, `detail`, `hint`, `position`... `file`, `line`, `routine`) into a NeonDbError: a
 * PostgreSQL error is always a 400 with all of them, `code` being its SQLSTATE; one of Silo's own
 * 400s (VALIDATION_FAILED, RESULT_TOO_LARGE...) has Silo's code there. On any other status the
 * driver throws `Server error (HTTP status <n>): <body text>`, so Silo's code is reachable only in
 * that text. Silo's own error object (`error`, with `details`) rides along in every body.
 */
export function neonErrorBody(err: SiloError, body: { error: Record<string, unknown> }): { status: number; body: Record<string, unknown> } {
  if (err instanceof PgQueryError) return { status: 400, body: { message: err.message, ...err.pg, ...body } };
  return { status: err.status, body: { message: err.message, code: err.code, ...body } };
}
