import { createHmac } from 'node:crypto';
import Stripe from 'stripe';
import { checkStripeSignature } from './stripe-signature';

/** checkStripeSignature against the stripe package's own signer and verifier. */
describe('checkStripeSignature', () => {
  const stripe = new Stripe('sk_test_signature_spec');
  const secret = 'whsec_spec_secret_0123456789';
  const now = 1_760_000_000;
  const body = Buffer.from(JSON.stringify({ id: 'evt_1', object: 'event', data: { object: { name: 'Zoë' } } }, null, 2));
  const header = (opts: { payload?: string; secret?: string; timestamp?: number } = {}) =>
    stripe.webhooks.generateTestHeaderString({ payload: opts.payload ?? body.toString('utf8'), secret: opts.secret ?? secret, timestamp: opts.timestamp ?? now });
  const stripeSays = (b: Buffer, h: string, tolerance: number, s = secret) => {
    try {
      stripe.webhooks.constructEvent(b, h, s, tolerance, undefined, now * 1000);
      return true;
    } catch {
      return false;
    }
  };

  it('accepts what Stripe signs, as Stripe does', () => {
    const h = header();
    expect(checkStripeSignature(body, h, secret, 300, now * 1000)).toBe('valid');
    expect(stripeSays(body, h, 300)).toBe(true);
  });

  it('refuses a body changed by one byte, another secret, a signature of another scheme, and a truncated signature', () => {
    const h = header();
    expect(checkStripeSignature(Buffer.concat([body, Buffer.from(' ')]), h, secret, 300, now * 1000)).toBe('no_match');
    expect(checkStripeSignature(body, h, 'whsec_other', 300, now * 1000)).toBe('no_match');
    const v1 = /v1=([0-9a-f]+)/.exec(h)?.[1] as string;
    expect(checkStripeSignature(body, `t=${now},v0=${v1}`, secret, 300, now * 1000)).toBe('malformed');
    expect(checkStripeSignature(body, `t=${now},v1=${v1.slice(0, 63)}`, secret, 300, now * 1000)).toBe('no_match');
    expect(checkStripeSignature(body, `t=${now},v1=${v1.toUpperCase()}`, secret, 300, now * 1000)).toBe('no_match');
    expect(stripeSays(body, `t=${now},v1=${v1.toUpperCase()}`, 300)).toBe(false);
  });

  it('accepts any matching v1 among several (Stripe signs with each active secret during a roll)', () => {
    const good = /v1=([0-9a-f]+)/.exec(header())?.[1] as string;
    const other = /v1=([0-9a-f]+)/.exec(header({ secret: 'whsec_old' }))?.[1] as string;
    const h = `t=${now},v1=${other},v1=${good},v0=deadbeef`;
    expect(checkStripeSignature(body, h, secret, 300, now * 1000)).toBe('valid');
    expect(stripeSays(body, h, 300)).toBe(true);
  });

  it('refuses a valid signature older than the tolerance, only once it matched; 0 means no limit', () => {
    const old = header({ timestamp: now - 301 });
    expect(checkStripeSignature(body, old, secret, 300, now * 1000)).toBe('too_old');
    expect(stripeSays(body, old, 300)).toBe(false);
    expect(checkStripeSignature(body, header({ timestamp: now - 300 }), secret, 300, now * 1000)).toBe('valid');
    expect(checkStripeSignature(body, old, 'whsec_other', 300, now * 1000)).toBe('no_match');
    expect(checkStripeSignature(body, old, secret, 0, now * 1000)).toBe('valid');
  });

  it('signs the bytes as received: `<t>.<body>` with HMAC-SHA256', () => {
    const sig = createHmac('sha256', secret).update(`${now}.`).update(body).digest('hex');
    expect(checkStripeSignature(body, `t=${now},v1=${sig}`, secret, 300, now * 1000)).toBe('valid');
  });

  it.each([
    ['no timestamp', 'v1=abc'],
    ['a non-numeric timestamp', 't=soon,v1=abc'],
    ['no v1 signature', `t=${now}`],
    ['garbage', 'hello'],
  ])('calls a header with %s malformed', (_what, h) => {
    expect(checkStripeSignature(body, h, secret, 300, now * 1000)).toBe('malformed');
  });

  it('treats a blank secret as malformed, never as a key', () => {
    const sig = createHmac('sha256', '').update(`${now}.`).update(body).digest('hex');
    expect(checkStripeSignature(body, `t=${now},v1=${sig}`, ' ', 300, now * 1000)).toBe('malformed');
  });
});
