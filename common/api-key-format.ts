import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';

/**
 * Tenant API keys: `silo_<prefix>_<secret>`. The prefix (12 hex chars) is public and unique: it
 * finds the key record. The secret is 256 random bits (base64url). Only a SHA-256 of the whole key
 * is stored: with that much entropy a fast hash is as good as a slow one, and keeps lookups cheap.
 * For the PostgreSQL front door's SCRAM-SHA-256, each key also gets a verifier when it is issued.
 */
export const API_KEY_PATTERN = /^silo_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedApiKey {
  /** The full key: shown to the caller once, never stored. */
  key: string;
  prefix: string;
  hash: string;
}

export function generateApiKey(): GeneratedApiKey {
  const prefix = randomBytes(6).toString('hex');
  const key = `silo_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { key, prefix, hash: hashApiKey(key) };
}

/** The lookup prefix of a well-formed key, or null. */
export function apiKeyPrefix(key: string): string | null {
  const m = API_KEY_PATTERN.exec(key);
  return m ? m[1] : null;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** A key's SCRAM-SHA-256 verifier (RFC 5802 / 7677): what the server needs to check a proof without the key. */
export interface ScramVerifier {
  storedKey: Buffer;
  serverKey: Buffer;
}

/** libpq's default iteration count (PostgreSQL's `scram_iterations`). */
export const SCRAM_ITERATIONS = 4096;

/**
 * The salt and iteration count of every key of a tenant. The PostgreSQL front door sends them in
 * its server-first message before it knows which key the client holds, so all of a tenant's keys
 * share them: the salt is public and derived from the tenant id (stable across slug changes), the
 * first 16 bytes of SHA-256("silo-scram-salt:" + tenantId). Keys carry 256 random bits, so a
 * public, shared salt costs nothing against guessing.
 */
export function apiKeyScramParams(tenantId: string): { salt: Buffer; iterations: number } {
  return { salt: createHash('sha256').update(`silo-scram-salt:${tenantId}`).digest().subarray(0, 16), iterations: SCRAM_ITERATIONS };
}

/**
 * StoredKey and ServerKey of `password`: SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt,
 * iterations); ClientKey = HMAC(SaltedPassword, "Client Key"); StoredKey = SHA-256(ClientKey);
 * ServerKey = HMAC(SaltedPassword, "Server Key"). No SASLprep: API keys are ASCII, which SASLprep
 * leaves as is.
 */
export function scramVerifier(password: string, salt: Buffer, iterations: number): ScramVerifier {
  const salted = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  return {
    storedKey: createHash('sha256').update(clientKey).digest(),
    serverKey: createHmac('sha256', salted).update('Server Key').digest(),
  };
}

/** The verifier stored with a key of `tenantId` at issue time (the only time the key exists server-side). */
export function apiKeyScramVerifier(key: string, tenantId: string): ScramVerifier {
  const { salt, iterations } = apiKeyScramParams(tenantId);
  return scramVerifier(key, salt, iterations);
}
