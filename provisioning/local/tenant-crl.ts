import 'reflect-metadata'; // @peculiar/x509 (tsyringe) needs the Reflect polyfill loaded first
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { chmodSync, existsSync, linkSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { ADMIN_SESSION_OPTIONS, literal } from './pg-names';
import { inTransaction } from './pg-transaction';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/**
 * Revocation of tenant client certificates on a PostgreSQL server Silo runs. The installation CA
 * keeps its revocations as a CRL it signs, `<caDir>/crl.pem` next to ca.crt and ca.key (that file
 * is the record: it survives restarts with the CA). The tenant server checks client certificates
 * against its copy (`ssl_crl_file`), rewritten from the CA's at every start (tenant-server.ts) and
 * at every revocation, followed by a configuration reload.
 */

/** The CA's CRL, in the CA directory. */
export const CRL_FILE = 'crl.pem';

/** Why a certificate was revoked: rotation re-issued it, or the tenant left. */
export type RevocationReason = 'superseded' | 'offboarded';

export interface Revocation {
  /** Hex serial, lower case, no leading zeros (see normalSerial). */
  serial: string;
  revokedAt: Date;
  reason: RevocationReason;
}

/** What signs the CRL: the CA's certificate and private key. */
export interface CrlSigner {
  caCertPem: string;
  key: webcrypto.CryptoKey;
  /** The CA's own validity end: the CRL's nextUpdate (OpenSSL refuses every client once a CRL has expired). */
  caNotAfter: Date;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
const REASON_CODE: Record<RevocationReason, x509.X509CrlReason> = { superseded: x509.X509CrlReason.superseded, offboarded: x509.X509CrlReason.cessationOfOperation };
const REASON_OF = new Map<number, RevocationReason>([[x509.X509CrlReason.superseded, 'superseded'], [x509.X509CrlReason.cessationOfOperation, 'offboarded']]);

/** Serials compare as integers: `00AB` and `ab` are the same certificate. */
export function normalSerial(hex: string): string {
  if (!/^[0-9a-fA-F]+$/.test(hex)) throw new Error(`not a certificate serial: ${hex}`);
  return BigInt(`0x${hex}`).toString(16);
}

/** The serial of a PEM certificate, normalised. */
export function certSerial(certPem: string): string {
  return normalSerial(new x509.X509Certificate(certPem).serialNumber);
}

/**
 * The revocations to keep after adding `added` to `existing` (pure): one entry per serial (the
 * first revocation wins), minus entries older than `keepDays`. A certificate is revoked after it
 * was issued and client certificates live `clientValidityDays`, so an entry older than that (plus
 * a day) names a certificate that has expired anyway and the server refuses it without the CRL.
 */
export function mergeRevocations(existing: readonly Revocation[], added: readonly Revocation[], now: Date, clientValidityDays: number): Revocation[] {
  const cutoff = now.getTime() - (clientValidityDays + 1) * DAY_MS;
  const bySerial = new Map<string, Revocation>();
  for (const r of [...existing, ...added]) {
    const serial = normalSerial(r.serial);
    if (r.revokedAt.getTime() < cutoff || bySerial.has(serial)) continue;
    bySerial.set(serial, { ...r, serial });
  }
  return [...bySerial.values()].sort((a, b) => a.revokedAt.getTime() - b.revokedAt.getTime() || a.serial.localeCompare(b.serial));
}

/** A CRL over `entries`, signed by the CA, PEM with the label OpenSSL (and so PostgreSQL) reads. */
export async function signCrl(signer: CrlSigner, entries: readonly Revocation[], now: Date): Promise<string> {
  const caCert = new x509.X509Certificate(signer.caCertPem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: caCert.subject,
    thisUpdate: new Date(now.getTime() - 60_000),
    // Always set: @peculiar/x509 2.2 parses no entries from a CRL without nextUpdate.
    nextUpdate: signer.caNotAfter,
    signingAlgorithm: ALG,
    signingKey: signer.key,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(caCert, false)],
    entries: entries.map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt, reason: REASON_CODE[e.reason] })),
  });
  const b64 = Buffer.from(crl.rawData).toString('base64').match(/.{1,64}/g)?.join('\n') ?? '';
  return `-----BEGIN X509 CRL-----\n${b64}\n-----END X509 CRL-----\n`;
}

/** The revocations in a CRL, after checking it is this CA's and its signature holds. */
export async function readCrl(caCertPem: string, pem: string): Promise<Revocation[]> {
  const der = Buffer.from(pem.replace(/-----(BEGIN|END) X509 CRL-----/g, '').replace(/\s+/g, ''), 'base64');
  const crl = new x509.X509Crl(der);
  const caCert = new x509.X509Certificate(caCertPem);
  if (crl.issuer !== caCert.subject || !(await crl.verify({ publicKey: caCert }))) throw new Error('the tenant CA\'s CRL is not signed by the tenant CA');
  return crl.entries.map((e) => ({ serial: normalSerial(e.serialNumber), revokedAt: e.revocationDate, reason: REASON_OF.get(e.reason ?? -1) ?? 'superseded' }));
}

/**
 * The CA's CRL, created empty on first use. Creation is atomic (link, fails if another process
 * created it first), so a start never overwrites revocations a worker just wrote.
 */
export async function ensureCrlFile(caDir: string, signer: CrlSigner, now = new Date()): Promise<string> {
  const file = join(caDir, CRL_FILE);
  if (!existsSync(file)) {
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    writeFileSync(tmp, await signCrl(signer, [], now), { mode: 0o644 });
    try {
      linkSync(tmp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    } finally {
      unlinkSync(tmp);
    }
  }
  const pem = readFileSync(file, 'utf8');
  await readCrl(signer.caCertPem, pem); // refuse to serve a CRL that is not ours
  return pem;
}

/** Replaces `file` atomically (a reader sees the old or the new content, never a part). */
function replaceFile(file: string, content: string, mode: number): void {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, content, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, file);
}

/** Advisory lock taken on the tenant server's maintenance database, where no tenant role can connect (pg_hba.conf: sameuser). */
const CRL_LOCK = `hashtextextended('silo:tenant-crl', 0)`;
const RELOAD_WAIT_MS = 10_000;

export interface RevokeTarget {
  /** Superuser URL of the tenant server (its maintenance database). */
  adminUrl: string;
  caDir: string;
  signer: CrlSigner;
  clientValidityDays: number;
}

/**
 * Adds `revocations` to the CA's CRL and puts it in force on the tenant server: under an advisory
 * lock on that server (replicas revoking at once merge, none loses another's entry), read the CA's
 * CRL, merge, sign, replace it, write the server's copy (the file its ssl_crl_file names, written
 * by the server itself with COPY, so this works wherever the server runs), reload the server's
 * configuration and wait until it has. `enforced: false`: the server has no ssl_crl_file (one
 * started by an older Silo and reused, or a server Silo does not run), so it still accepts the
 * certificate; the revocation is recorded in the CA's CRL (a server Silo runs gets it at its
 * next start). Not an error: offboarding and rotation must not stall on it.
 */
export async function revokeCertificates(target: RevokeTarget, revocations: readonly Revocation[], now = new Date()): Promise<{ enforced: boolean }> {
  if (revocations.length === 0) return { enforced: true };
  const c = new Client({ connectionString: target.adminUrl, options: ADMIN_SESSION_OPTIONS, application_name: 'silo-crl' });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await inTransaction(c, async () => {
      await c.query(`SELECT pg_advisory_xact_lock(${CRL_LOCK})`);
      const file = join(target.caDir, CRL_FILE);
      const existing = existsSync(file) ? await readCrl(target.signer.caCertPem, readFileSync(file, 'utf8')) : [];
      const merged = mergeRevocations(existing, revocations, now, target.clientValidityDays);
      const pem = await signCrl(target.signer, merged, now);
      replaceFile(file, pem, 0o644);

      const { rows } = await c.query<{ path: string | null }>(
        `SELECT CASE WHEN current_setting('ssl_crl_file') = '' THEN NULL
                     WHEN left(current_setting('ssl_crl_file'), 1) = '/' THEN current_setting('ssl_crl_file')
                     ELSE current_setting('data_directory') || '/' || current_setting('ssl_crl_file') END AS path`);
      const path = rows[0]?.path;
      if (!path) return { enforced: false };
      // One row per line: PEM has no character COPY's text format escapes.
      const lines = pem.trimEnd().split('\n').map(literal).join(', ');
      await c.query(`COPY (SELECT l FROM unnest(ARRAY[${lines}]::text[]) WITH ORDINALITY AS u(l, n) ORDER BY n) TO ${literal(path)}`);
      const [{ at }] = (await c.query<{ at: Date }>('SELECT clock_timestamp() AS at, pg_reload_conf()')).rows as [{ at: Date }];
      await waitForReload(target.adminUrl, at);
      return { enforced: true };
    });
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Until a new session sees a configuration load at or after `since` (the postmaster handled the SIGHUP). */
async function waitForReload(adminUrl: string, since: Date): Promise<void> {
  const deadline = Date.now() + RELOAD_WAIT_MS;
  for (;;) {
    const probe = new Client({ connectionString: adminUrl, options: ADMIN_SESSION_OPTIONS, application_name: 'silo-crl' });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      const { rows } = await probe.query<{ done: boolean }>('SELECT pg_conf_load_time() >= $1 AS done', [since]);
      if (rows[0]?.done) return;
    } finally {
      await probe.end().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`the tenant server did not reload its configuration within ${RELOAD_WAIT_MS} ms of the revocation`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
