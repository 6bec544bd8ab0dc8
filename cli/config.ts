import { resolve } from 'node:path';
import { z } from 'zod';
import { parseEnv } from '../common/config-schema';
import { embeddedEnv, localStateDir, readLocalState } from '../common/local-state';
import { controlShape, refineControl } from '../control-plane/config';
import { defaultMigrationsDir } from '../migrations/tenant-migration';

/**
 * The CLI's configuration: the control plane's shared variables (no ADMIN_TOKEN: the CLI talks to
 * the databases and secret store directly, never to the HTTP API). The one place the CLI reads
 * the environment.
 */
const schema = z.object({ ...controlShape }).superRefine(refineControl);

export type CliConfig = z.infer<typeof schema>;

/**
 * What `npm start` (scripts/start.ts) would run with, so the CLI sees the same fleet. Without
 * DATABASE_URL, a running `npm start` (embedded mode) is used through `.silo/state.json`. With
 * DATABASE_URL, `.silo/state.json` still supplies the generated secrets npm start takes from it
 * (SILO_MASTER_KEY, SILO_DIRECTORY_KEY, ...), never the database URLs. A variable that is set wins.
 */
export function cliEnvironment(env: Readonly<Record<string, string | undefined>>, cwd: string): { env: Record<string, string>; embedded: boolean } {
  const given = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
  const state = readLocalState(cwd);
  if (!state) return { env: given, embedded: false };
  const defaults = embeddedEnv(state, localStateDir(cwd));
  if (!given.DATABASE_URL) return { env: { ...defaults, ...given }, embedded: true };
  const { DATABASE_URL: _db, TENANT_DATABASE_URL: _tenants, TENANT_DATABASE_CA_DIR: _ca, ...secrets } = defaults;
  return { env: { ...secrets, ...given }, embedded: false };
}

/** Throws SiloError CONFIG_INVALID listing every bad or missing variable. */
export function loadCliConfig(env: Readonly<Record<string, string | undefined>>, cwd: string): CliConfig & { embedded: boolean } {
  const resolved = cliEnvironment(env, cwd);
  return { ...parseEnv(schema, resolved.env, 'silo CLI'), embedded: resolved.embedded };
}

/** `--dir`, else SILO_TENANT_MIGRATIONS_DIR, else the shipped `migrations/tenant`. Needs no database settings. */
export function tenantMigrationsDir(env: Readonly<Record<string, string | undefined>>, cwd: string, flag?: string): string {
  const chosen = flag || env.SILO_TENANT_MIGRATIONS_DIR;
  return chosen ? resolve(cwd, chosen) : defaultMigrationsDir();
}

/** SILO_DEBUG=1 prints stack traces of unexpected errors. */
export function debugEnabled(env: Readonly<Record<string, string | undefined>>): boolean {
  return env.SILO_DEBUG === '1' || env.SILO_DEBUG === 'true';
}
