import { randomBytes } from 'node:crypto';

/** Labels a tenant may never take: they collide with our own hostnames or confuse users. */
export const RESERVED_SLUGS = new Set([
  'admin', 'api', 'www', 'system', 'app', 'apps', 'root', 'silo', 'status', 'docs', 'help', 'support', 'billing',
  'mail', 'smtp', 'ftp', 'dashboard', 'console', 'internal', 'static', 'assets', 'cdn', 'auth', 'login', 'tenants',
  'health', 'metrics', 'webhooks', 'postgres', 'template', 'test', 'localhost',
]);

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$/;

export function slugProblem(slug: string): string | null {
  if (!DNS_LABEL.test(slug)) return 'must be 3-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit';
  if (slug.includes('--')) return 'must not contain consecutive hyphens';
  if (RESERVED_SLUGS.has(slug)) return 'is reserved';
  return null;
}

/** A DNS-safe label from free text (a company name, an email's local part). Never empty. */
export function deriveSlug(source: string | null | undefined): string {
  const base = (source ?? '')
    .split('@')[0]
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  if (base.length >= 3 && !slugProblem(base)) return base;
  return `tenant-${randomBytes(3).toString('hex')}${base ? `-${base}` : ''}`.slice(0, 63).replace(/-+$/, '');
}

/** `base`, or `base-2`, `base-3`... capped to 63 chars. */
export function withSuffix(base: string, n: number): string {
  if (n <= 1) return base;
  const suffix = `-${n}`;
  return base.slice(0, 63 - suffix.length).replace(/-+$/, '') + suffix;
}

/** A slug that names nobody: held by a tenant billing created before payment (see SlugSource.Unpaid). */
export function placeholderSlug(): string {
  return `pending-${randomBytes(8).toString('hex')}`;
}
