import { SetMetadata } from '@nestjs/common';

/**
 * The one table of who may do what on the admin API (issue #18). Every `/v1` handler declares one
 * permission with {@link Permission}; AdminAuthGuard refuses a route that declares none and a
 * caller whose role lacks it. ADMIN_TOKEN (break-glass) holds every permission. docs/operators.md
 * has this table in prose: change both together.
 */
export const PERMISSIONS = [
  'tenants:read', // list, detail, history, jobs
  'tenants:lifecycle', // create, change tier/domain, suspend, resume, offboard, cancel an offboarding
  'tenants:retry',
  'tenants:rotate-credentials',
  'api-keys:read',
  'api-keys:write', // issue, rotate, revoke
  'billing:read', // stored webhook events and their verification
  'billing:replay', // no admin API route yet: `silo reconcile --billing` is the CLI's
  'operations:read', // periodic tasks
  'audit:read', // the fleet-wide audit log
  'operators:read', // operators and their tokens
  'operators:write', // create, change role/name, disable; issue and revoke tokens
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export const ROLES = ['admin', 'operator', 'billing', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

const READ: Permission[] = ['tenants:read', 'api-keys:read', 'billing:read', 'operations:read', 'audit:read'];

export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = {
  admin: new Set(PERMISSIONS),
  operator: new Set<Permission>([...READ, 'tenants:lifecycle', 'tenants:retry', 'tenants:rotate-credentials', 'api-keys:write', 'billing:replay']),
  billing: new Set<Permission>(['tenants:read', 'billing:read', 'billing:replay']),
  viewer: new Set<Permission>(READ),
};

export const isRole = (s: unknown): s is Role => typeof s === 'string' && (ROLES as readonly string[]).includes(s);

/** Whether `role` holds `permission`. An unknown role (a row written by a newer version) holds nothing. */
export function roleCan(role: string, permission: Permission): boolean {
  return isRole(role) && ROLE_PERMISSIONS[role].has(permission);
}

export interface RoutePermission {
  permission: Permission;
  /** Also allowed when the route's `:id` is the calling operator's own id (their own tokens). */
  self?: boolean;
}

export const PERMISSION_KEY = 'silo:permission';

/** The permission a `/v1` handler needs (read by AdminAuthGuard). */
export const Permission = (permission: Permission, opts: { self?: boolean } = {}) => SetMetadata(PERMISSION_KEY, { permission, ...opts } satisfies RoutePermission);
