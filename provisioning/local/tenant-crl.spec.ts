import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCa, crlSigner, issueClientCert, PemPair, TenantCertIssuer, CA_CERT_FILE, CA_KEY_FILE } from './tenant-certs';
import { testDatabaseUrl } from '../../test/support/env';
import { certSerial, CRL_FILE, ensureCrlFile, mergeRevocations, normalSerial, readCrl, Revocation, revokeCertificates, signCrl } from './tenant-crl';

const DAY = 86_400_000;
const T0 = new Date('2030-01-01T00:00:00Z');
const at = (days: number) => new Date(T0.getTime() + days * DAY);
const rev = (serial: string, days: number, reason: Revocation['reason'] = 'superseded'): Revocation => ({ serial, revokedAt: at(days), reason });

describe('mergeRevocations', () => {
  it('adds new serials, keeps one entry per serial (the first revocation) and compares serials as numbers', () => {
    const merged = mergeRevocations([rev('0a', 0), rev('ff', 1)], [rev('00FF', 5, 'offboarded'), rev('1b', 2, 'offboarded')], at(10), 3650);
    expect(merged).toEqual([rev('a', 0), rev('ff', 1), rev('1b', 2, 'offboarded')]);
  });

  it('drops an entry only once the certificate it names must have expired (client validity + 1 day after the revocation)', () => {
    const existing = [rev('1', 0), rev('2', 100)];
    expect(mergeRevocations(existing, [], at(3650), 3650).map((r) => r.serial)).toEqual(['1', '2']);
    expect(mergeRevocations(existing, [], at(3651), 3650).map((r) => r.serial)).toEqual(['1', '2']);
    expect(mergeRevocations(existing, [], at(3651 + 0.001), 3650).map((r) => r.serial)).toEqual(['2']);
    expect(mergeRevocations(existing, [], at(3751 + 0.001), 3650)).toEqual([]);
  });

  it('refuses what is not a hex serial', () => {
    expect(() => mergeRevocations([], [rev('xyz', 0)], T0, 3650)).toThrow(/not a certificate serial/);
    expect(() => normalSerial('')).toThrow(/not a certificate serial/);
  });
});

describe('tenant CRL', () => {
  let ca: PemPair;
  let dir: string;
  beforeAll(async () => {
    ca = await createCa();
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'silo-crl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('signs a CRL in the PEM form OpenSSL reads, naming each revoked serial with its date and reason, valid until the CA expires', async () => {
    const cert = await issueClientCert(ca, 't_00000000000000000000000000000001');
    const entries = [{ serial: certSerial(cert.certPem), revokedAt: at(0), reason: 'superseded' as const }, rev('abc', 1, 'offboarded')];
    const pem = await signCrl(await crlSigner(ca), entries, at(2));
    expect(pem.startsWith('-----BEGIN X509 CRL-----\n')).toBe(true); // not "BEGIN CRL": PEM_read_bio_X509_CRL wants this label
    expect(pem.trimEnd().endsWith('-----END X509 CRL-----')).toBe(true);
    expect(await readCrl(ca.certPem, pem)).toEqual(entries);
  });

  it('refuses a CRL another CA signed, or one altered after signing', async () => {
    const other = await createCa();
    const foreign = await signCrl(await crlSigner(other), [rev('1', 0)], T0);
    await expect(readCrl(ca.certPem, foreign)).rejects.toThrow(/not signed by the tenant CA/);
    // Same issuer name, different key: the signature is what decides.
    const sameName = await createCa('Silo tenant database CA');
    await expect(readCrl(ca.certPem, await signCrl(await crlSigner(sameName), [], T0))).rejects.toThrow(/not signed by the tenant CA/);
  });

  it('creates the CA\'s CRL once, empty, and never overwrites one that exists', async () => {
    const signer = await crlSigner(ca);
    const first = await ensureCrlFile(dir, signer);
    expect(await readCrl(ca.certPem, first)).toEqual([]);
    const withEntry = await signCrl(signer, [rev('42', 0)], T0);
    writeFileSync(join(dir, CRL_FILE), withEntry);
    expect(await ensureCrlFile(dir, signer)).toBe(withEntry);
    expect(readFileSync(join(dir, CRL_FILE), 'utf8')).toBe(withEntry);
  });

  it('refuses to serve a CRL in the CA directory that is not the CA\'s', async () => {
    writeFileSync(join(dir, CRL_FILE), await signCrl(await crlSigner(await createCa()), [], T0));
    await expect(ensureCrlFile(dir, await crlSigner(ca))).rejects.toThrow(/not signed by the tenant CA/);
  });

  // Real PostgreSQL (the shared test server, which Silo does not run: ssl_crl_file is unset there).
  it('records the revocation in the CA directory, and says it is not enforced on a server with no ssl_crl_file', async () => {
    writeFileSync(join(dir, CA_CERT_FILE), ca.certPem);
    writeFileSync(join(dir, CA_KEY_FILE), ca.keyPem);
    const adminUrl = testDatabaseUrl();
    await expect(new TenantCertIssuer(dir).revoke(adminUrl, ['0123abcd'], 'superseded', T0)).resolves.toEqual({ enforced: false });
    expect(existsSync(join(dir, CRL_FILE))).toBe(true);
    expect(await readCrl(ca.certPem, readFileSync(join(dir, CRL_FILE), 'utf8'))).toEqual([rev('123abcd', 0)]);
    // Nothing to revoke: no connection, no change.
    await expect(revokeCertificates({ adminUrl: 'postgres://nobody@127.0.0.1:1/x', caDir: dir, signer: await crlSigner(ca), clientValidityDays: 3650 }, [])).resolves.toEqual({ enforced: true });
  });
});
