import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ErrorCode } from '../../common/error-codes';
import { AdminAuthGuard } from '../common/admin-auth.guard';
import { ApiErrors } from '../common/api-docs';
import { Permission } from '../common/permissions';
import { webhookEventNotFound } from './billing.errors';
import { ListWebhookEventsQuery, WebhookEventDetailView, WebhookEventListView, WebhookVerificationView } from './dto/webhook-event.dto';
import { StripeWebhookVerifier } from './stripe-webhook.verifier';
import { WebhookEvent } from './webhook-event.entity';
import { WebhookEventRepository } from './webhook-event.repository';

const view = (e: WebhookEvent) => ({
  id: e.id, type: e.type, created: e.stripeCreatedAt, subscriptionId: e.subscriptionId, tenantId: e.tenantId,
  outcome: e.outcome, source: e.source, receivedAt: e.receivedAt, processedAt: e.processedAt,
});

const EVENT_ID = { name: 'id', description: "Stripe's event id (evt_…)" };

/** Stored Stripe events, to see what billing received and what each one did. */
@ApiTags('billing')
@ApiBearerAuth()
@ApiErrors()
@UseGuards(AdminAuthGuard)
@Controller('v1/webhook-events')
export class WebhookEventsController {
  constructor(private readonly events: WebhookEventRepository, private readonly verifier: StripeWebhookVerifier) {}

  @Get()
  @ApiOperation({ summary: 'Recent Stripe webhook events, newest first (without payloads); filter by subscription, tenant or type' })
  @ApiOkResponse({ type: WebhookEventListView })
  @ApiErrors({ auth: false, validation: true })
  @Permission('billing:read')
  async list(@Query() q: ListWebhookEventsQuery): Promise<WebhookEventListView> {
    const items = await this.events.recent({ limit: q.limit ?? 50, subscriptionId: q.subscription, tenantId: q.tenant, type: q.type });
    return { items: items.map(view) };
  }

  @Get(':id')
  @ApiOperation({ summary: 'One stored event with its payload' })
  @ApiParam(EVENT_ID)
  @ApiOkResponse({ type: WebhookEventDetailView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.NOT_FOUND] })
  @Permission('billing:read')
  async get(@Param('id') id: string): Promise<WebhookEventDetailView> {
    const e = await this.events.findById(id);
    if (!e) throw webhookEventNotFound(id);
    return { ...view(e), payload: e.payload };
  }

  @Get(':id/verification')
  @ApiOperation({ summary: "Re-verifies a stored event: its stored raw body against its stored Stripe-Signature header with the configured webhook secrets (the receipt's signature check, without the timestamp tolerance)" })
  @ApiParam(EVENT_ID)
  @ApiOkResponse({ type: WebhookVerificationView })
  @ApiErrors({ auth: false, notFound: [ErrorCode.NOT_FOUND] })
  @Permission('billing:read')
  async verification(@Param('id') id: string): Promise<WebhookVerificationView> {
    const signed = await this.events.findSigned(id);
    if (!signed) throw webhookEventNotFound(id);
    return { id, ...this.verifier.reverify(signed) };
  }
}
