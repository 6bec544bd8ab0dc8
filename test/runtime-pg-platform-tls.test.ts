import { Client, ClientConfig } from 'pg';
import { createCa, issueServerCert, PemPair } from '../provisioning/local/tenant-certs';
import type { RunningTenantRuntime } from '../tenant-runtime/server';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';
import { createTenants, issueKey, SeededTenant, startTestRuntime } from './support/runtime-fixtures';

/**
 * The front door as the platform stack runs it (infra/platform-stack.ts): certificate and key as
 * PEM text in the environment (ECS injects them from Secrets Manager), and SNI names under a
 * domain of their own (RUNTIME_PG_BASE_DOMAIN), since `*.<RUNTIME_BASE_DOMAIN>` is the HTTP ALB's.
 */
describe('PostgreSQL front door with the platform stack\'s TLS settings', () => {
  let cp: TestControlPlane;
  let rt: RunningTenantRuntime;
  let acme: SeededTenant;
  let bravo: SeededTenant;
  const keys = new Map<string, string>();
  let ca: PemPair;

  const connect = async (servername: string, user: string, key: string): Promise<Client> => {
    const cfg: ClientConfig = { host: '127.0.0.1', port: rt.pg?.port, user, password: key, database: 'app', ssl: { ca: ca.certPem, servername } };
    const c = new Client(cfg);
    c.on('error', () => undefined);
    await c.connect();
    return c;
  };
  const roleOf = async (c: Client) => {
    try {
      return (await c.query<{ role: string }>('SELECT current_user AS role')).rows[0]?.role;
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    ca = await createCa('platform front door test CA');
    const server = await issueServerCert(ca, ['*.db.silo.test', '*.tenants.silo.test']);
    cp = await startTestControlPlane();
    [acme, bravo] = (await createTenants(cp, [{ slug: 'acme' }, { slug: 'bravo' }])) as [SeededTenant, SeededTenant];
    for (const t of [acme, bravo]) keys.set(t.slug, (await issueKey(cp, t)).key);
    rt = await startTestRuntime(cp, {
      // As Secrets Manager may hold it when pasted on one line: the key with its newlines written out.
      RUNTIME_PG_TLS_CERT_PEM: server.certPem,
      RUNTIME_PG_TLS_KEY_PEM: server.keyPem.replace(/\n/g, '\\n'),
      RUNTIME_BASE_DOMAIN: 'tenants.silo.test',
      RUNTIME_PG_BASE_DOMAIN: 'db.silo.test',
    });
  });
  afterAll(async () => {
    await rt?.close();
    await cp?.close();
  });

  it('serves TLS from the PEM variables and routes <slug>.<RUNTIME_PG_BASE_DOMAIN> by SNI, whatever the user name', async () => {
    const c = await connect('acme.db.silo.test', 'app_user', keys.get('acme')!);
    expect((c as unknown as { connection: { stream: { encrypted?: boolean } } }).connection.stream.encrypted).toBe(true);
    expect(await roleOf(c)).toBe(acme.role);
    expect(await roleOf(await connect('bravo.db.silo.test', 'app_user', keys.get('bravo')!))).toBe(bravo.role);
  });

  it('no longer reads a tenant from SNI under the HTTP base domain: the user name decides', async () => {
    // SNI acme.tenants.silo.test is not under db.silo.test, so the user name (bravo) names the tenant.
    const c = await connect('acme.tenants.silo.test', 'bravo', keys.get('bravo')!);
    expect(await roleOf(c)).toBe(bravo.role);
    // And acme's key for that name is refused: SNI did not pick acme.
    await expect(connect('acme.tenants.silo.test', 'bravo', keys.get('acme')!)).rejects.toMatchObject({ code: '28P01' });
  });
});
