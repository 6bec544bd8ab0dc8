import { createHash, createHmac } from 'node:crypto';
import { RDS_IAM_TLS, RdsIamTokens, tenantLogin } from './rds-iam-token';

// Static fake credentials: signing is offline, nothing here reaches AWS.
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const HOST = 'silo-tenant-0f8e2c1a.cluster-c9akciq32ltz.eu-west-1.rds.amazonaws.com';

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');

/** SigV4 query-string signature, computed here by hand from the AWS specification (not by the SDK). */
function expectedSignature(host: string, port: number, params: URLSearchParams, secret: string): string {
  const query = [...params.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`)
    .sort()
    .join('&');
  const canonical = ['GET', '/', query, `host:${host}:${port}`, '', 'host', sha256('')].join('\n');
  const date = params.get('X-Amz-Date') as string;
  const scope = (params.get('X-Amz-Credential') as string).split('/').slice(1).join('/');
  const toSign = ['AWS4-HMAC-SHA256', date, scope, sha256(canonical)].join('\n');
  const [day, region, service] = scope.split('/');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
  return hmac(key, toSign).toString('hex');
}

describe('RdsIamTokens', () => {
  it('signs a SigV4-presigned rds-db connect URL for the host, port, user and region', async () => {
    const before = new Date();
    const token = await new RdsIamTokens(CREDENTIALS).token({ host: HOST, port: 5432, username: 'tenant_app', region: 'eu-west-1' });

    expect(token.startsWith(`${HOST}:5432/?`)).toBe(true);
    expect(token).not.toMatch(/^https?:/);
    const params = new URL(`https://${token}`).searchParams;
    expect(params.get('Action')).toBe('connect');
    expect(params.get('DBUser')).toBe('tenant_app');
    expect(params.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(params.get('X-Amz-Expires')).toBe('900');
    expect(params.get('X-Amz-SignedHeaders')).toBe('host');
    const day = before.toISOString().slice(0, 10).replace(/-/g, '');
    expect(params.get('X-Amz-Credential')).toMatch(new RegExp(`^AKIDEXAMPLE/(${day}|\\d{8})/eu-west-1/rds-db/aws4_request$`));
    expect(params.get('X-Amz-Signature')).toBe(expectedSignature(HOST, 5432, params, CREDENTIALS.secretAccessKey));
    expect(token).not.toContain(CREDENTIALS.secretAccessKey);
  });

  it('signs for exactly what it is given: another user, port or region gives another signature', async () => {
    const tokens = new RdsIamTokens(CREDENTIALS);
    const base = { host: HOST, port: 5432, username: 'tenant_app', region: 'eu-west-1' };
    const sig = async (r: typeof base) => new URL(`https://${await tokens.token(r)}`).searchParams.get('X-Amz-Signature');
    const signatures = await Promise.all([sig(base), sig({ ...base, username: 'silo_admin' }), sig({ ...base, port: 6543 }), sig({ ...base, region: 'us-east-1' })]);
    expect(new Set(signatures).size).toBe(4);
    expect(await tokens.token({ ...base, port: 6543 })).toMatch(new RegExp(`^${HOST.replace(/\./g, '\\.')}:6543/\\?`));
  });

  it('resolves a credential provider through the one instance, and fails when it fails', async () => {
    let calls = 0;
    const tokens = new RdsIamTokens(async () => {
      calls++;
      return CREDENTIALS;
    });
    await tokens.token({ host: HOST, port: 5432, username: 'tenant_app', region: 'eu-west-1' });
    expect(calls).toBeGreaterThan(0);
    await expect(new RdsIamTokens(async () => { throw new Error('no credentials'); })
      .token({ host: HOST, port: 5432, username: 'tenant_app', region: 'eu-west-1' })).rejects.toThrow('no credentials');
  });
});

describe('tenantLogin', () => {
  const tokens = new RdsIamTokens(CREDENTIALS);

  it('for an IAM secret: a fresh token for the connect target as the password, and verified TLS', async () => {
    const secret = { username: 'tenant_app', password: '', auth: 'iam' as const, region: 'eu-west-1' };
    const login = await tenantLogin(secret, { host: HOST, port: 5432, user: 'tenant_app' }, tokens);
    expect(login.ssl).toEqual({ rejectUnauthorized: true });
    expect(login.ssl).toBe(RDS_IAM_TLS);
    expect(login.password.startsWith(`${HOST}:5432/?Action=connect&DBUser=tenant_app&`)).toBe(true);
  });

  it('for a password secret: its password and its TLS options, no token', async () => {
    expect(await tenantLogin({ username: 'u', password: 'pw' }, { host: 'h', port: 5432, user: 'u' }, tokens)).toEqual({ password: 'pw', ssl: undefined });
    const withCert = { username: 'u', password: 'pw', sslCert: 'C', sslKey: 'K', sslCa: 'A' };
    expect(await tenantLogin(withCert, { host: 'h', port: 5432, user: 'u' }, tokens)).toEqual({ password: 'pw', ssl: { cert: 'C', key: 'K', ca: 'A', rejectUnauthorized: true } });
  });
});
