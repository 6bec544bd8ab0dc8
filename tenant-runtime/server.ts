import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'pg';
import { ErrorCode } from '../common/error-codes';
import { isSiloError } from '../common/errors';
import { checkReadiness, sharedCheck } from '../common/http/readiness';
import { directorySignerFor } from '../common/directory-signer';
import type { KvStore } from '../common/kv-store';
import type { Logger } from '../common/logger';
import { logThrottle } from '../common/log-throttle';
import { DIRECTORY_CHANNEL, Invalidation } from '../common/tenant-directory';
import { createKvStore } from '../common/create-kv-store';
import { createSecretStore } from '../provisioning/secrets/create-secret-store';
import type { SecretStore } from '../provisioning/secrets/secret-store';
import { ApiKeyVerifier } from './api-key-verifier';
import { BackendTerminator, PgBackendTerminator } from './backend-terminator';
import type { RuntimeConfig } from './config';
import { CredentialCache } from './credentials';
import { TenantDirectory } from './directory';
import { PoolManager, PoolTarget } from './pool-manager';
import { TenantAccess } from './tenant-access';
import { PgFrontDoor } from './pg-wire/front-door';
import { QueryExecutor } from './query-executor';
import { RateLimiter } from './rate-limiter';
import { RequestHandler } from './request-handler';
import { runtimeErrors } from './runtime-errors';
import { RuntimeMetrics } from './runtime-metrics';
import { TenantResolver } from './tenant-resolver';
import { terminatorLoginFor } from './terminator-login';
import { RuntimeTier, RuntimeTiers } from './tiers';

export interface TenantRuntimeOptions {
  logger: Logger;
  /** Share a KvStore (the embedded single-process mode passes the control plane's). */
  kv?: KvStore;
  /** Redis key prefix when the runtime creates its own KvStore (tests). */
  kvPrefix?: string;
  /** Tier overrides on top of the built-in tiers and TIERS_FILE (tests). */
  tiers?: Record<string, RuntimeTier>;
  /** Replaces the configured secret store (tests). */
  secretStore?: SecretStore;
  /** Replaces the configured backend terminator (tests); closed with the runtime. */
  terminator?: BackendTerminator;
}

export interface RunningTenantRuntime {
  url: string;
  /** The internal listener: `/metrics` and health checks (RUNTIME_METRICS_PORT). */
  metricsUrl: string;
  /** The PostgreSQL front door (RUNTIME_PG_PORT), null when RUNTIME_PG_ENABLED=false. */
  pg: { host: string; port: number } | null;
  /** Drains in-flight requests (up to RUNTIME_SHUTDOWN_TIMEOUT_MS), closes pools and connections. */
  close(): Promise<void>;
  /** For tests and diagnostics: live counters. */
  stats(): { connections: number; connecting: number; terminating: number; connectsStarted: number; pools: number; inFlight: number; directoryEntries: number; apiKeys: number };
}

// Postgres SQLSTATEs a connect attempt fails with.
const TOO_MANY_CONNECTIONS = new Set(['53300', '53400']);
const AUTH_FAILED = new Set(['28P01', '28000']);

/**
 * Starts the tenant runtime: a stateless HTTP front door that routes each request to its
 * tenant's own database. Many replicas can run behind a load balancer; they share nothing but
 * Redis (cache and invalidations) and the control database (read-only).
 */
export async function startTenantRuntime(config: RuntimeConfig, opts: TenantRuntimeOptions): Promise<RunningTenantRuntime> {
  const logger = opts.logger;
  const control = new Pool({
    connectionString: config.DATABASE_URL, max: config.RUNTIME_CONTROL_POOL_SIZE, application_name: 'silo-runtime-directory',
    // The runtime only ever reads the control database: make that a property of the session.
    options: '-c default_transaction_read_only=on', connectionTimeoutMillis: 3_000, idleTimeoutMillis: 30_000,
  });
  control.on('error', (err) => logger.warn({ err: errSummary(err) }, 'control database connection error'));
  const ownsKv = !opts.kv;
  const kv = opts.kv ?? createKvStore(config.REDIS_URL, opts.kvPrefix);
  // A private in-process store never hears the control plane: behave as if invalidations were down.
  const busUp = ownsKv && kv.kind === 'memory' ? () => false : () => kv.isSubscribed();
  const secretStore = opts.secretStore ?? (await createSecretStore(config, control));
  const tiers = new RuntimeTiers(config.TIERS_FILE, config.DEFAULT_TIER, opts.tiers);

  let pools: PoolManager | null = null;
  const metrics = new RuntimeMetrics(() => pools, config.RUNTIME_METRICS_TENANT_LABELS);
  const credentials = new CredentialCache(secretStore, config.RUNTIME_DIRECTORY_CACHE_SIZE);
  // A cache outage is expected to be noisy: one line per 10 s is enough.
  const cacheWarnings = logThrottle(10_000);
  const onCacheError = (err: unknown, stage: string) => {
    if (stage.includes('kv') && cacheWarnings.take() === null) return;
    logger.warn({ err: errSummary(err), stage }, 'directory source failed');
  };
  const freshMs = () => (busUp() ? config.RUNTIME_DIRECTORY_TTL_MS : config.RUNTIME_DEGRADED_TTL_MS);
  const cacheOpts = { control, kv, signer: directorySignerFor(config.SILO_DIRECTORY_KEY), cacheSize: config.RUNTIME_DIRECTORY_CACHE_SIZE, freshMs, negativeMs: config.RUNTIME_NEGATIVE_TTL_MS, staleIfErrorMs: config.RUNTIME_STALE_IF_ERROR_MS, onError: onCacheError };
  const directory = new TenantDirectory({ ...cacheOpts, onSource: (s) => metrics.lookup('directory', s) });
  const keys = new ApiKeyVerifier({ ...cacheOpts, onSource: (s) => metrics.lookup('api_key', s) });

  // One line a second at most: under overload every request would log one.
  const exhaustedWarnings = logThrottle(1_000);
  const terminator = opts.terminator ?? terminatorFor(config, secretStore);
  const terminateWarnings = logThrottle(5_000);
  pools = new PoolManager({
    terminator: terminator ?? undefined,
    onTerminated: (ms) => metrics.terminated.observe(ms / 1000),
    onTerminateError: (err, server, pending) => {
      const suppressed = terminateWarnings.take();
      if (suppressed !== null) logger.error({ err: errSummary(err), server, pending, suppressed }, 'cannot terminate abandoned backends: they stay counted against the budget until the server shows them gone');
    },
    budget: config.RUNTIME_MAX_CONNECTIONS,
    acquireTimeoutMs: config.RUNTIME_ACQUIRE_TIMEOUT_MS,
    idleTimeoutMs: config.RUNTIME_IDLE_TIMEOUT_MS,
    keepWarmMs: config.RUNTIME_KEEP_WARM_MS,
    maxConnectingPerServer: config.RUNTIME_MAX_CONNECTING_PER_SERVER,
    onEvict: (reason) => metrics.evictions.inc({ reason }),
    onConnect: (ms) => metrics.connectSeconds.observe(ms / 1000),
    onAcquired: (ms, via) => metrics.poolWait.observe({ via }, ms / 1000),
    onExhausted: (describe) => {
      const suppressed = exhaustedWarnings.take();
      if (suppressed !== null) logger.warn({ ...describe(), suppressed }, 'no tenant connection in time (POOL_EXHAUSTED)');
    },
    onConnectError: (err: unknown, target: PoolTarget) => {
      const code = (err as { code?: string }).code ?? '';
      logger.warn({ tenant: target.label, err: errSummary(err) }, 'tenant connection failed');
      if (TOO_MANY_CONNECTIONS.has(code)) return runtimeErrors.poolExhausted();
      if (AUTH_FAILED.has(code) || (isSiloError(err) && err.code === ErrorCode.SECRET_NOT_FOUND)) {
        // Credentials rotated under us: re-read this tenant's (and its directory entry) on its next
        // request. Only this tenant's: one tenant's refused login must not cost every other tenant a read.
        pools?.retire(target.tenantId);
        credentials.forget(target.secretRef);
      }
      return runtimeErrors.unavailable();
    },
  });
  const access = new TenantAccess({ config, logger, directory, keys, credentials });
  const limiter = new RateLimiter(config.RUNTIME_DIRECTORY_CACHE_SIZE);
  const handler = new RequestHandler({
    config, logger, directory, keys, credentials, tiers, metrics, pools, access,
    resolver: new TenantResolver(config.RUNTIME_BASE_DOMAIN),
    limiter,
    executor: new QueryExecutor({ rows: config.RUNTIME_MAX_RESULT_ROWS, bytes: config.RUNTIME_MAX_RESULT_BYTES }, { cancelGraceMs: config.RUNTIME_CANCEL_GRACE_MS, terminateGraceMs: config.RUNTIME_TERMINATE_GRACE_MS }),
    // Public route: at most one database and cache check per second, however many probes arrive.
    ready: sharedCheck(async () => {
      const r = await checkReadiness({
        database: async () => void (await control.query('SELECT 1')),
        cache: async () => {
          if (!(await kv.ping())) throw new Error('cache did not answer');
        },
      });
      const dbUp = r.body.checks.database === 'up';
      const cacheUp = r.body.checks.cache === 'up';
      const ok = dbUp && (cacheUp || !config.RUNTIME_READY_REQUIRES_CACHE);
      return { status: ok ? 200 : 503, body: { status: !ok ? 'not_ready' : cacheUp ? 'ready' : 'degraded', checks: { ...r.body.checks, invalidations: busUp() ? 'up' : 'down' } } };
    }),
  });

  let closed = false;
  await kv.subscribe(DIRECTORY_CHANNEL, (message) => {
    if (closed) return;
    let msg: Invalidation;
    try {
      msg = JSON.parse(message) as Invalidation;
    } catch {
      return;
    }
    if (msg.kind === 'api-key' && typeof msg.prefix === 'string') {
      keys.invalidate(msg.prefix);
    } else if (msg.kind === 'tenant' && typeof msg.slug === 'string') {
      // The next request reads the new entry; its pool is replaced only if the connection identity
      // changed (credentials, tier, database), never for a rename or a status change alone.
      directory.invalidate(msg);
    }
  });
  kv.onReconnect(() => {
    if (closed) return;
    logger.info('invalidation bus reconnected: clearing cached directory entries and keys');
    directory.clear();
    keys.clear();
  });

  const frontDoor = config.RUNTIME_PG_ENABLED ? new PgFrontDoor({ config, logger, access, tiers, pools, limiter, metrics, control }) : null;
  const server = createServer({ keepAlive: true }, handler.handle);
  server.keepAliveTimeout = 65_000; // above common load balancer idle timeouts (60 s)
  server.headersTimeout = 66_000;
  const internal = createServer(handler.handleInternal);
  let url: string, metricsUrl: string;
  let pg: { host: string; port: number } | null = null;
  try {
    url = await listen(server, config.RUNTIME_PORT, config.HOST);
    metricsUrl = await listen(internal, config.RUNTIME_METRICS_PORT, config.RUNTIME_METRICS_HOST);
    if (frontDoor) {
      const host = config.RUNTIME_PG_HOST ?? config.HOST;
      const bound = await frontDoor.listen(config.RUNTIME_PG_PORT, host);
      pg = { host: host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host, port: bound.port };
    }
  } catch (err) {
    server.close();
    internal.close();
    await frontDoor?.close(0);
    await pools.close(0);
    await terminator?.close();
    await control.end().catch(() => undefined);
    if (ownsKv) await kv.close();
    throw err;
  }
  logger.info({ url, metricsUrl, pg, baseDomain: config.RUNTIME_BASE_DOMAIN, budget: config.RUNTIME_MAX_CONNECTIONS, cache: kv.kind }, 'tenant runtime listening');

  let closing: Promise<void> | null = null;
  return {
    url,
    metricsUrl,
    pg,
    stats: () => ({ connections: pools?.connections ?? 0, connecting: pools?.connectsInFlight ?? 0, terminating: pools?.terminatingCount ?? 0, connectsStarted: pools?.connectsStarted ?? 0, pools: pools?.poolCount ?? 0, inFlight: handler.inFlight, directoryEntries: directory.size, apiKeys: keys.size }),
    close: () => {
      closing ??= (async () => {
        const stopListening = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        // Wire clients are told the server is going away; their backends come back as they finish.
        const wireClosed = frontDoor?.close(config.RUNTIME_SHUTDOWN_TIMEOUT_MS);
        const drained = await handler.drain(config.RUNTIME_SHUTDOWN_TIMEOUT_MS);
        await wireClosed;
        if (!drained) logger.warn({ inFlight: handler.inFlight }, 'shutdown timeout: closing with requests in flight');
        server.closeAllConnections();
        await stopListening;
        internal.closeAllConnections();
        await new Promise<void>((r) => internal.close(() => r()));
        closed = true;
        await pools?.close(drained ? 5_000 : 0);
        await terminator?.close();
        await control.end().catch(() => undefined);
        if (ownsKv) await kv.close();
        logger.info('tenant runtime stopped');
      })();
      return closing;
    },
  };
}

/**
 * The privileged path that ends abandoned backends, by RUNTIME_TERMINATOR_SECRET_REF: the role whose
 * login is in the secret store under that ref (the local driver creates it), or with `iam:<user>`
 * that user on each backend's own cluster with an IAM token (the AWS driver creates it). See
 * terminatorLoginFor.
 */
function terminatorFor(config: RuntimeConfig, secrets: SecretStore): BackendTerminator | null {
  const login = terminatorLoginFor(config.RUNTIME_TERMINATOR_SECRET_REF, { secrets, region: config.AWS_REGION });
  return login && new PgBackendTerminator(login, { connectTimeoutMs: config.RUNTIME_CONNECT_TIMEOUT_MS });
}

/** Listens and returns the URL to reach the listener at (a wildcard host becomes loopback). */
function listen(server: Server, port: number, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
      resolve(`http://${h.includes(':') ? `[${h}]` : h}:${bound}`);
    });
  });
}

/** Error fields safe to log: pg connection errors never carry the password, but keep it minimal anyway. */
function errSummary(err: unknown): Record<string, unknown> {
  const e = err as { message?: string; code?: string };
  return { message: e?.message, code: e?.code };
}
