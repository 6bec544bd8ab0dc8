import { InfraConfigError, loadInfraConfig, parseInfraConfig } from './config';

const problemsOf = (fn: () => unknown): string[] => {
  try {
    fn();
  } catch (e) {
    if (e instanceof InfraConfigError) return e.problems;
    throw e;
  }
  throw new Error('expected an InfraConfigError');
};

describe('infra config', () => {
  it('synthesizes with no configuration at all, using documented defaults', () => {
    const c = loadInfraConfig({}, () => {
      throw new Error('no file should be read');
    });
    expect(c).toMatchObject({
      name: 'silo',
      region: 'eu-west-1',
      availabilityZones: ['eu-west-1a', 'eu-west-1b', 'eu-west-1c'],
      domain: 'example.com',
      tenantDomain: 'tenants.example.com',
      tenantSecretPrefix: 'silo/tenants/',
      natGateways: 3,
      servicesPaused: false,
      controlPlane: { cpu: 512, memory: 1024, minTasks: 2, maxTasks: 6 },
      controlDb: { minAcu: 0.5, maxAcu: 8, instances: 2 },
    });
    expect(c.stateBackend).toBeUndefined();
  });

  it('layers env variables over the JSON file named by SILO_INFRA_CONFIG', () => {
    const file = JSON.stringify({ region: 'us-east-1', domain: 'a.example.org', runtime: { cpu: 2048, memory: 4096, minTasks: 3, maxTasks: 30 } });
    const c = loadInfraConfig(
      { SILO_INFRA_CONFIG: '/etc/silo.json', SILO_DOMAIN: 'b.example.org', SILO_IMAGE_TAG: 'abc123', SILO_SERVICES_PAUSED: 'true', SILO_INFRA_STATE_BUCKET: 'silo-platform-state-1', SILO_INFRA_STATE_LOCK_TABLE: 'silo-platform-lock' },
      (p) => (p === '/etc/silo.json' ? file : ''),
    );
    expect(c).toMatchObject({ region: 'us-east-1', domain: 'b.example.org', imageTag: 'abc123', servicesPaused: true, availabilityZones: ['us-east-1a', 'us-east-1b', 'us-east-1c'] });
    expect(c.runtime).toMatchObject({ cpu: 2048, minTasks: 3, maxTasks: 30, cpuTargetPercent: 60 });
    expect(c.stateBackend).toEqual({ bucket: 'silo-platform-state-1', lockTable: 'silo-platform-lock', key: 'platform/terraform.tfstate' });
  });

  it('lists every bad field at once', () => {
    const problems = problemsOf(() =>
      parseInfraConfig({ region: 'Europe', domain: 'Not A Domain', natGateways: 2, runtime: { cpu: 300, memory: 1024, minTasks: 4, maxTasks: 2 }, surprise: 1 }),
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^region:/),
        expect.stringMatching(/^domain:/),
        expect.stringMatching(/^natGateways:/),
        expect.stringMatching(/^runtime\.cpu:/),
        expect.stringMatching(/^\(root\): .*surprise/),
      ]),
    );
  });

  it('rejects maxTasks below minTasks', () => {
    expect(problemsOf(() => parseInfraConfig({ worker: { cpu: 256, memory: 512, minTasks: 3, maxTasks: 1 } }))).toEqual(['worker.maxTasks: maxTasks must be >= minTasks']);
  });

  it('rejects a tenant secret prefix that would cover the platform secrets', () => {
    expect(problemsOf(() => parseInfraConfig({ tenantSecretPrefix: 'silo/' }))[0]).toMatch(/^tenantSecretPrefix: must not overlap/);
    expect(problemsOf(() => parseInfraConfig({ tenantSecretPrefix: 'silo/tenants' }))[0]).toMatch(/^tenantSecretPrefix: must end with/);
  });

  it('rejects a tenant resource prefix that would cover the control database', () => {
    expect(problemsOf(() => parseInfraConfig({ tenantResourcePrefix: 'silo-' }))[0]).toMatch(/^tenantResourcePrefix: must not match/);
  });

  it('rejects a tenant domain that would capture api.<domain>', () => {
    expect(problemsOf(() => parseInfraConfig({ domain: 'example.com', tenantDomain: 'example.com' }))[0]).toMatch(/^tenantDomain:/);
  });

  it('puts the PostgreSQL front door at db.<domain> unless told otherwise (SILO_PG_DOMAIN or pgDomain)', () => {
    expect(parseInfraConfig({ domain: 'silo.example.com' }).pgDomain).toBe('db.silo.example.com');
    expect(loadInfraConfig({ SILO_PG_DOMAIN: 'pg.example.net' }).pgDomain).toBe('pg.example.net');
  });

  it('rejects a front-door domain that would shadow or compete with the HTTP names', () => {
    // Under the tenant domain, *.db.tenants.example.com would hide the tenant "db" from *.tenants.example.com.
    for (const pgDomain of ['tenants.example.com', 'db.tenants.example.com', 'example.com', 'api.example.com', 'x.api.example.com']) {
      expect({ pgDomain, problems: problemsOf(() => parseInfraConfig({ domain: 'example.com', pgDomain })) }).toEqual({ pgDomain, problems: [expect.stringMatching(/^pgDomain: /)] });
    }
    // The default collides when the tenant domain is set to db.<domain>: the message says which.
    expect(problemsOf(() => parseInfraConfig({ domain: 'example.com', tenantDomain: 'db.example.com' }))[0]).toMatch(/^pgDomain: db\.example\.com must not .* tenant domain db\.example\.com/);
    expect(parseInfraConfig({ domain: 'example.com', tenantDomain: 'db.example.com', pgDomain: 'pg.example.com' }).pgDomain).toBe('pg.example.com');
  });

  it('reports an unreadable or malformed config file', () => {
    expect(problemsOf(() => loadInfraConfig({ SILO_INFRA_CONFIG: 'x.json' }, () => '[1]'))[0]).toMatch(/^SILO_INFRA_CONFIG \(x\.json\): not a JSON object/);
    expect(problemsOf(() => loadInfraConfig({ SILO_INFRA_CONFIG: 'x.json' }, () => '{')).length).toBe(1);
  });

  it('needs both state backend variables, not one', () => {
    expect(problemsOf(() => loadInfraConfig({ SILO_INFRA_STATE_BUCKET: 'only-bucket' }))[0]).toMatch(/^stateBackend\.lockTable:/);
  });
});
