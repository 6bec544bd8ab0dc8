import { RDS_IAM_TLS, RdsIamTokens, rdsRegionOf } from '../provisioning/aws/rds-iam-token';
import type { SecretStore, TenantSecret } from '../provisioning/secrets/secret-store';
import { iamTerminatorUser, terminatorLoginFor } from './terminator-login';

// Static fake credentials: signing is offline, nothing here reaches AWS.
const tokens = new RdsIamTokens({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' });
const HOST = 'silo-tenant-0f8e2c1a.cluster-c9akciq32ltz.eu-west-1.rds.amazonaws.com';

/** Only `get` is used: the secret store port, holding one secret. */
function oneSecret(ref: string, value: TenantSecret & { database?: string }) {
  const reads: string[] = [];
  const store = {
    async get(r: string) {
      reads.push(r);
      if (r !== ref) throw new Error(`no secret ${r}`);
      return value;
    },
  } as unknown as SecretStore;
  return { store, reads };
}

const tokenParams = (token: string) => new URL(`https://${token}`).searchParams;

describe('terminatorLoginFor', () => {
  const noSecrets = oneSecret('unused', { username: 'x', password: 'y' });

  it('iam:<user>: that user on the backend\'s own host and port, a token signed for them and the endpoint\'s region, verified TLS, the maintenance database', async () => {
    const source = terminatorLoginFor('iam:silo_terminator', { secrets: noSecrets.store, region: 'us-east-1', tokens });
    const login = await (source as NonNullable<typeof source>)({ host: HOST, port: 5432 });
    expect(login).toMatchObject({ user: 'silo_terminator', database: 'postgres' });
    expect(login.ssl).toBe(RDS_IAM_TLS);
    expect(login.ssl).toEqual({ rejectUnauthorized: true });
    expect(typeof login.password).toBe('function');
    const token = await (login.password as () => Promise<string>)();
    expect(token.startsWith(`${HOST}:5432/?Action=connect&DBUser=silo_terminator&`)).toBe(true);
    // The region comes from the endpoint name, not the fallback.
    expect(tokenParams(token).get('X-Amz-Credential')).toMatch(/\/eu-west-1\/rds-db\/aws4_request$/);
    expect(noSecrets.reads).toEqual([]);
  });

  it('signs a fresh token on every call of the password (one per connect), for each server its own', async () => {
    const source = terminatorLoginFor('iam:silo_terminator', { secrets: noSecrets.store, region: 'eu-west-1', tokens }) as NonNullable<ReturnType<typeof terminatorLoginFor>>;
    const other = 'silo-tenant-9a9a9a9a.cluster-c9akciq32ltz.eu-west-1.rds.amazonaws.com';
    const a = await source({ host: HOST, port: 5432 });
    const b = await source({ host: other, port: 6543 });
    const pw = (l: typeof a) => (l.password as () => Promise<string>)();
    expect((await pw(a)).startsWith(`${HOST}:5432/?`)).toBe(true);
    expect((await pw(b)).startsWith(`${other}:6543/?`)).toBe(true);
    expect(tokenParams(await pw(b)).get('DBUser')).toBe('silo_terminator');
  });

  it('falls back to AWS_REGION for a host that is not an RDS endpoint name, and refuses without one', async () => {
    const withRegion = terminatorLoginFor('iam:silo_terminator', { secrets: noSecrets.store, region: 'eu-central-1', tokens }) as NonNullable<ReturnType<typeof terminatorLoginFor>>;
    const login = await withRegion({ host: 'db.internal', port: 5432 });
    expect(tokenParams(await (login.password as () => Promise<string>)()).get('X-Amz-Credential')).toMatch(/\/eu-central-1\/rds-db\//);
    const without = terminatorLoginFor('iam:silo_terminator', { secrets: noSecrets.store, tokens }) as NonNullable<ReturnType<typeof terminatorLoginFor>>;
    await expect(without({ host: 'db.internal', port: 5432 })).rejects.toThrow(/no region/);
  });

  it('a secret ref: the login in that secret (database defaults to postgres), no TLS options, read again each time', async () => {
    const { store, reads } = oneSecret('local:silo/system/backend-terminator', { username: 'silo_terminator_abc', password: 'pw' });
    const source = terminatorLoginFor('local:silo/system/backend-terminator', { secrets: store, region: 'eu-west-1', tokens }) as NonNullable<ReturnType<typeof terminatorLoginFor>>;
    expect(await source({ host: '127.0.0.1', port: 5432 })).toEqual({ user: 'silo_terminator_abc', password: 'pw', database: 'postgres' });
    await source({ host: '127.0.0.1', port: 5433 });
    expect(reads).toEqual(['local:silo/system/backend-terminator', 'local:silo/system/backend-terminator']);
  });

  it('none: no terminator', () => {
    expect(terminatorLoginFor('none', { secrets: noSecrets.store })).toBeNull();
  });
});

describe('iamTerminatorUser', () => {
  it('names the user after iam:, null for a secret ref, throws on anything that is not a plain role name', () => {
    expect(iamTerminatorUser('iam:silo_terminator')).toBe('silo_terminator');
    expect(iamTerminatorUser('local:silo/system/backend-terminator')).toBeNull();
    expect(iamTerminatorUser('arn:aws:secretsmanager:eu-west-1:1:secret:x')).toBeNull();
    for (const bad of ['iam:', 'iam:Silo', 'iam:a b', 'iam:x;drop role y', `iam:${'a'.repeat(64)}`]) expect(() => iamTerminatorUser(bad)).toThrow();
  });
});

describe('rdsRegionOf', () => {
  it('reads the region from RDS endpoint names only', () => {
    expect(rdsRegionOf(HOST)).toBe('eu-west-1');
    expect(rdsRegionOf('x.cluster-ro-abc.us-gov-west-1.rds.amazonaws.com')).toBe('us-gov-west-1');
    expect(rdsRegionOf('x.cluster-abc.cn-north-1.rds.amazonaws.com.cn')).toBe('cn-north-1');
    expect(rdsRegionOf('127.0.0.1')).toBeNull();
    expect(rdsRegionOf('eu-west-1.rds.amazonaws.com.evil.example')).toBeNull();
  });
});
