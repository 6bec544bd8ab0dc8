import { Controller, Headers, HttpCode, Post, Req } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request } from 'express';
import { BillingService } from './billing.service';
import { StripeWebhookVerifier } from './stripe-webhook.verifier';

/**
 * `POST /webhooks/stripe`: no admin auth, the signature is the authentication. `req.body` is the raw
 * Buffer (http-app.ts mounts express.raw on this path). Documented in docs/billing.md, not in Swagger.
 */
@ApiExcludeController()
@Controller('webhooks')
export class StripeWebhookController {
  constructor(private readonly verifier: StripeWebhookVerifier, private readonly billing: BillingService) {}

  @Post('stripe')
  @HttpCode(200)
  async receive(@Req() req: Request, @Headers('stripe-signature') signature: string | undefined) {
    const { json, raw } = this.verifier.verify(req.body, signature);
    const result = await this.billing.receive(json, raw);
    return { received: true, duplicate: result.duplicate, ...(result.outcome ? { outcome: result.outcome } : {}) };
  }
}
