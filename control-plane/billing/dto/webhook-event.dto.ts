import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, IsUUID, Max, MaxLength, Min } from 'class-validator';
import { ApiDateTime } from '../../common/api-docs';
import { WebhookOutcome, WebhookSource } from '../webhook-event.entity';

export class ListWebhookEventsQuery {
  @ApiPropertyOptional({ default: 50, maximum: 500 }) @IsOptional() @Type(() => Number) @IsInt() @Min(1) @Max(500) limit?: number;
  @ApiPropertyOptional({ example: 'sub_1QAbCdEfGhIjKlMn', description: 'Only events of this Stripe subscription' }) @IsOptional() @IsString() @MaxLength(255) subscription?: string;
  @ApiPropertyOptional({ description: 'Only events applied to this tenant (uuid)' }) @IsOptional() @IsUUID() tenant?: string;
  @ApiPropertyOptional({ example: 'customer.subscription.updated' }) @IsOptional() @IsString() @MaxLength(255) type?: string;
}

/** A stored event as listed (webhook-events.controller.ts's view), without its payload. */
export class WebhookEventView {
  @ApiProperty({ example: 'evt_1QAbCdEfGhIjKlMn', description: "Stripe's event id" }) id!: string;
  @ApiProperty({ example: 'customer.subscription.updated' }) type!: string;
  @ApiDateTime({ description: "The event's `created` (Stripe's time)" }) created!: Date;
  @ApiProperty({ nullable: true, type: String }) subscriptionId!: string | null;
  @ApiProperty({ nullable: true, type: String, format: 'uuid' }) tenantId!: string | null;
  @ApiProperty({ example: WebhookOutcome.Applied, description: `What processing it did: ${Object.values(WebhookOutcome).join(', ')}` }) outcome!: string;
  @ApiProperty({ enum: WebhookSource }) source!: WebhookSource;
  @ApiDateTime() receivedAt!: Date;
  @ApiDateTime({ nullable: true }) processedAt!: Date | null;
}

export class WebhookEventListView {
  @ApiProperty({ type: [WebhookEventView] }) items!: WebhookEventView[];
}

export class WebhookEventDetailView extends WebhookEventView {
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'The event body as stored (jsonb)' }) payload!: unknown;
}

export class WebhookVerificationView {
  @ApiProperty() id!: string;
  @ApiProperty() verified!: boolean;
  @ApiPropertyOptional({ description: 'When verified: which configured secret matched (0 = the first)' }) secretIndex?: number;
  @ApiPropertyOptional({ type: String, format: 'date-time', nullable: true, description: "When verified: the signature header's `t=`" }) signedAt?: Date | null;
  @ApiPropertyOptional({ enum: ['no_raw_body', 'no_matching_signature', 'webhooks_not_configured'], description: 'When not verified: why' }) reason?: string;
}
