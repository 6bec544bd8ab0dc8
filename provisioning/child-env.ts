/**
 * The environment a child process (pg_dump, terraform) gets: an allowlist, never this process's
 * whole environment. Silo's own secrets (ADMIN_TOKEN, SILO_MASTER_KEY, SILO_DIRECTORY_KEY,
 * STRIPE_WEBHOOK_SECRET), database and Redis URLs and the control database's PGPASSWORD stay here.
 */
export interface ChildEnvRule {
  /** Variables passed through by exact name, on top of the OS basics. */
  names?: readonly string[];
  /** Variables passed through by prefix. */
  prefixes?: readonly string[];
}

const BASE_NAMES = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR', 'TERM'];
const BASE_PREFIXES = ['LC_'];

/** What terraform and its AWS provider need: credentials (env, ECS task role, web identity), region, proxies, CA bundle, TF_* settings. */
export const TERRAFORM_ENV: ChildEnvRule = {
  names: ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'ECS_CONTAINER_METADATA_URI', 'ECS_CONTAINER_METADATA_URI_V4'],
  prefixes: ['AWS_', 'TF_'],
};

/** `parent` filtered by the OS basics and `rule`, then `set` on top (explicit values always win). */
export function childEnv(parent: NodeJS.ProcessEnv, rule: ChildEnvRule = {}, set: Record<string, string> = {}): Record<string, string> {
  const names = new Set([...BASE_NAMES, ...(rule.names ?? [])]);
  const prefixes = [...BASE_PREFIXES, ...(rule.prefixes ?? [])];
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parent)) {
    if (v !== undefined && (names.has(k) || prefixes.some((p) => k.startsWith(p)))) out[k] = v;
  }
  return { ...out, ...set };
}
