import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { actorFor } from '../tenants/audit-log.repository';
import { BREAK_GLASS, runAs } from './actor-context';
import { PERMISSIONS, roleCan, ROLE_PERMISSIONS, ROLES } from './permissions';

describe('role permissions', () => {
  it('gives admin every permission and keeps operators management to admin alone', () => {
    for (const p of PERMISSIONS) expect(roleCan('admin', p)).toBe(true);
    for (const role of ROLES.filter((r) => r !== 'admin')) {
      expect([role, roleCan(role, 'operators:read'), roleCan(role, 'operators:write')]).toEqual([role, false, false]);
    }
  });

  it('gives viewer only reads and billing only tenants, billing events and replay', () => {
    expect([...ROLE_PERMISSIONS.viewer].every((p) => p.endsWith(':read'))).toBe(true);
    expect([...ROLE_PERMISSIONS.billing].sort()).toEqual(['billing:read', 'billing:replay', 'tenants:read']);
    expect(roleCan('operator', 'tenants:lifecycle')).toBe(true);
    expect(roleCan('billing', 'tenants:lifecycle')).toBe(false);
  });

  it('gives an unknown role nothing', () => {
    for (const p of PERMISSIONS) expect(roleCan('root', p)).toBe(false);
  });
});

describe('docs/operators.md role table', () => {
  it('says what ROLE_PERMISSIONS says, permission by permission', () => {
    const doc = readFileSync(join(__dirname, '../../docs/operators.md'), 'utf8');
    const rows = [...doc.matchAll(/^\| `([a-z-]+:[a-z-]+)` \|[^|]*\|(.*)\|\s*$/gm)].map((m) => [m[1], m[2].split('|').map((c) => c.trim() === '✓')] as const);
    expect(rows.map(([p]) => p)).toEqual([...PERMISSIONS]);
    for (const [p, cells] of rows) expect([p, cells]).toEqual([p, ROLES.map((r) => ROLE_PERMISSIONS[r].has(p as never))]);
  });
});

describe('audit actor', () => {
  it('is the request caller for an admin cause, billing for a Stripe event, system otherwise or outside a request', () => {
    expect(actorFor({ causeType: 'admin' }).kind).toBe('system');
    expect(runAs(BREAK_GLASS, () => actorFor({ causeType: 'admin' })).kind).toBe('break-glass');
    expect(runAs(BREAK_GLASS, () => actorFor({ causeType: 'stripe_event' })).kind).toBe('billing');
    expect(runAs(BREAK_GLASS, () => actorFor({ causeType: 'system' })).kind).toBe('system');
  });
});
