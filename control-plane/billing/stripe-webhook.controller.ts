import { Controller, Headers, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import type { Logger } from '../../common/logger';
import { BillingService, WebhookReport } from './billing.service';
import { StripeWebhookVerifier } from './stripe-webhook.verifier';

/**
 * `POST /webhooks/stripe`: no admin auth, the signature is the authentication. `req.body` is the raw
 * Buffer (http-app.ts mounts express.raw on this path). Documented in docs/billing.md, not in Swagger.
 *
 * Every delivery costs one log line: what billing did (`event: "stripe.webhook"`, id, type,
 * subscription, tenant, outcome) goes on the request's own line (pino-http's `req.log`). The 200 is
 * written directly (no ETag, which means nothing on a POST answer); errors still go through the
 * exception filter.
 */
@ApiExcludeController()
@Controller('webhooks')
export class StripeWebhookController {
  constructor(private readonly verifier: StripeWebhookVerifier, private readonly billing: BillingService) {}

  @Post('stripe')
  async receive(@Req() req: Request & { log?: Logger }, @Res() res: Response, @Headers('stripe-signature') signature: string | undefined): Promise<void> {
    const { json, raw } = this.verifier.verify(req.body, signature);
    const requestLog = req.log;
    const report: WebhookReport | undefined = requestLog ? (fields) => requestLog.setBindings(fields) : undefined;
    const result = await this.billing.receive(json, raw, report);
    const body = JSON.stringify({ received: true, duplicate: result.duplicate, ...(result.outcome ? { outcome: result.outcome } : {}) });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}
