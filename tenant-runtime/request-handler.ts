import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode } from '../common/error-codes';
import { isSiloError, SiloError } from '../common/errors';
import { toErrorResponse } from '../common/http/error-body';
import { requestIdFor } from '../common/http/request-id';
import type { Logger } from '../common/logger';
import type { DirectoryEntry } from '../common/tenant-directory';
import { ApiKeyVerifier, bearerToken } from './api-key-verifier';
import type { RuntimeConfig } from './config';
import type { CredentialCache } from './credentials';
import type { TenantDirectory } from './directory';
import { parseJson, readBody, sendJson } from './http-io';
import { isNeonEndpointHost, neonCredentials, neonErrorBody, parseNeonRequest } from './neon-protocol';
import type { PoolManager } from './pool-manager';
import { QueryExecutor, resetFor, RowFormat, Statement, StatementResult } from './query-executor';
import type { RateLimiter } from './rate-limiter';
import { NO_TENANT, RuntimeMetrics } from './runtime-metrics';
import { runtimeErrors } from './runtime-errors';
import type { TenantRef, TenantResolver } from './tenant-resolver';
import type { RuntimeTiers } from './tiers';
import type { TenantAccess } from './tenant-access';

export interface HandlerDeps {
  config: RuntimeConfig;
  logger: Logger;
  resolver: TenantResolver;
  directory: TenantDirectory;
  keys: ApiKeyVerifier;
  credentials: CredentialCache;
  tiers: RuntimeTiers;
  limiter: RateLimiter;
  pools: PoolManager;
  access: TenantAccess;
  executor: QueryExecutor;
  metrics: RuntimeMetrics;
  ready: () => Promise<{ status: number; body: unknown }>;
}

type Route = 'query' | 'transaction' | 'sql';
const ROUTES: Record<string, Route> = { '/v1/query': 'query', '/v1/transaction': 'transaction', '/sql': 'sql' };

/** Per-request facts for the access log and metrics. */
interface Outcome {
  tenant: string;
  route: string;
  code: string | null;
}

/**
 * The runtime's HTTP handler on plain node:http (no framework on the hot path): check the key,
 * load its tenant and match it with the one the request names, apply the tenant's rate limit,
 * lease a connection from its pool, run the SQL.
 */
export class RequestHandler {
  private inflight = 0;
  private draining = false;
  private idleWaiters: Array<() => void> = [];

  constructor(private readonly d: HandlerDeps) {}

  get inFlight(): number {
    return this.inflight;
  }

  /** Stops taking tenant work on this replica: responses ask clients to reconnect elsewhere. Resolves when in-flight requests are done. */
  drain(timeoutMs: number): Promise<boolean> {
    this.draining = true;
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  readonly handle = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint();
    const requestId = requestIdFor(req);
    res.setHeader('x-request-id', requestId);
    if (this.draining) res.setHeader('connection', 'close');
    const outcome: Outcome = { tenant: NO_TENANT, route: 'other', code: null };
    this.inflight++;
    this.dispatch(req, res, outcome)
      .catch((err: unknown) => this.fail(res, err, requestId, outcome))
      .finally(() => {
        const seconds = Number(process.hrtime.bigint() - started) / 1e9;
        if (outcome.route !== 'health') {
          this.d.metrics.observe(outcome.tenant, outcome.route, res.statusCode, outcome.code, seconds);
          if (this.d.config.RUNTIME_ACCESS_LOG) {
            this.d.logger.info({ requestId, tenant: outcome.tenant, route: outcome.route, status: res.statusCode, code: outcome.code ?? undefined, ms: Math.round(seconds * 1e4) / 10 }, 'request');
          }
        }
        if (--this.inflight === 0 && this.idleWaiters.length) for (const w of this.idleWaiters.splice(0)) w();
      });
  };

  /**
   * The internal listener (RUNTIME_METRICS_PORT): `/metrics` and the health checks, never tenant
   * traffic. Metrics name tenants, so they are not served where tenants and outsiders connect.
   */
  readonly handleInternal = (req: IncomingMessage, res: ServerResponse): void => {
    const requestId = requestIdFor(req);
    res.setHeader('x-request-id', requestId);
    const route = (req.url ?? '/').split('?')[0];
    const served = async (): Promise<void> => {
      if (req.method !== 'GET') throw runtimeErrors.notFound();
      if (route === '/metrics') {
        const text = await this.d.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': this.d.metrics.registry.contentType });
        res.end(text);
        return;
      }
      if (route === '/health/live') return sendJson(res, 200, { status: 'ok' });
      if (route === '/health/ready') {
        const r = await this.d.ready();
        return sendJson(res, r.status, r.body);
      }
      throw runtimeErrors.notFound();
    };
    served().catch((err: unknown) => this.fail(res, err, requestId, { tenant: NO_TENANT, route: 'metrics', code: null }));
  };

  private async dispatch(req: IncomingMessage, res: ServerResponse, outcome: Outcome): Promise<void> {
    const url = req.url ?? '/';
    if (req.method === 'GET') {
      if (url === '/health/live') {
        outcome.route = 'health';
        return sendJson(res, 200, { status: 'ok' });
      }
      if (url === '/health/ready') {
        outcome.route = 'health';
        const r = await this.d.ready();
        return sendJson(res, r.status, r.body);
      }
    }
    const resolution = this.d.resolver.resolve(req.headers.host, url);
    const route = ROUTES[resolution.route];
    if (!route || req.method !== 'POST') throw runtimeErrors.notFound();
    outcome.route = route;
    if (resolution.conflict) throw runtimeErrors.invalid('The host and the path name different tenants');

    let ref: TenantRef | null = resolution.ref;
    let key: string | null;
    if (route === 'sql') {
      // The driver's default endpoint, api.<base domain>, is every tenant's: the connection string names the tenant.
      if (isNeonEndpointHost(ref)) ref = null;
      const cs = neonCredentials(req.headers);
      if (cs.slug) {
        if (ref && !(ref.kind === 'slug' && ref.slug === cs.slug) && !(ref.kind === 'domain')) throw runtimeErrors.invalid('The connection string and the URL name different tenants');
        ref = { kind: 'slug', slug: cs.slug, via: 'connection-string' };
      }
      key = cs.key ?? bearerToken(req.headers.authorization);
    } else {
      key = bearerToken(req.headers.authorization);
    }
    if (!ref) throw runtimeErrors.noTenant();

    const entry = await this.authenticate(ref, key, outcome);
    const tier = this.d.tiers.get(entry.tier);
    const retryAfter = this.d.limiter.take(entry.tenantId, tier.rateLimitPerSecond, tier.rateLimitBurst);
    if (retryAfter) throw runtimeErrors.rateLimited(retryAfter);

    const body = parseJson(await readBody(req, this.d.config.RUNTIME_MAX_BODY_BYTES));
    let statements: Statement[];
    let format: RowFormat = { kind: 'json' };
    let transaction: string | null = null;
    let batch = false;
    if (route === 'sql') {
      const neon = parseNeonRequest(req.headers, body, this.d.config.RUNTIME_MAX_STATEMENTS);
      statements = neon.statements;
      format = { kind: 'neon', arrayMode: neon.arrayMode, rawText: neon.rawText };
      batch = neon.batch;
      transaction = neon.batch ? neon.begin : null;
    } else if (route === 'query') {
      statements = [parseStatement(body, 'body')];
    } else {
      statements = parseTransaction(body, this.d.config.RUNTIME_MAX_STATEMENTS);
      transaction = 'BEGIN';
      batch = true;
    }

    // An empty Neon batch needs no connection: Neon answers it with no results.
    if (route === 'sql' && batch && statements.length === 0) return sendJson(res, 200, { results: [] });
    const conn = await this.d.pools.acquire(this.d.access.targetFor(entry, tier));
    let results: StatementResult[];
    try {
      await this.d.pools.clean(conn);
      results = (await this.d.executor.run(conn, statements, { format, timeoutMs: tier.statementTimeoutMs, transaction })).results;
    } finally {
      this.d.pools.release(conn, { reset: conn.broken ? null : resetFor(conn) });
    }
    const payload = route === 'sql' ? (batch ? { results } : results[0]) : route === 'transaction' ? { results } : results[0];
    sendJson(res, 200, payload);
  }

  /**
   * The key first, whatever the request names: its owner is found from the key alone (a dummy
   * compare when there is no key), that tenant's entry is loaded by id, and only then is it compared
   * with the slug or domain the request names. An unknown, deleted or other tenant and any key
   * problem give the one 401 after the same work, and an outage gives the same 503 whichever name
   * was asked for, so no response (nor its timing) tells whether a tenant exists. Only a caller
   * holding the tenant's key learns its status. The tenant's metrics label is assigned only then:
   * anonymous traffic cannot move another tenant's counters.
   */
  private async authenticate(ref: TenantRef, key: string | null, outcome: Outcome): Promise<DirectoryEntry> {
    const entry = await this.d.access.authenticate(ref, key);
    outcome.tenant = this.d.metrics.tenantLabel(entry.tenantId, entry.slug);
    this.d.access.assertServable(entry);
    return entry;
  }

  private fail(res: ServerResponse, err: unknown, requestId: string, outcome: Outcome): void {
    const { status, body, internal } = toErrorResponse(err, requestId);
    outcome.code = body.error.code;
    if (internal) this.d.logger.error({ err, requestId }, 'unhandled runtime error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = {};
    if (isSiloError(err)) {
      if (err.code === ErrorCode.RATE_LIMITED) headers['retry-after'] = String(err.details?.retryAfterSeconds ?? 1);
      if (err.code === ErrorCode.API_KEY_INVALID) headers['www-authenticate'] = 'Bearer';
      if (err.code === ErrorCode.PAYLOAD_TOO_LARGE) headers.connection = 'close';
    }
    if (outcome.route === 'sql' && isSiloError(err)) {
      const neon = neonErrorBody(err as SiloError, body);
      return sendJson(res, neon.status, neon.body, headers);
    }
    sendJson(res, status, body, headers);
  }
}

/** Whether the slug or custom domain a request names is this tenant's. */
function parseStatement(v: unknown, where: string): Statement {
  const s = v as { sql?: unknown; params?: unknown };
  if (!s || typeof s !== 'object' || Array.isArray(s)) throw runtimeErrors.invalid(`${where} must be an object {sql, params}`);
  if (typeof s.sql !== 'string' || !s.sql.trim()) throw runtimeErrors.invalid(`${where}.sql must be a non-empty string`);
  if (s.params !== undefined && !Array.isArray(s.params)) throw runtimeErrors.invalid(`${where}.params must be an array`);
  return { sql: s.sql, params: (s.params as unknown[] | undefined) ?? [] };
}

function parseTransaction(v: unknown, max: number): Statement[] {
  const list = (v as { statements?: unknown })?.statements;
  if (!Array.isArray(list) || list.length === 0 || list.length > max) throw runtimeErrors.invalid(`statements must be an array of 1 to ${max} {sql, params}`);
  return list.map((s, i) => parseStatement(s, `statements[${i}]`));
}
