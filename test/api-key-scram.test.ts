import { randomUUID } from 'node:crypto';
import { Pool } from 'pg';
import { apiKeyPrefix, apiKeyScramParams, generateApiKey, scramVerifier } from '../common/api-key-format';
import { scramVerifiersOf } from '../common/control-db/api-key-queries';
import { SCRAM_SHA_256, scramServerFinal, scramServerFirst } from '../tenant-runtime/pg-wire/scram';
import { startTestControlPlane, TestControlPlane } from './support/control-plane';

interface PgScramSession { response: string; serverSignature?: string }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pgSasl = require('pg/lib/crypto/sasl') as {
  startSession(mechanisms: string[], stream?: unknown): PgScramSession;
  continueSession(session: PgScramSession, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: PgScramSession, serverData: string): void;
};

/** Keys issued through the admin API carry a SCRAM-SHA-256 verifier; the runtime reads a tenant's live ones. */
describe('API keys: SCRAM verifiers', () => {
  let cp: TestControlPlane;
  let pool: Pool;
  let acme: string;
  let globex: string;
  beforeAll(async () => {
    cp = await startTestControlPlane();
    pool = new Pool({ connectionString: cp.db.url, max: 2 });
    const created = await Promise.all(['scram-acme', 'scram-globex'].map((slug) => cp.api('POST', '/v1/tenants', { name: slug, slug })));
    for (const r of created) expect(r.status).toBe(202);
    [acme, globex] = created.map((r) => r.body.id as string) as [string, string];
  });
  afterAll(async () => {
    await pool?.end();
    await cp?.close();
  });

  const issue = async (tenantId: string, name = 'k', body: Record<string, unknown> = {}) => {
    const r = await cp.api('POST', `/v1/tenants/${tenantId}/api-keys`, { name, ...body });
    expect(r.status).toBe(201);
    return { id: r.body.id as string, key: r.body.key as string, prefix: apiKeyPrefix(r.body.key) as string };
  };
  const row = async (id: string) => (await cp.sql<{ scram_stored_key: string | null; scram_server_key: string | null }>('SELECT scram_stored_key, scram_server_key FROM api_keys WHERE id = $1', [id]))[0];
  const expected = (key: string, tenantId: string) => {
    const { salt } = apiKeyScramParams(tenantId);
    return scramVerifier(key, salt, 4096);
  };

  it('stores, for a key issued through the admin API, the verifier of that key under its tenant\'s salt and 4096 iterations', async () => {
    const { id, key } = await issue(acme, 'ci');
    const want = expected(key, acme);
    expect(await row(id)).toEqual({ scram_stored_key: want.storedKey.toString('base64'), scram_server_key: want.serverKey.toString('base64') });
    // Not the verifier under another tenant's salt: the salt is the tenant's.
    expect((await row(id))?.scram_stored_key).not.toBe(expected(key, globex).storedKey.toString('base64'));
    // Never in the API's answers.
    const list = await cp.api('GET', `/v1/tenants/${acme}/api-keys`);
    expect(JSON.stringify(list.body)).not.toContain(want.storedKey.toString('base64'));
    expect(JSON.stringify(list.body)).not.toMatch(/scram/i);
  });

  it('stores a verifier for the replacement key of a rotation', async () => {
    const old = await issue(acme, 'rotating');
    const r = await cp.api('POST', `/v1/tenants/${acme}/api-keys/${old.id}/rotate`, {});
    expect(r.status).toBe(201);
    const want = expected(r.body.key, acme);
    expect(await row(r.body.id)).toEqual({ scram_stored_key: want.storedKey.toString('base64'), scram_server_key: want.serverKey.toString('base64') });
    const { verifiers } = await scramVerifiersOf(pool, acme);
    expect(verifiers.map((v) => v.prefix)).toContain(apiKeyPrefix(r.body.key));
    expect(verifiers.map((v) => v.prefix)).not.toContain(old.prefix); // revoked by the rotation
  });

  it('lists the tenant\'s live keys only: not revoked, not expired, not another tenant\'s; keys without a verifier apart', async () => {
    const live = await issue(globex, 'live');
    const later = await issue(globex, 'expires-later', { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    const revoked = await issue(globex, 'revoked');
    expect((await cp.api('DELETE', `/v1/tenants/${globex}/api-keys/${revoked.id}`)).status).toBe(200);
    const expired = await issue(globex, 'expired', { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    await cp.sql(`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.id]);
    // A key issued before verifiers existed (the migration leaves them NULL), and a revoked one.
    const legacy = generateApiKey();
    const legacyRevoked = generateApiKey();
    await cp.sql(`INSERT INTO api_keys (id, tenant_id, name, prefix, hash) VALUES ($1, $2, 'legacy', $3, $4)`, [randomUUID(), globex, legacy.prefix, legacy.hash]);
    await cp.sql(`INSERT INTO api_keys (id, tenant_id, name, prefix, hash, revoked_at) VALUES ($1, $2, 'legacy', $3, $4, now())`, [randomUUID(), globex, legacyRevoked.prefix, legacyRevoked.hash]);

    const { verifiers, cleartextOnly } = await scramVerifiersOf(pool, globex);
    expect(verifiers.map((v) => v.prefix).sort()).toEqual([live.prefix, later.prefix].sort());
    expect(cleartextOnly).toEqual([legacy.prefix]);
    const liveRow = verifiers.find((v) => v.prefix === live.prefix);
    expect(liveRow?.storedKey).toEqual(expected(live.key, globex).storedKey);
    expect(liveRow?.serverKey).toEqual(expected(live.key, globex).serverKey);
    expect(Buffer.isBuffer(liveRow?.storedKey)).toBe(true);

    const acmeVerifiers = await scramVerifiersOf(pool, acme);
    expect(acmeVerifiers.verifiers.map((v) => v.prefix)).not.toContain(live.prefix);
    expect(acmeVerifiers.cleartextOnly).toEqual([]);
    expect(await scramVerifiersOf(pool, randomUUID())).toEqual({ verifiers: [], cleartextOnly: [] });
  });

  it('authenticates pg\'s client with an issued key against the stored verifiers, and refuses a revoked one', async () => {
    const { key, prefix, id } = await issue(acme, 'pg');
    const exchange = async (password: string) => {
      const session = pgSasl.startSession([SCRAM_SHA_256], {});
      const first = scramServerFirst(session.response, apiKeyScramParams(acme));
      if (!first.ok) throw new Error(first.message);
      await pgSasl.continueSession(session, password, first.message, {});
      const candidates = (await scramVerifiersOf(pool, acme)).verifiers.map((v) => ({ id: v.prefix, ...v }));
      return { session, final: scramServerFinal(first.exchange, session.response, candidates) };
    };
    const { session, final } = await exchange(key);
    expect(final).toMatchObject({ ok: true, id: prefix });
    if (final.ok) expect(() => pgSasl.finalizeSession(session, final.message)).not.toThrow();

    expect((await cp.api('DELETE', `/v1/tenants/${acme}/api-keys/${id}`)).status).toBe(200);
    expect((await exchange(key)).final).toMatchObject({ ok: false, reason: 'invalid-proof' });
  });

  it('refuses a row with only one half of a verifier', async () => {
    const k = generateApiKey();
    await expect(cp.sql(`INSERT INTO api_keys (id, tenant_id, name, prefix, hash, scram_stored_key) VALUES ($1, $2, 'half', $3, $4, 'AAAA')`, [randomUUID(), acme, k.prefix, k.hash]))
      .rejects.toThrow(/api_keys_scram_both/);
  });
});
