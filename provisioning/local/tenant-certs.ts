import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs the Reflect polyfill loaded first
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type { Pool } from 'pg';
import { ident } from './pg-names';
import { CrlSigner, RevocationReason, revokeCertificates } from './tenant-crl';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

/**
 * Tenant authentication on PostgreSQL servers Silo runs: an installation CA signs one client
 * certificate per tenant role (CN = role name) and the server's own certificate; pg_hba.conf
 * (tenant-server.ts) accepts tenant roles only by certificate. A password a tenant can change
 * with `ALTER ROLE current_user PASSWORD …` then opens nothing.
 */

/** NOLOGIN group of every tenant role: pg_hba.conf matches it as `+silo_tenants`. */
export const TENANT_GROUP = 'silo_tenants';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
/** Lifetime of a tenant client certificate; also how long the CRL keeps a revocation (tenant-crl.ts). */
export const CLIENT_CERT_VALIDITY_DAYS = 3650;

export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** What a tenant's secret carries besides its password (see TenantSecret). */
export interface TenantTlsMaterial {
  sslCert: string;
  sslKey: string;
  sslCa: string;
}

async function newKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyToPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64').match(/.{1,64}/g)?.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

async function keyFromPem(pem: string): Promise<CryptoKey> {
  const b64 = pem.replace(/-----(BEGIN|END) PRIVATE KEY-----/g, '').replace(/\s+/g, '');
  return webcrypto.subtle.importKey('pkcs8', Buffer.from(b64, 'base64'), ALG, false, ['sign']);
}

/** Positive, random 16-byte serial (RFC 5280: unique per CA, at most 20 bytes). */
function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

/** A new self-signed CA (10 years). */
export async function createCa(commonName = 'Silo tenant database CA', now = new Date()): Promise<PemPair> {
  const keys = await newKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(), name: `CN=${commonName}`, keys, signingAlgorithm: ALG,
    notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + 3650 * DAY_MS),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey) };
}

/** Loads `<dir>/ca.crt` + `<dir>/ca.key`, creating them (key 0600) on first use. */
export async function ensureCaFiles(dir: string): Promise<PemPair> {
  const certFile = join(dir, CA_CERT_FILE);
  const keyFile = join(dir, CA_KEY_FILE);
  if (!existsSync(certFile) || !existsSync(keyFile)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const ca = await createCa();
    writeFileSync(keyFile, ca.keyPem, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, ca.certPem, { mode: 0o644 });
  }
  return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
}

interface IssueOptions {
  commonName: string;
  usage: 'server' | 'client';
  /** Server certificates: host names and IP addresses clients verify. */
  hosts?: string[];
  validityDays: number;
  now?: Date;
}

async function issue(ca: PemPair, o: IssueOptions): Promise<PemPair> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await keyFromPem(ca.keyPem);
  const keys = await newKeys();
  const now = o.now ?? new Date();
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([o.usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth], false),
    await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
  ];
  if (o.hosts?.length) {
    extensions.push(new x509.SubjectAlternativeNameExtension(o.hosts.map((h) => (isIP(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }))));
  }
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(), subject: `CN=${o.commonName}`, issuer: caCert.subject, signingKey, publicKey: keys.publicKey, signingAlgorithm: ALG,
    notBefore: new Date(now.getTime() - 60_000), notAfter: new Date(now.getTime() + o.validityDays * DAY_MS), extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await keyToPem(keys.privateKey) };
}

/** The tenant server's own certificate: the runtime verifies it against the CA (no MITM on the tenant connection). */
export function issueServerCert(ca: PemPair, hosts: string[], now?: Date): Promise<PemPair> {
  return issue(ca, { commonName: hosts[0] ?? 'localhost', usage: 'server', hosts, validityDays: 825, now });
}

/** A tenant role's client certificate; pg_hba's `cert` method maps CN to the role name. */
export async function issueClientCert(ca: PemPair, roleName: string, now?: Date): Promise<PemPair> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(roleName)) throw new Error(`not a role name: ${roleName}`);
  return issue(ca, { commonName: roleName, usage: 'client', validityDays: CLIENT_CERT_VALIDITY_DAYS, now });
}

/** What signs the CA's CRL (tenant-crl.ts). */
export async function crlSigner(ca: PemPair): Promise<CrlSigner> {
  return { caCertPem: ca.certPem, key: await keyFromPem(ca.keyPem), caNotAfter: new x509.X509Certificate(ca.certPem).notAfter };
}

/**
 * Issues and revokes tenant client certificates for the local driver. Created from
 * TENANT_DATABASE_CA_DIR (the CA of a tenant server Silo runs); the CA key is read when first needed.
 */
export class TenantCertIssuer {
  private ca: PemPair | null = null;

  constructor(private readonly caDir: string) {}

  async issue(roleName: string): Promise<TenantTlsMaterial> {
    this.ca ??= this.load();
    const cert = await issueClientCert(this.ca, roleName);
    return { sslCert: cert.certPem, sslKey: cert.keyPem, sslCa: this.ca.certPem };
  }

  /**
   * Revokes certificates this CA issued, by serial (hex): recorded in the CA's CRL and in force on
   * the tenant server at `adminUrl` (its superuser URL) when this resolves, unless `enforced` is
   * false: that server has no ssl_crl_file (tenant-crl.ts).
   */
  async revoke(adminUrl: string, serials: string[], reason: RevocationReason, now = new Date()): Promise<{ enforced: boolean }> {
    this.ca ??= this.load();
    const revocations = serials.map((serial) => ({ serial, revokedAt: now, reason }));
    return revokeCertificates({ adminUrl, caDir: this.caDir, signer: await crlSigner(this.ca), clientValidityDays: CLIENT_CERT_VALIDITY_DAYS }, revocations, now);
  }

  private load(): PemPair {
    const certFile = join(this.caDir, CA_CERT_FILE);
    const keyFile = join(this.caDir, CA_KEY_FILE);
    if (!existsSync(certFile) || !existsSync(keyFile)) throw new Error(`tenant CA not found: ${certFile} and ${keyFile} must exist (TENANT_DATABASE_CA_DIR)`);
    return { certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
  }
}

const DUPLICATE = new Set(['42710', '23505']);

/** Creates the NOLOGIN group tenant roles belong to (idempotent, safe under concurrent callers). */
export async function ensureTenantGroup(admin: Pool): Promise<void> {
  await admin.query(`CREATE ROLE ${ident(TENANT_GROUP)} NOLOGIN NOINHERIT`).catch((err: { code?: string }) => {
    if (!DUPLICATE.has(err.code ?? '')) throw err;
  });
}

/**
 * Makes `role` a member of the tenant group, without the group's privileges (it has none) and
 * without SET ROLE to it (PostgreSQL 16+). Older servers cannot express that, so there the
 * membership is skipped: pg_hba.conf on a server Silo runs also rejects tenant roles by name.
 */
export async function grantTenantGroup(admin: Pool, role: string): Promise<void> {
  const { rows } = await admin.query<{ v: number }>(`SELECT current_setting('server_version_num')::int AS v`);
  if ((rows[0]?.v ?? 0) < 160000) return;
  await admin.query(`GRANT ${ident(TENANT_GROUP)} TO ${ident(role)} WITH INHERIT FALSE, SET FALSE`);
}
