import { chooseTemplate, LEGACY_TEMPLATE_DATABASE, templateDatabaseName } from './template-name';

describe('template database name', () => {
  const facts = { instanceId: 'silo_control', derivedExists: false, legacyExists: false, hasTenants: false };

  it('derives a name per installation, stable for one instance id and distinct between two', () => {
    expect(templateDatabaseName('silo_control')).toMatch(/^silo_tenant_template_[0-9a-f]{12}$/);
    expect(templateDatabaseName('silo_control')).toBe(templateDatabaseName('silo_control'));
    expect(templateDatabaseName('silo_control')).not.toBe(templateDatabaseName('silo_control_2'));
    expect(templateDatabaseName('x'.repeat(63)).length).toBeLessThanOrEqual(63);
  });

  it('uses TENANT_TEMPLATE_DATABASE when set, whatever the server holds', () => {
    expect(chooseTemplate({ ...facts, configured: 'my_tpl', legacyExists: true, hasTenants: true })).toEqual({ name: 'my_tpl', source: 'configured' });
  });

  it('gives a fresh installation its own name, even when another installation left the legacy template on the server', () => {
    expect(chooseTemplate(facts)).toEqual({ name: templateDatabaseName('silo_control'), source: 'instance' });
    expect(chooseTemplate({ ...facts, legacyExists: true })).toEqual({ name: templateDatabaseName('silo_control'), source: 'instance' });
  });

  it('keeps the legacy template for an installation that already has tenants cloned from it', () => {
    expect(chooseTemplate({ ...facts, legacyExists: true, hasTenants: true })).toEqual({ name: LEGACY_TEMPLATE_DATABASE, source: 'legacy' });
  });

  it('prefers its own template once it exists, and does not look for a legacy one that is gone', () => {
    expect(chooseTemplate({ ...facts, derivedExists: true, legacyExists: true, hasTenants: true }).source).toBe('instance');
    expect(chooseTemplate({ ...facts, hasTenants: true }).source).toBe('instance');
  });
});
