import { Inject, Injectable } from '@nestjs/common';
import Stripe from 'stripe';
import type { ControlPlaneConfig } from '../config';
import { CLOCK, CONFIG } from '../common/tokens';
import { webhookPayloadInvalid, webhookSignatureInvalid, webhooksNotConfigured } from './billing.errors';

export interface VerifiedDelivery {
  /** The signed body, parsed (not yet validated as an event: see parseStripeEvent). */
  json: unknown;
  /** The exact bytes Stripe signed, as text (stored as the event payload). */
  raw: string;
}

/**
 * Checks `Stripe-Signature` against the raw body with the stripe package, trying each configured
 * secret in turn so a secret can be rolled without downtime. No network: the client only signs.
 */
@Injectable()
export class StripeWebhookVerifier {
  // A placeholder key: the webhooks helpers never call the API.
  private readonly stripe = new Stripe('sk_test_silo_webhook_verification_only');
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
      let parsed: unknown;
      try {
        parsed = this.stripe.webhooks.constructEvent(body, signature, secret, this.tolerance, undefined, receivedAt);
      } catch (err) {
        if (!(err instanceof Stripe.errors.StripeSignatureVerificationError)) throw webhookPayloadInvalid('body is not valid JSON'); // signature matched, parsing failed
        // The timestamp is only checked once a signature matched this secret: no other secret will do better.
        if (/tolerance/i.test(err.message)) throw webhookSignatureInvalid('timestamp_outside_tolerance');
        continue;
      }
      return { json: parsed, raw: body.toString('utf8') };
    }
    throw webhookSignatureInvalid('no_matching_signature');
  }
}
