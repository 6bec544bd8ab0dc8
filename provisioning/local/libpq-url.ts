/**
 * The TLS settings of a postgres:// URL, read the way libpq reads them, for the tools the local
 * driver runs on it (pg_dump: native through PG* environment variables, bundled through its own
 * TLS socket). Without this a URL's `?sslmode=verify-full&sslrootcert=…` was silently dropped.
 */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

export interface UrlTls {
  sslmode: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
}

const MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** libpq's default is prefer; node-postgres's `ssl=true` (no sslmode) means require. Unknown modes are refused, not guessed. */
export function urlTls(url: string): UrlTls {
  const q = new URL(url).searchParams;
  const raw = q.get('sslmode') ?? (['true', '1'].includes(q.get('ssl') ?? '') ? 'require' : 'prefer');
  if (!MODES.includes(raw as SslMode)) throw new Error(`unsupported sslmode "${raw}" in the database URL`);
  const tls: UrlTls = { sslmode: raw as SslMode };
  for (const k of ['sslrootcert', 'sslcert', 'sslkey'] as const) {
    const v = q.get(k);
    if (v) tls[k] = v;
  }
  return tls;
}

/** The same settings as libpq environment variables (for a native client). */
export function libpqTlsEnv(tls: UrlTls): Record<string, string> {
  return {
    PGSSLMODE: tls.sslmode,
    ...(tls.sslrootcert ? { PGSSLROOTCERT: tls.sslrootcert } : {}),
    ...(tls.sslcert ? { PGSSLCERT: tls.sslcert } : {}),
    ...(tls.sslkey ? { PGSSLKEY: tls.sslkey } : {}),
  };
}
