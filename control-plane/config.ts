import { z } from 'zod';
import { bool, logLevel, masterKey, parseEnv, port, positiveInt, postgresUrl, redisUrl, signingKeys } from '../common/config-schema';
import { ROLES } from './common/permissions';

/** Variables shared by the control plane and the `silo` CLI (which drives the same drivers and stores). */
/** periodic_tasks.interval_ms is a 32-bit integer: about 24.8 days. */
const MAX_INTERVAL_SECONDS = 2_147_483;

export const controlShape = {
  DATABASE_URL: postgresUrl(),
  DATABASE_POOL_SIZE: positiveInt(10),
  REDIS_URL: redisUrl().optional(),
  /** Signs what is published to Redis (directory entries, key records); the runtime holds the same key. Comma-separated to roll it. */
  SILO_DIRECTORY_KEY: signingKeys(),
  LOG_LEVEL: logLevel(),
  STRIPE_WEBHOOK_SECRET: z.string().optional().transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : [])),
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: positiveInt(300),
  /** Stripe API key (`sk_…`, or a restricted `rk_…` that may read subscriptions and customers). Optional: only the billing reconciler calls the API. */
  STRIPE_SECRET_KEY: z.string().optional(),
  /** For tests and mocks only (a local fake, stripe-mock): the Stripe API's base URL, e.g. `http://127.0.0.1:12111`. Unset: Stripe's own. */
  STRIPE_API_BASE_URL: z.string().url().optional(),
  /** How often one worker of the fleet reconciles billing with Stripe when STRIPE_SECRET_KEY is set (0: never). */
  BILLING_RECONCILE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(MAX_INTERVAL_SECONDS).default(3600),
  WEBHOOK_MAX_BODY_BYTES: positiveInt(1024 * 1024),
  TIERS_FILE: z.string().optional(),
  DEFAULT_TIER: z.string().default('starter'),
  DEFAULT_REGION: z.string().default('local'),
  SUSPEND_GRACE_PERIOD_SECONDS: z.coerce.number().int().min(0).default(3 * 24 * 3600),
  OFFBOARD_RETENTION_DAYS: z.coerce.number().min(0).default(30),
  /** `payment`: a subscription's tenant is provisioned once Stripe says it is paid (active/trialing, invoice.paid, a paid checkout); `subscription`: on any live subscription, e.g. incomplete (trial-first operators). */
  BILLING_PROVISION_ON: z.enum(['payment', 'subscription']).default('payment'),
  /** A tenant created from a subscription event waits this long for its checkout session (which names the customer) before provisioning; a checkout or a requested tenant_slug starts it at once. */
  BILLING_CHECKOUT_WAIT_SECONDS: z.coerce.number().int().min(0).default(15),
  /** The web console (control plane only; here so the CLI's copy of this config type-checks): a session ends after this long without a request (docs/operators.md). */
  CONSOLE_SESSION_IDLE_MINUTES: positiveInt(30),
  /** A console session ends this long after sign-in, however busy. */
  CONSOLE_SESSION_MAX_HOURS: positiveInt(12),
  PROVISIONING_DRIVER: z.enum(['local', 'aws']).default('local'),
  /**
   * Runtime replicas serving tenants at once. A tenant's role gets CONNECTION LIMIT = the tier's
   * connectionLimit (each replica's cap) × RUNTIME_REPLICAS + TENANT_CONNECTION_RESERVE (provisioning/connection-budget.ts).
   */
  RUNTIME_REPLICAS: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(10_000, 'must be at most 10000').default(1),
  /** Connections a tenant's role keeps beyond the runtime replicas' pools, for `silo migrate` (one per tenant) and admin sessions. */
  TENANT_CONNECTION_RESERVE: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1: silo migrate needs a connection of its own').max(10_000, 'must be at most 10000').default(2),
  TENANT_DATABASE_URL: postgresUrl().optional(),
  /** Host/port tenant apps and the runtime use to reach tenant databases (defaults to TENANT_DATABASE_URL's). */
  TENANT_DATABASE_PUBLIC_HOST: z.string().optional(),
  /**
   * CA (ca.crt + ca.key) of a tenant server Silo runs (npm start's embedded one): the local driver
   * then issues each tenant role a client certificate, the only way such a server lets it in.
   */
  TENANT_DATABASE_CA_DIR: z.string().optional(),
  SECRET_STORE: z.enum(['local', 'aws']).default('local'),
  SILO_MASTER_KEY: masterKey().optional(),
  SILO_TENANT_SECRET_PREFIX: z.string().default('silo/tenants/'),
  SILO_TENANT_MIGRATIONS_DIR: z.string().optional(),
  EXPORT_DIR: z.string().default('.silo/exports'),
  SECRET_RECOVERY_WINDOW_DAYS: z.coerce.number().int().min(0).max(30).default(7),
  JOB_WORKER_ENABLED: bool(true),
  JOB_CONCURRENCY: positiveInt(4),
  JOB_POLL_INTERVAL_MS: positiveInt(500),
  JOB_LEASE_SECONDS: positiveInt(300),
  JOB_MAX_ATTEMPTS: positiveInt(8),
  RECONCILE_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(MAX_INTERVAL_SECONDS).default(300),
  /** How often each worker measures tenant databases against their tier's storage quota (0: never). */
  STORAGE_SWEEP_INTERVAL_SECONDS: z.coerce.number().int().min(0).max(MAX_INTERVAL_SECONDS).default(300),
  // AWS driver (only read when PROVISIONING_DRIVER=aws or SECRET_STORE=aws)
  AWS_REGION: z.string().optional(),
  TERRAFORM_BIN: z.string().default('terraform'),
  TERRAFORM_TIMEOUT_SECONDS: positiveInt(3600),
  CDKTF_OUTDIR: z.string().default('cdktf.out'),
  TENANT_STATE_BUCKET: z.string().optional(),
  TENANT_STATE_LOCK_TABLE: z.string().optional(),
  AWS_TENANT_VPC_ID: z.string().optional(),
  AWS_TENANT_SUBNET_IDS: z.string().optional().transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : [])),
  AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS: z.string().optional().transform((v) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : [])),
  AURORA_ENGINE_VERSION: z.string().default('16.4'),
  /**
   * pg_dump for offboarding exports (local driver). `auto`: the one on PATH, or, when PATH has none
   * or one older than the server, the WebAssembly pg_dump 18 from npm (@electric-sql/pglite-tools;
   * the embedded PostgreSQL ships no pg_dump). `bundled`: that one always. Anything else: that binary only.
   */
  PG_DUMP_BIN: z.string().default('auto'),
  /** Unset: `silo_tenant_template_<hash of the instance id>`, or the legacy shared name for an installation that already uses it (provisioning/local/template-name.ts). */
  TENANT_TEMPLATE_DATABASE: z.string().optional(),
  /** Marks this installation's tenant databases/roles; default: the control database's name. */
  SILO_INSTANCE_ID: z.string().regex(/^[A-Za-z0-9_.-]{1,63}$/).optional(),
};

type Shared = z.infer<z.ZodObject<typeof controlShape>>;

/** Cross-variable rules: which drivers need which settings. */
export function refineControl(c: Shared, ctx: z.RefinementCtx): void {
  const need = (key: string, why: string) => ctx.addIssue({ code: 'custom', path: [key], message: `required ${why}` });
    if (c.SECRET_STORE === 'local' && !c.SILO_MASTER_KEY) need('SILO_MASTER_KEY', 'when SECRET_STORE=local');
    if (c.REDIS_URL && !c.SILO_DIRECTORY_KEY.length) need('SILO_DIRECTORY_KEY', 'when REDIS_URL is set (the same value on the runtime)');
    if (c.PROVISIONING_DRIVER === 'aws' || c.SECRET_STORE === 'aws') {
      if (!c.AWS_REGION) need('AWS_REGION', 'for the aws driver or secret store');
    }
    if (c.PROVISIONING_DRIVER === 'aws') {
      if (!c.TENANT_STATE_BUCKET) need('TENANT_STATE_BUCKET', 'when PROVISIONING_DRIVER=aws');
      if (!c.TENANT_STATE_LOCK_TABLE) need('TENANT_STATE_LOCK_TABLE', 'when PROVISIONING_DRIVER=aws');
      if (!c.AWS_TENANT_VPC_ID) need('AWS_TENANT_VPC_ID', 'when PROVISIONING_DRIVER=aws');
      if (c.AWS_TENANT_SUBNET_IDS.length < 2) need('AWS_TENANT_SUBNET_IDS', '(two or more, comma-separated) when PROVISIONING_DRIVER=aws');
      if (c.AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS.length < 1) need('AWS_TENANT_DB_ALLOWED_SECURITY_GROUP_IDS', 'when PROVISIONING_DRIVER=aws');
    }
}

/** The console's single sign-on (OpenID Connect, control-plane/console/oidc.service.ts): all four set, or none. */
const oidcShape = {
  /** The provider's issuer URL (or its `/.well-known/openid-configuration` URL); discovered on the first SSO sign-in. */
  CONSOLE_OIDC_ISSUER: z.string().url().optional(),
  CONSOLE_OIDC_CLIENT_ID: z.string().optional(),
  /** Secret: never logged. */
  CONSOLE_OIDC_CLIENT_SECRET: z.string().optional(),
  /** This control plane's callback as the provider knows it, e.g. `https://silo.example.com/console/oidc/callback`. */
  CONSOLE_OIDC_REDIRECT_URL: z.string().url().refine((u) => new URL(u).pathname === '/console/oidc/callback', 'must end in /console/oidc/callback').optional(),
  /** Role of an operator created on their first SSO sign-in; unset: only existing operators may sign in. */
  CONSOLE_OIDC_DEFAULT_ROLE: z.enum(ROLES).optional(),
};
const OIDC_REQUIRED = ['CONSOLE_OIDC_ISSUER', 'CONSOLE_OIDC_CLIENT_ID', 'CONSOLE_OIDC_CLIENT_SECRET', 'CONSOLE_OIDC_REDIRECT_URL'] as const;

/** Settings of the console's single sign-on, or null when it is off. */
export interface ConsoleOidcConfig {
  issuer: string;
  clientId: string;
  clientSecret: string;
  redirectUrl: string;
  defaultRole: (typeof ROLES)[number] | null;
}

const schema = z
  .object({
    HOST: z.string().default('127.0.0.1'),
    CONTROL_PLANE_PORT: port(3000),
    ADMIN_TOKEN: z.string().min(24, 'must be at least 24 characters'),
    ...controlShape,
    ...oidcShape,
  })
  .superRefine(refineControl)
  .superRefine((c, ctx) => {
    const set = OIDC_REQUIRED.filter((k) => c[k] !== undefined);
    if (set.length === 0 && c.CONSOLE_OIDC_DEFAULT_ROLE) ctx.addIssue({ code: 'custom', path: ['CONSOLE_OIDC_DEFAULT_ROLE'], message: `needs ${OIDC_REQUIRED.join(', ')}` });
    if (set.length === 0 || set.length === OIDC_REQUIRED.length) return;
    for (const k of OIDC_REQUIRED) if (c[k] === undefined) ctx.addIssue({ code: 'custom', path: [k], message: `required with ${set.join(', ')} (single sign-on needs all of ${OIDC_REQUIRED.join(', ')})` });
  });

export type ControlPlaneConfig = z.infer<typeof schema>;

/** The console's single sign-on settings, or null when CONSOLE_OIDC_* are unset (the schema allows all or none). */
export function consoleOidc(c: Partial<Pick<ControlPlaneConfig, keyof typeof oidcShape>>): ConsoleOidcConfig | null {
  if (!c.CONSOLE_OIDC_ISSUER || !c.CONSOLE_OIDC_CLIENT_ID || !c.CONSOLE_OIDC_CLIENT_SECRET || !c.CONSOLE_OIDC_REDIRECT_URL) return null;
  return { issuer: c.CONSOLE_OIDC_ISSUER, clientId: c.CONSOLE_OIDC_CLIENT_ID, clientSecret: c.CONSOLE_OIDC_CLIENT_SECRET, redirectUrl: c.CONSOLE_OIDC_REDIRECT_URL, defaultRole: c.CONSOLE_OIDC_DEFAULT_ROLE ?? null };
}

export function loadControlPlaneConfig(env: Record<string, string | undefined>): ControlPlaneConfig {
  return parseEnv(schema, env, 'control plane');
}
