import { createHmac, timingSafeEqual } from 'node:crypto';

/** What checking one `Stripe-Signature` header against one secret found. */
export type SignatureCheck = 'valid' | 'no_match' | 'too_old' | 'malformed';

const SCHEME = 'v1';
const HEX_SHA256_LENGTH = 64;

/**
 * Stripe's webhook signature scheme, as the stripe package's `constructEvent` checks it, on the raw
 * bytes: the header is `t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]` (other schemes ignored), the
 * signed content is `<t>.<body>`, and any `v1` that equals the expected HMAC (compared in constant
 * time) passes. Only then is the age checked: older than `toleranceSeconds` (0: no limit) is
 * `too_old`, like Stripe (a timestamp in the future is not refused). Pure; `nowMs` is passed in.
 *
 * The HMAC covers the bytes as received, where Stripe's library first decodes them as UTF-8 and
 * hashes the re-encoded text: the same for any body that is valid UTF-8 (all that Stripe sends).
 */
export function checkStripeSignature(body: Buffer, header: string, secret: string, toleranceSeconds: number, nowMs: number): SignatureCheck {
  let timestamp = -1;
  const signatures: string[] = [];
  for (const item of header.split(',')) {
    const kv = item.split('=');
    if (kv[0] === 't') timestamp = /^\d+$/.test(kv[1] ?? '') ? Number(kv[1]) : -1;
    else if (kv[0] === SCHEME && kv[1] !== undefined) signatures.push(kv[1]);
  }
  if (timestamp < 0 || !signatures.length || !secret.trim()) return 'malformed';
  const expected = Buffer.from(createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex'));
  let found = false;
  for (const s of signatures) {
    const given = Buffer.from(s);
    // Every candidate is compared, a match or not: the time taken says nothing about which bytes matched.
    if (given.length === HEX_SHA256_LENGTH && timingSafeEqual(given, expected)) found = true;
  }
  if (!found) return 'no_match';
  if (toleranceSeconds > 0 && Math.floor(nowMs / 1000) - timestamp > toleranceSeconds) return 'too_old';
  return 'valid';
}
