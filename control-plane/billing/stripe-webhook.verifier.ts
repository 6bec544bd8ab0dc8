import { Inject, Injectable } from '@nestjs/common';
import type { ControlPlaneConfig } from '../config';
import { CLOCK, CONFIG } from '../common/tokens';
import { webhookPayloadInvalid, webhookSignatureInvalid, webhooksNotConfigured } from './billing.errors';
import { jsonbDocument } from './jsonb-document';
import { checkStripeSignature } from './stripe-signature';
import type { WebhookSource } from './webhook-event.entity';

/** A verified delivery as it is stored (webhook_events.raw_body, signature, payload). */
export interface SignedPayload {
  /** The exact bytes Stripe signed. */
  body: Buffer;
  /** The `Stripe-Signature` header they came with (`t=…,v1=…`): with the body, enough to re-verify. */
  signature: string;
  /** The body as JSON text jsonb accepts (see jsonbDocument): the queryable copy. */
  document: string;
  /** Who made it (absent: a delivery Stripe signed). The billing reconciler's snapshots carry no signature (`''`, stored as null). */
  source?: WebhookSource;
}

export interface VerifiedDelivery {
  /** The signed body, parsed, with jsonb's replacements (not yet validated as an event: see parseStripeEvent). */
  json: unknown;
  raw: SignedPayload;
}

export type Reverification =
  | { verified: true; /** Which configured secret (0 = the first) matched. */ secretIndex: number; /** The header's `t=`. */ signedAt: Date | null }
  | { verified: false; reason: 'no_raw_body' | 'no_matching_signature' | 'webhooks_not_configured' };

/**
 * Checks `Stripe-Signature` against the raw body (checkStripeSignature: Stripe's scheme, node:crypto
 * HMAC over the received bytes, constant-time comparison, timestamp tolerance), trying each configured
 * secret in turn so a secret can be rolled without downtime. Parses the body once, after a match.
 */
@Injectable()
export class StripeWebhookVerifier {
  private readonly secrets: readonly string[];
  private readonly tolerance: number;

  constructor(@Inject(CONFIG) config: ControlPlaneConfig, @Inject(CLOCK) private readonly now: () => Date) {
    this.secrets = config.STRIPE_WEBHOOK_SECRET;
    this.tolerance = config.STRIPE_WEBHOOK_TOLERANCE_SECONDS;
  }

  verify(body: unknown, header: string | string[] | undefined): VerifiedDelivery {
    if (this.secrets.length === 0) throw webhooksNotConfigured();
    const signature = Array.isArray(header) ? header.join(',') : header;
    if (!signature) throw webhookSignatureInvalid('missing_header');
    if (!Buffer.isBuffer(body) || body.length === 0) throw webhookSignatureInvalid('empty_body');

    const receivedAt = this.now().getTime();
    for (const secret of this.secrets) {
      const check = checkStripeSignature(body, signature, secret, this.tolerance, receivedAt);
      // The timestamp is only checked once a signature matched this secret: no other secret will do better.
      if (check === 'too_old') throw webhookSignatureInvalid('timestamp_outside_tolerance');
      if (check !== 'valid') continue;
      const text = body.toString('utf8');
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw webhookPayloadInvalid('body is not valid JSON');
      }
      const doc = jsonbDocument(text, parsed);
      return { json: doc.json, raw: { body, signature, document: doc.text } };
    }
    throw webhookSignatureInvalid('no_matching_signature');
  }

  /**
   * Re-checks a stored body against its stored header with the configured secrets, as at receipt,
   * without the timestamp tolerance (that guards against replays at receipt, and a stored event is old
   * by nature). A secret removed since the event arrived no longer verifies it.
   */
  reverify(stored: { body: Buffer | null; signature: string | null }): Reverification {
    if (this.secrets.length === 0) return { verified: false, reason: 'webhooks_not_configured' };
    if (!stored.body || !stored.signature) return { verified: false, reason: 'no_raw_body' };
    for (const [secretIndex, secret] of this.secrets.entries()) {
      if (checkStripeSignature(stored.body, stored.signature, secret, 0, 0) !== 'valid') continue;
      const t = /(?:^|,)\s*t=(\d+)/.exec(stored.signature);
      return { verified: true, secretIndex, signedAt: t ? new Date(Number(t[1]) * 1000) : null };
    }
    return { verified: false, reason: 'no_matching_signature' };
  }
}
