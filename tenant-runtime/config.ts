import { z } from 'zod';
import { bool, logLevel, masterKey, parseEnv, port, positiveInt, postgresUrl, redisUrl, signingKeys } from '../common/config-schema';

const ms = (def: number) => z.coerce.number().int().min(0).default(def);

const schema = z
  .object({
    HOST: z.string().default('127.0.0.1'),
    RUNTIME_PORT: port(4000),
    /** The internal listener for /metrics (and health checks): keep it off the load balancer. 0 = any free port. */
    RUNTIME_METRICS_PORT: port(9464),
    RUNTIME_METRICS_HOST: z.string().default('127.0.0.1'),
    /** The PostgreSQL wire-protocol front door (docs/runtime.md, "Connect with any PostgreSQL client"). 0 = any free port. */
    RUNTIME_PG_ENABLED: bool(true),
    RUNTIME_PG_PORT: port(6432),
    /** Defaults to HOST. */
    RUNTIME_PG_HOST: z.string().optional(),
    /** PEM certificate (chain) and key files for TLS on the front door; without them SSLRequest is answered 'N'. */
    RUNTIME_PG_TLS_CERT: z.string().optional(),
    RUNTIME_PG_TLS_KEY: z.string().optional(),
    /**
     * The same certificate (chain) and key as PEM text, for platforms that inject secrets as
     * environment variables (ECS from Secrets Manager); a literal `\n` stands for a newline. Use
     * either these or the files. The key is a secret: never logged.
     */
    RUNTIME_PG_TLS_CERT_PEM: z.string().optional(),
    RUNTIME_PG_TLS_KEY_PEM: z.string().optional(),
    /** TLS server names `<slug>.<this>` name a tenant on the front door; defaults to RUNTIME_BASE_DOMAIN (production: a name of its own, since `*.<base domain>` resolves to the HTTP load balancer). */
    RUNTIME_PG_BASE_DOMAIN: z.string().transform((v) => v.toLowerCase().replace(/^\.+|\.+$/g, '')).optional(),
    /**
     * How the front door asks for the API key: `scram` (SCRAM-SHA-256 against the verifiers stored
     * when each key was issued; keys issued before verifiers existed must be rotated) or `password`
     * (the key itself, inside TLS).
     */
    RUNTIME_PG_AUTH: z.enum(['scram', 'password']).default('scram'),
    /** Accept an API key sent without TLS (development only): off, a client that did not negotiate TLS is refused. */
    RUNTIME_PG_ALLOW_PLAINTEXT: bool(false),
    /** Front-door client connections at once (authenticated or not); more are refused at accept. */
    RUNTIME_PG_MAX_CLIENTS: positiveInt(5_000),
    /**
     * Bytes the front door may hold for clients' prepared statements and named Parse messages in
     * transaction mode, per replica and per tenant (each client is also capped at 1 MiB): past
     * them a client that needs more gets 54000 and is let go.
     */
    RUNTIME_PG_BUFFER_BYTES: positiveInt(512 * 1024 * 1024),
    RUNTIME_PG_TENANT_BUFFER_BYTES: positiveInt(16 * 1024 * 1024),
    /**
     * A backend session idle inside a transaction this long is ended by PostgreSQL
     * (idle_in_transaction_session_timeout, set on every tenant connection): a front-door client
     * cannot hold a pooled backend by opening a transaction and going quiet. 0 = off.
     */
    RUNTIME_IDLE_IN_TRANSACTION_TIMEOUT_MS: ms(60_000),
    /** The control database: the directory's source of truth (the runtime only reads it). */
    DATABASE_URL: postgresUrl(),
    RUNTIME_CONTROL_POOL_SIZE: positiveInt(4),
    REDIS_URL: redisUrl().optional(),
    /** Verifies (and signs write-throughs of) directory and key records in Redis: the control plane's key. Comma-separated to roll it. */
    SILO_DIRECTORY_KEY: signingKeys(),
    LOG_LEVEL: logLevel(),
    RUNTIME_ACCESS_LOG: bool(true),
    /** `<slug>.<base domain>` routes to a tenant. */
    RUNTIME_BASE_DOMAIN: z.string().default('localhost').transform((v) => v.toLowerCase().replace(/^\.+|\.+$/g, '')),
    /** Connection budget per replica, across all tenants. */
    RUNTIME_MAX_CONNECTIONS: positiveInt(100),
    /** Cap on one tenant's pool (the tier's connectionLimit applies below it). */
    RUNTIME_MAX_CONNECTIONS_PER_TENANT: positiveInt(20),
    RUNTIME_ACQUIRE_TIMEOUT_MS: positiveInt(2_000),
    RUNTIME_CONNECT_TIMEOUT_MS: positiveInt(5_000),
    /** Connections opened at once to one database server: PostgreSQL forks backends one at a time. */
    RUNTIME_MAX_CONNECTING_PER_SERVER: positiveInt(2),
    /** A tenant with two requests within this window keeps the connections it used in it while others wait on the budget. */
    RUNTIME_KEEP_WARM_MS: positiveInt(1_000),
    RUNTIME_IDLE_TIMEOUT_MS: positiveInt(30_000),
    /** A statement still running this long after its timeout is cancelled by the runtime (the server's own timeout may have been trapped or turned off). */
    RUNTIME_CANCEL_GRACE_MS: ms(250),
    /** A statement still running this long after that cancel is abandoned: socket closed, backend terminated, counted until the server shows it gone. */
    RUNTIME_TERMINATE_GRACE_MS: ms(750),
    /**
     * Secret ref of the role that terminates abandoned backends (the local driver creates it);
     * `iam:<user>`: that user on each backend's own cluster with an RDS IAM token (AWS: `iam:silo_terminator`, the AWS driver creates it);
     * `none`: no terminator (abandoned backends are only disconnected and may run on uncounted).
     */
    RUNTIME_TERMINATOR_SECRET_REF: z.string().regex(/^(?!iam:)|^iam:[a-z_][a-z0-9_]{0,62}$/, 'iam:<lowercase role name>').default('local:silo/system/backend-terminator'),
    RUNTIME_MAX_BODY_BYTES: positiveInt(1024 * 1024),
    RUNTIME_MAX_RESULT_ROWS: positiveInt(10_000),
    RUNTIME_MAX_RESULT_BYTES: positiveInt(10 * 1024 * 1024),
    RUNTIME_MAX_STATEMENTS: positiveInt(100),
    /** Directory and key cache (in process): entries, freshness while invalidations flow, and while they do not. */
    RUNTIME_DIRECTORY_CACHE_SIZE: positiveInt(10_000),
    RUNTIME_DIRECTORY_TTL_MS: positiveInt(30_000),
    RUNTIME_DEGRADED_TTL_MS: positiveInt(500),
    RUNTIME_NEGATIVE_TTL_MS: positiveInt(1_000),
    /** How long a cached entry may still be served when every source (Redis, control DB) fails. */
    RUNTIME_STALE_IF_ERROR_MS: ms(300_000),
    /** Tenants that get their own metrics label (others are counted under `_other`). */
    RUNTIME_METRICS_TENANT_LABELS: z.coerce.number().int().min(0).default(100),
    RUNTIME_SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
    /** When false (default) a Redis outage shows in /health/ready but keeps the replica in rotation. */
    RUNTIME_READY_REQUIRES_CACHE: bool(false),
    TIERS_FILE: z.string().optional(),
    DEFAULT_TIER: z.string().default('starter'),
    SECRET_STORE: z.enum(['local', 'aws']).default('local'),
    SILO_MASTER_KEY: masterKey().optional(),
    SILO_TENANT_SECRET_PREFIX: z.string().default('silo/tenants/'),
    AWS_REGION: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    if (c.SECRET_STORE === 'local' && !c.SILO_MASTER_KEY) ctx.addIssue({ code: 'custom', path: ['SILO_MASTER_KEY'], message: 'required when SECRET_STORE=local' });
    if (c.REDIS_URL && !c.SILO_DIRECTORY_KEY.length) ctx.addIssue({ code: 'custom', path: ['SILO_DIRECTORY_KEY'], message: 'required when REDIS_URL is set (the control plane\'s value)' });
    if (Boolean(c.RUNTIME_PG_TLS_CERT) !== Boolean(c.RUNTIME_PG_TLS_KEY)) ctx.addIssue({ code: 'custom', path: [c.RUNTIME_PG_TLS_CERT ? 'RUNTIME_PG_TLS_KEY' : 'RUNTIME_PG_TLS_CERT'], message: 'RUNTIME_PG_TLS_CERT and RUNTIME_PG_TLS_KEY go together' });
    if (Boolean(c.RUNTIME_PG_TLS_CERT_PEM) !== Boolean(c.RUNTIME_PG_TLS_KEY_PEM)) ctx.addIssue({ code: 'custom', path: [c.RUNTIME_PG_TLS_CERT_PEM ? 'RUNTIME_PG_TLS_KEY_PEM' : 'RUNTIME_PG_TLS_CERT_PEM'], message: 'RUNTIME_PG_TLS_CERT_PEM and RUNTIME_PG_TLS_KEY_PEM go together' });
    if (c.RUNTIME_PG_TLS_CERT && c.RUNTIME_PG_TLS_CERT_PEM) ctx.addIssue({ code: 'custom', path: ['RUNTIME_PG_TLS_CERT_PEM'], message: 'set the front door\'s TLS material either as files (RUNTIME_PG_TLS_CERT/KEY) or as PEM text (RUNTIME_PG_TLS_CERT_PEM/KEY_PEM), not both' });
    if (c.SECRET_STORE === 'aws' && !c.AWS_REGION) ctx.addIssue({ code: 'custom', path: ['AWS_REGION'], message: 'required when SECRET_STORE=aws' });
  });

export type RuntimeConfig = z.infer<typeof schema>;

/** Parses the runtime's settings from an env record (the composition root passes process.env). */
export function loadRuntimeConfig(env: Record<string, string | undefined>): RuntimeConfig {
  return parseEnv(schema, env, 'tenant runtime');
}
