import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, ensureCaFiles, issueClientCert, issueServerCert, TenantCertIssuer } from './tenant-certs';

describe('tenant certificates', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'silo-certs-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('issues a client certificate whose CN is the role, signed by the CA, for client auth only, with its own key', async () => {
    const ca = await createCa();
    const role = 't_0123456789abcdef0123456789abcdef';
    const issued = await issueClientCert(ca, role);
    const cert = new X509Certificate(issued.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.subject).toBe(`CN=${role}`);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']); // clientAuth: it cannot serve as a server certificate
    expect(cert.checkPrivateKey(createPrivateKey(issued.keyPem))).toBe(true);
    expect(cert.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(false);
    // A different CA's certificate does not verify: only this installation's CA vouches for tenants.
    expect(cert.verify(new X509Certificate((await createCa()).certPem).publicKey)).toBe(false);
  });

  it('refuses names that are not role names (the CN is what pg_hba maps to the role)', async () => {
    const ca = await createCa();
    await expect(issueClientCert(ca, 'postgres,CN=x')).rejects.toThrow(/not a role name/);
    await expect(issueClientCert(ca, '')).rejects.toThrow(/not a role name/);
  });

  it('issues the server certificate for the loopback names the runtime verifies', async () => {
    const ca = await createCa();
    const cert = new X509Certificate((await issueServerCert(ca, ['127.0.0.1', 'localhost', '::1'])).certPem);
    expect(cert.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(cert.checkHost('localhost')).toBe('localhost');
    expect(cert.checkHost('evil.example')).toBeUndefined();
    expect(cert.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('creates the CA once, key readable by its owner only, and reuses it', async () => {
    const first = await ensureCaFiles(join(dir, 'ca'));
    expect(statSync(join(dir, 'ca', 'ca.key')).mode & 0o777).toBe(0o600);
    const second = await ensureCaFiles(join(dir, 'ca'));
    expect(second).toEqual(first);
    const material = await new TenantCertIssuer(join(dir, 'ca')).issue('t_00000000000000000000000000000001');
    expect(material.sslCa).toBe(first.certPem);
    expect(new X509Certificate(material.sslCert).verify(new X509Certificate(first.certPem).publicKey)).toBe(true);
  });

  it('fails clearly when the configured CA directory holds no CA', async () => {
    await expect(new TenantCertIssuer(join(dir, 'missing')).issue('t_00000000000000000000000000000001')).rejects.toThrow(/tenant CA not found/);
  });
});
