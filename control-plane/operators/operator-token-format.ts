import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Operator tokens: `silo_op_<prefix>_<secret>`. The prefix (12 hex chars) is public and finds the
 * token's row; the secret is 256 random bits (base64url). Only SHA-256 of the whole token is stored:
 * with that much entropy a fast hash is as good as a slow one. Tenant API keys (`silo_<12 hex>_…`)
 * never match this pattern.
 */
export const OPERATOR_TOKEN_PATTERN = /^silo_op_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/;

export interface GeneratedOperatorToken {
  token: string;
  prefix: string;
  hash: string;
}

export function generateOperatorToken(): GeneratedOperatorToken {
  const prefix = randomBytes(6).toString('hex');
  const token = `silo_op_${prefix}_${randomBytes(32).toString('base64url')}`;
  return { token, prefix, hash: hashOperatorToken(token) };
}

export function operatorTokenPrefix(token: string): string | null {
  return OPERATOR_TOKEN_PATTERN.exec(token)?.[1] ?? null;
}

export function hashOperatorToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Constant-time comparison of a presented token with a stored hash (both digests are 32 bytes). */
export function operatorTokenMatches(token: string, storedHash: string): boolean {
  const given = createHash('sha256').update(token).digest();
  const stored = Buffer.from(storedHash, 'hex');
  return stored.length === given.length && timingSafeEqual(given, stored);
}

/** How a token is shown in listings and the audit log. */
export const displayPrefix = (prefix: string) => `silo_op_${prefix}`;
