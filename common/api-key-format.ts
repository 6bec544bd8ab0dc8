import { createHash, randomBytes } from 'node:crypto';

/**
 * Tenant API keys: `silo_<prefix>_<secret>`. The prefix (12 hex chars) is public and unique: it
 * finds the key record. The secret is 256 random bits (base64url). Only a SHA-256 of the whole key
 * is stored: with that much entropy a fast hash is as good as a slow one, and keeps lookups cheap.
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
