import { Module } from '@nestjs/common';
import { TenantsModule } from '../tenants/tenants.module';
import { BillingReconciler } from './billing-reconciler';
import { BillingService } from './billing.service';
import { StripeWebhookController } from './stripe-webhook.controller';
import { StripeWebhookVerifier } from './stripe-webhook.verifier';
import { WebhookEventRepository } from './webhook-event.repository';
import { WebhookEventsController } from './webhook-events.controller';

/** Stripe webhooks drive the tenant lifecycle; the admin API shows what was received; the reconciler compares with Stripe's API. */
@Module({
  imports: [TenantsModule],
  controllers: [StripeWebhookController, WebhookEventsController],
  providers: [StripeWebhookVerifier, BillingService, WebhookEventRepository, BillingReconciler],
  exports: [BillingReconciler],
})
export class BillingModule {}
