import { createHash } from 'node:crypto';
import { generateApiKey } from '../../common/api-key-format';
import { apiKeyScramParams, SCRAM_ITERATIONS, SCRAM_SHA_256, ScramCandidate, ScramExchange, scramServerFinal, scramServerFirst, scramVerifier } from './scram';

/** pg's own client SCRAM code (what `pg` runs against PostgreSQL), untyped JavaScript. */
interface PgScramSession { mechanism: string; clientNonce: string; response: string; message: string; serverSignature?: string }
// eslint-disable-next-line @typescript-eslint/no-require-imports
const pgSasl = require('pg/lib/crypto/sasl') as {
  startSession(mechanisms: string[], stream?: unknown): PgScramSession;
  continueSession(session: PgScramSession, password: string, serverData: string, stream?: unknown): Promise<void>;
  finalizeSession(session: PgScramSession, serverData: string): void;
};

const TENANT = '6f0c3b1e-2a44-4c1d-9e0f-1234567890ab';
const { salt, iterations } = apiKeyScramParams(TENANT);

function candidate(id: string, key: string): ScramCandidate {
  return { id, ...scramVerifier(key, salt, iterations) };
}

/** Runs pg's client against the server core up to the client-final message. */
async function pgExchange(key: string, o: { tls?: boolean } = {}): Promise<{ session: PgScramSession; exchange: ScramExchange; clientFinal: string }> {
  const stream = o.tls ? {} : undefined; // pg sends `y,,` when on TLS and the server offers no PLUS
  const session = pgSasl.startSession([SCRAM_SHA_256], stream);
  const first = scramServerFirst(session.response, { salt, iterations });
  if (!first.ok) throw new Error(`server-first refused: ${first.message}`);
  await pgSasl.continueSession(session, key, first.message, stream);
  return { session, exchange: first.exchange, clientFinal: session.response };
}

/** Replaces attribute `name` of a SCRAM message. */
const withAttr = (message: string, name: string, value: string) => message.split(',').map((a) => (a.startsWith(`${name}=`) ? `${name}=${value}` : a)).join(',');

describe('SCRAM-SHA-256 server core', () => {
  const keys = [generateApiKey().key, generateApiKey().key, generateApiKey().key];
  const candidates = keys.map((k, i) => candidate(`key${i}`, k));

  it('reproduces RFC 7677\'s example exchange (user "user", password "pencil")', () => {
    const rfcSalt = Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64');
    const first = scramServerFirst('n,,n=user,r=rOprNGfwEbeRWgbNEkqO', { salt: rfcSalt, iterations: 4096, serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
    expect(first.ok && first.message).toBe('r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096');
    if (!first.ok) return;
    const pencil = { id: 'pencil', ...scramVerifier('pencil', rfcSalt, 4096) };
    const other = { id: 'other', ...scramVerifier('pen', rfcSalt, 4096) };
    const final = scramServerFinal(first.exchange, 'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', [other, pencil]);
    expect(final).toEqual({ ok: true, id: 'pencil', message: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=' });
  });

  it('derives StoredKey and ServerKey as RFC 5802 does (checked against pg\'s client for the same password)', async () => {
    const { session, exchange, clientFinal } = await pgExchange(keys[1] as string);
    const final = scramServerFinal(exchange, clientFinal, [candidate('only', keys[1] as string)]);
    expect(final.ok).toBe(true);
    if (final.ok) expect(final.message).toBe(`v=${session.serverSignature}`);
  });

  it.each([['plaintext (n,,)', false], ['TLS without PLUS (y,,)', true]])('authenticates pg\'s client over %s with the right key among several, and pg accepts the server signature', async (_name, tls) => {
    const { session, exchange, clientFinal } = await pgExchange(keys[2] as string, { tls });
    expect(session.response.startsWith(tls ? 'c=eSws,' : 'c=biws,')).toBe(true);
    const final = scramServerFinal(exchange, clientFinal, candidates);
    expect(final).toMatchObject({ ok: true, id: 'key2' });
    if (final.ok) expect(() => pgSasl.finalizeSession(session, final.message)).not.toThrow();
  });

  it('sends the client nonce followed by a fresh server nonce, the tenant\'s salt and 4096 iterations', () => {
    const a = scramServerFirst('n,,n=*,r=abc', { salt, iterations });
    const b = scramServerFirst('n,,n=*,r=abc', { salt, iterations });
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.message).toMatch(/^r=abc[A-Za-z0-9+/]{24},s=[A-Za-z0-9+/]{22}==,i=4096$/);
    expect(a.exchange.nonce).not.toBe(b.exchange.nonce);
    expect(Buffer.from(/s=([^,]+)/.exec(a.message)?.[1] as string, 'base64')).toEqual(salt);
  });

  it('uses one deterministic public salt per tenant (16 bytes of SHA-256("silo-scram-salt:" + id)) and libpq\'s 4096 iterations', () => {
    expect(apiKeyScramParams(TENANT)).toEqual(apiKeyScramParams(TENANT));
    expect(apiKeyScramParams(TENANT).salt).toHaveLength(16);
    expect(apiKeyScramParams(TENANT).salt.toString('hex')).toBe(createHash('sha256').update(`silo-scram-salt:${TENANT}`).digest('hex').slice(0, 32));
    expect(apiKeyScramParams('00000000-0000-4000-8000-000000000000').salt.equals(salt)).toBe(false);
    expect(iterations).toBe(SCRAM_ITERATIONS);
    expect(SCRAM_ITERATIONS).toBe(4096);
  });

  it('refuses a proof made with a key that is not among the candidates (28P01), and with no candidates at all', async () => {
    const stranger = generateApiKey().key;
    const { exchange, clientFinal } = await pgExchange(stranger);
    expect(scramServerFinal(exchange, clientFinal, candidates)).toEqual({ ok: false, reason: 'invalid-proof', sqlState: '28P01', message: 'password authentication failed' });
    expect(scramServerFinal(exchange, clientFinal, [])).toMatchObject({ ok: false, reason: 'invalid-proof' });
  });

  it('refuses a proof made with the right key but another tenant\'s salt', async () => {
    const otherSalt = apiKeyScramParams('00000000-0000-4000-8000-000000000000').salt;
    const { exchange, clientFinal } = await pgExchange(keys[0] as string);
    expect(scramServerFinal(exchange, clientFinal, [{ id: 'x', ...scramVerifier(keys[0] as string, otherSalt, iterations) }])).toMatchObject({ ok: false, reason: 'invalid-proof' });
  });

  it('refuses a tampered nonce, and a proof replayed into another exchange', async () => {
    const { exchange, clientFinal } = await pgExchange(keys[0] as string);
    const nonce = exchange.nonce;
    const tampered = withAttr(clientFinal, 'r', `${nonce.slice(0, -1)}${nonce.endsWith('A') ? 'B' : 'A'}`);
    expect(scramServerFinal(exchange, tampered, candidates)).toMatchObject({ ok: false, reason: 'nonce-mismatch', sqlState: '08P01' });
    expect(scramServerFinal(exchange, withAttr(clientFinal, 'r', `${nonce}x`), candidates)).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
    const again = scramServerFirst(`n,,${exchange.clientFirstBare}`, { salt, iterations });
    expect(again.ok).toBe(true);
    if (again.ok) expect(scramServerFinal(again.exchange, clientFinal, candidates)).toMatchObject({ ok: false, reason: 'nonce-mismatch' });
  });

  it('refuses a changed proof as a wrong key', async () => {
    const { exchange, clientFinal } = await pgExchange(keys[0] as string);
    const proof = Buffer.from(/p=([^,]+)$/.exec(clientFinal)?.[1] as string, 'base64');
    proof[0] = (proof[0] as number) ^ 1;
    expect(scramServerFinal(exchange, withAttr(clientFinal, 'p', proof.toString('base64')), candidates)).toMatchObject({ ok: false, reason: 'invalid-proof' });
  });

  it('refuses channel binding (p=) with a clear message, as SCRAM-SHA-256-PLUS is not offered', () => {
    const plus = pgSasl.startSession(['SCRAM-SHA-256-PLUS', SCRAM_SHA_256], { getPeerCertificate: () => ({}) });
    expect(plus.response.startsWith('p=tls-server-end-point,,')).toBe(true);
    const r = scramServerFirst(plus.response, { salt, iterations });
    expect(r).toMatchObject({ ok: false, reason: 'channel-binding', sqlState: '08P01' });
    if (!r.ok) expect(r.message).toMatch(/channel binding is not supported.*SCRAM-SHA-256-PLUS/);
  });

  it('refuses a client-final whose channel binding does not repeat its gs2 header', async () => {
    const plain = await pgExchange(keys[0] as string);
    expect(scramServerFinal(plain.exchange, withAttr(plain.clientFinal, 'c', 'eSws'), candidates)).toMatchObject({ ok: false, reason: 'channel-binding' });
    const tls = await pgExchange(keys[0] as string, { tls: true });
    expect(scramServerFinal(tls.exchange, withAttr(tls.clientFinal, 'c', 'biws'), candidates)).toMatchObject({ ok: false, reason: 'channel-binding' });
    const bound = Buffer.from('p=tls-server-end-point,,').toString('base64');
    const r = scramServerFinal(plain.exchange, withAttr(plain.clientFinal, 'c', bound), candidates);
    expect(r).toMatchObject({ ok: false, reason: 'channel-binding' });
    if (!r.ok) expect(r.message).toMatch(/SCRAM-SHA-256-PLUS/);
  });

  it('refuses an authorization identity and mandatory extensions', () => {
    expect(scramServerFirst('n,a=admin,n=*,r=abc', { salt, iterations })).toMatchObject({ ok: false, reason: 'unsupported' });
    expect(scramServerFirst('n,,m=ext,n=*,r=abc', { salt, iterations })).toMatchObject({ ok: false, reason: 'unsupported' });
  });

  it('accepts an empty or non-ASCII user name and optional extensions (the startup user name is the one used)', async () => {
    for (const m of ['n,,n=,r=abc', 'n,,n=jos\u00e9,r=abc', 'n,,n=*,r=abc,x=ext']) expect(scramServerFirst(m, { salt, iterations }).ok).toBe(true);
    expect(scramServerFirst(Buffer.from('n,,n=jos\u00e9,r=abc'), { salt, iterations }).ok).toBe(true);
  });

  const MALFORMED_FIRST: Array<[string, string | Buffer]> = [
    ['empty', ''],
    ['no gs2 header', 'n=*,r=abc'],
    ['unknown flag', 'q,,n=*,r=abc'],
    ['junk authzid', 'n,junk,n=*,r=abc'],
    ['no user name', 'n,,r=abc'],
    ['no nonce', 'n,,n=*'],
    ['empty nonce', 'n,,n=*,r='],
    ['nonce with a control character', 'n,,n=*,r=ab\u0001c'],
    ['non-ASCII nonce', 'n,,n=*,r=ab\u00e9'],
    ['bad extension', 'n,,n=*,r=abc,junk'],
    ['NUL byte', 'n,,n=*,r=abc\0'],
    ['invalid UTF-8', Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61])],
    ['too long', `n,,n=*,r=${'a'.repeat(5000)}`],
  ];
  it.each(MALFORMED_FIRST)('refuses a malformed client-first message (%s) with a failure, not a throw', (_name, message) => {
    expect(scramServerFirst(message, { salt, iterations })).toMatchObject({ ok: false, reason: 'malformed', sqlState: '08P01', message: expect.stringMatching(/^malformed SCRAM message/) });
  });

  it('refuses malformed client-final messages with a failure that leaks no key material', async () => {
    const { exchange, clientFinal } = await pgExchange(keys[0] as string);
    const [c, r, p] = clientFinal.split(',') as [string, string, string];
    const cases: Array<string | Buffer> = [
      '', 'garbage', `${c},${r}`, `${r},${c},${p}`, `${c},${p}`, `${c},${r},${p},x=late`, `${c},${r},junk,${p}`, `${c},${r},p=a,${p}`,
      `c=b!ws,${r},${p}`, `${c},${r},p=not*base64`, `${c},${r},p=${Buffer.alloc(31).toString('base64')}`, `${c},${r},p=${Buffer.alloc(33).toString('base64')}`,
      `${c},${r},${p}\0`, Buffer.concat([Buffer.from(`${c},${r},`), Buffer.from([0xc3]), Buffer.from(p)]), `${c},${r},${p}${'A'.repeat(5000)}`,
    ];
    for (const m of cases) {
      const result = scramServerFinal(exchange, m, candidates);
      expect(result).toMatchObject({ ok: false, sqlState: '08P01' });
      if (result.ok) continue;
      expect(result.reason).toBe('malformed');
      for (const k of candidates) {
        expect(result.message).not.toContain(k.storedKey.toString('base64'));
        expect(result.message).not.toContain(k.serverKey.toString('base64'));
      }
      expect(result.message).not.toContain(p.slice(2));
    }
    expect(scramServerFinal(exchange, clientFinal, candidates).ok).toBe(true); // the untampered message still passes
  });

  it('skips a candidate whose StoredKey has the wrong length instead of throwing', async () => {
    const { exchange, clientFinal } = await pgExchange(keys[1] as string);
    const broken = { id: 'broken', storedKey: Buffer.alloc(5), serverKey: Buffer.alloc(5) };
    expect(scramServerFinal(exchange, clientFinal, [broken, ...candidates])).toMatchObject({ ok: true, id: 'key1' });
    expect(scramServerFinal(exchange, clientFinal, [broken])).toMatchObject({ ok: false, reason: 'invalid-proof' });
  });
});
