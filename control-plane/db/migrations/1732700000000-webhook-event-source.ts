import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Who made a stored event: Stripe (a signed webhook delivery) or the billing reconciler (a snapshot of
 * the subscription read from Stripe's API and replayed through the webhook rules, issue #15 item 4).
 * Every existing row came from Stripe.
 */
export class WebhookEventSource1732700000000 implements MigrationInterface {
  name = 'WebhookEventSource1732700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_events ADD COLUMN source text NOT NULL DEFAULT 'stripe' CONSTRAINT webhook_events_source_check CHECK (source IN ('stripe', 'reconciler'))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_events DROP COLUMN IF EXISTS source`);
  }
}
