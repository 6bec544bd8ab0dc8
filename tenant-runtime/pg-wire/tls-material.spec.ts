import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createSecureContext, TLSSocket } from 'node:tls';
import { loadRuntimeConfig } from '../config';
import { frontDoorTlsMaterial, TlsMaterial } from './tls-material';

const base = { DATABASE_URL: 'postgres://u@127.0.0.1:5432/silo', SECRET_STORE: 'aws', AWS_REGION: 'eu-west-1' };

let dir: string;
let certPem: string;
let keyPem: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'silo-pg-tls-'));
  // A self-signed certificate for the production shape of the front door's names.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=*.db.example.com', '-addext', 'subjectAltName=DNS:*.db.example.com',
    '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.crt'),
  ], { stdio: 'ignore' });
  certPem = readFileSync(join(dir, 'server.crt'), 'utf8');
  keyPem = readFileSync(join(dir, 'server.key'), 'utf8');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A TLS handshake with a server using `material`, as a client verifying it against the certificate itself; resolves the SNI the server saw. */
async function handshake(material: TlsMaterial, servername: string): Promise<string | false> {
  let seen: string | false = false;
  // As the front door does it: a plain TCP server that upgrades the socket with the material's context.
  const server = createServer((raw) => {
    const s = new TLSSocket(raw, { isServer: true, secureContext: createSecureContext(material) });
    s.once('secure', () => {
      seen = (s as TLSSocket & { servername?: string | false }).servername ?? false;
      s.end();
    });
    s.once('error', () => raw.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve, reject) => {
      const client = connect({ host: '127.0.0.1', port, servername, ca: certPem }, () => {
        client.end();
        resolve();
      });
      client.once('error', reject);
    });
    await new Promise((r) => setTimeout(r, 20));
    return seen;
  } finally {
    await new Promise((r) => server.close(r));
  }
}

describe('frontDoorTlsMaterial', () => {
  it('serves TLS from PEM text in the environment (what ECS injects from Secrets Manager), with the client SNI intact', async () => {
    const c = loadRuntimeConfig({ ...base, RUNTIME_PG_TLS_CERT_PEM: certPem, RUNTIME_PG_TLS_KEY_PEM: keyPem });
    const material = frontDoorTlsMaterial(c);
    expect(material).toEqual({ cert: certPem, key: keyPem });
    await expect(handshake(material!, 'acme.db.example.com')).resolves.toBe('acme.db.example.com');
  });

  it('restores newlines of a PEM pasted on one line with literal \\n', async () => {
    const oneLine = (pem: string) => pem.replace(/\n/g, '\\n');
    expect(oneLine(keyPem)).not.toContain('\n');
    const material = frontDoorTlsMaterial(loadRuntimeConfig({ ...base, RUNTIME_PG_TLS_CERT_PEM: oneLine(certPem), RUNTIME_PG_TLS_KEY_PEM: oneLine(keyPem) }));
    expect(material).toEqual({ cert: certPem, key: keyPem });
    await expect(handshake(material!, 'acme.db.example.com')).resolves.toBe('acme.db.example.com');
  });

  it('still reads the PEM files named by RUNTIME_PG_TLS_CERT / _KEY', async () => {
    const material = frontDoorTlsMaterial(loadRuntimeConfig({ ...base, RUNTIME_PG_TLS_CERT: join(dir, 'server.crt'), RUNTIME_PG_TLS_KEY: join(dir, 'server.key') }));
    expect(material?.cert.toString()).toBe(certPem);
    expect(material?.key.toString()).toBe(keyPem);
    await expect(handshake(material!, 'acme.db.example.com')).resolves.toBe('acme.db.example.com');
  });

  it('has no material (the front door answers SSLRequest with N) when neither form is set', () => {
    expect(frontDoorTlsMaterial(loadRuntimeConfig(base))).toBeNull();
  });
});

describe('front door TLS config', () => {
  it('refuses half a PEM pair, naming the missing variable', () => {
    expect(() => loadRuntimeConfig({ ...base, RUNTIME_PG_TLS_CERT_PEM: certPem })).toThrow(/RUNTIME_PG_TLS_KEY_PEM: RUNTIME_PG_TLS_CERT_PEM and RUNTIME_PG_TLS_KEY_PEM go together/);
    expect(() => loadRuntimeConfig({ ...base, RUNTIME_PG_TLS_KEY_PEM: keyPem })).toThrow(/RUNTIME_PG_TLS_CERT_PEM: /);
  });

  it('refuses files and PEM text at once, without echoing the key', () => {
    let message = '';
    try {
      loadRuntimeConfig({ ...base, RUNTIME_PG_TLS_CERT: '/x.crt', RUNTIME_PG_TLS_KEY: '/x.key', RUNTIME_PG_TLS_CERT_PEM: certPem, RUNTIME_PG_TLS_KEY_PEM: keyPem });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/either as files .* or as PEM text .*, not both/);
    expect(message).not.toContain('PRIVATE KEY');
  });

  it('takes the front door\'s SNI domain from RUNTIME_PG_BASE_DOMAIN, normalised like RUNTIME_BASE_DOMAIN, and leaves it unset by default', () => {
    expect(loadRuntimeConfig({ ...base, RUNTIME_PG_BASE_DOMAIN: '.DB.Example.com.' }).RUNTIME_PG_BASE_DOMAIN).toBe('db.example.com');
    expect(loadRuntimeConfig(base).RUNTIME_PG_BASE_DOMAIN).toBeUndefined();
  });
});
