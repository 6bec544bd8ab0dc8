/** How a request names its tenant. */
export type TenantRef = { kind: 'slug'; slug: string; via: 'host' | 'path' | 'connection-string' } | { kind: 'domain'; domain: string };

export interface Resolution {
  /** null: the request names no tenant (health checks, or a bare runtime host). */
  ref: TenantRef | null;
  /** The route with any `/tenants/<slug>` prefix removed, without the query string. */
  route: string;
  /** Two sources name different tenants (e.g. `a.<base>` host and `/tenants/b/…` path). */
  conflict: boolean;
}

const SLUG = /^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export const isValidSlug = (s: string): boolean => SLUG.test(s);

/**
 * Finds the tenant a request is for, without any I/O: `/tenants/<slug>/…` path, else a
 * `<slug>.<base domain>` host, else the host as a custom domain (looked up in the directory).
 * A path beats a custom domain; a path and a subdomain that disagree are a conflict.
 */
export class TenantResolver {
  private readonly suffix: string;

  constructor(private readonly baseDomain: string) {
    this.suffix = `.${baseDomain}`;
  }

  resolve(hostHeader: string | undefined, url: string): Resolution {
    const q = url.indexOf('?');
    let route = q === -1 ? url : url.slice(0, q);
    let pathSlug: string | null = null;
    if (route.startsWith('/tenants/')) {
      const end = route.indexOf('/', 9);
      pathSlug = decodeURIComponentSafe(end === -1 ? route.slice(9) : route.slice(9, end)).toLowerCase();
      route = end === -1 ? '/' : route.slice(end);
    }
    const hostRef = this.fromHost(hostHeader);
    if (pathSlug !== null) {
      const conflict = hostRef?.kind === 'slug' && hostRef.slug !== pathSlug;
      return { ref: { kind: 'slug', slug: pathSlug, via: 'path' }, route, conflict };
    }
    return { ref: hostRef, route, conflict: false };
  }

  /** The tenant a Host header names, if any. */
  fromHost(hostHeader: string | undefined): TenantRef | null {
    const host = hostname(hostHeader);
    if (!host || host === this.baseDomain || host === 'localhost' || IPV4.test(host) || host.includes(':')) return null;
    if (host.endsWith(this.suffix)) return { kind: 'slug', slug: host.slice(0, -this.suffix.length), via: 'host' };
    return { kind: 'domain', domain: host };
  }
}

/** Lower-cased host without port or trailing dot; IPv6 literals keep their colons. */
export function hostname(hostHeader: string | undefined): string | null {
  if (!hostHeader) return null;
  let h = hostHeader.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  const colon = h.lastIndexOf(':');
  if (colon !== -1) h = h.slice(0, colon);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h || null;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
