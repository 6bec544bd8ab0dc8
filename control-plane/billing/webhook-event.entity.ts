import { Column, Entity, PrimaryColumn } from 'typeorm';

/** What processing a stored event did. */
export enum WebhookOutcome {
  /** Changed the tenant (created it, moved its status, tier or billing state). */
  Applied = 'applied',
  /** Valid for its subscription but nothing to change (e.g. the status it reports is already applied). */
  Unchanged = 'unchanged',
  /** Older (by `created`) than the newest event applied to the subscription; replaying the history with it changed nothing. */
  Stale = 'stale',
  /** The subscription was already canceled: cancellation is final. */
  Final = 'final',
  /** A type, mode or shape that has no effect (recorded and acknowledged). */
  Ignored = 'ignored',
}

/** Who made a stored event. */
export enum WebhookSource {
  /** A webhook delivery Stripe signed. */
  Stripe = 'stripe',
  /** The billing reconciler: the subscription as Stripe's API returned it, replayed through the webhook rules (no signature). */
  Reconciler = 'reconciler',
}

@Entity('webhook_events')
export class WebhookEvent {
  /** Stripe's event id (evt_...): the primary key is what makes delivery idempotent. */
  @PrimaryColumn('text') id!: string;
  @Column('text') type!: string;
  /** The body as jsonb, NUL and unpaired surrogates replaced by U+FFFD (jsonb-document.ts): what billing reads and admins query. */
  @Column('jsonb') payload!: unknown;
  /** The exact bytes Stripe signed; null for events stored before migration 1732690000000. */
  @Column('bytea', { name: 'raw_body', nullable: true, select: false }) rawBody!: Buffer | null;
  /** The `Stripe-Signature` header the body came with (an HMAC, not a secret); null like raw_body. */
  @Column('text', { nullable: true, select: false }) signature!: string | null;
  @Column('timestamptz', { name: 'stripe_created_at' }) stripeCreatedAt!: Date;
  @Column('text', { name: 'subscription_id', nullable: true }) subscriptionId!: string | null;
  @Column('uuid', { name: 'tenant_id', nullable: true }) tenantId!: string | null;
  @Column('text') outcome!: string;
  @Column('text', { default: WebhookSource.Stripe }) source!: WebhookSource;
  @Column('timestamptz', { name: 'received_at', default: () => 'now()' }) receivedAt!: Date;
  @Column('timestamptz', { name: 'processed_at', nullable: true }) processedAt!: Date | null;
}
