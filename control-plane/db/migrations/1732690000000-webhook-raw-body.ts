import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Stripe events keep the exact bytes Stripe signed and the `Stripe-Signature` header beside the jsonb
 * copy (issue #15): a body with `\u0000` could not be stored as jsonb at all, and a stored event could
 * not be re-verified. Older rows have neither (null). Events stored with no subscription id are
 * indexed by the subscription their object names (invoices of current API versions name it only under
 * `parent.subscription_details`), as stripe-event.ts `subscriptionOf` does for new events.
 */
export class WebhookRawBody1732690000000 implements MigrationInterface {
  name = 'WebhookRawBody1732690000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_events ADD COLUMN raw_body bytea, ADD COLUMN signature text`);
    // A reference is an id string or an expanded object with an id; the first one found wins, in subscriptionOf's order.
    await q.query(`
      UPDATE webhook_events w SET subscription_id = found.sub
        FROM (
          SELECT e.id, (
                   SELECT CASE jsonb_typeof(c) WHEN 'string' THEN c #>> '{}' ELSE c ->> 'id' END
                     FROM unnest(CASE WHEN o ->> 'object' = 'subscription' THEN ARRAY[o -> 'id'] ELSE ARRAY[
                            o #> '{parent,subscription_details,subscription}', o -> 'subscription',
                            o #> '{lines,data,0,parent,subscription_item_details,subscription}', o #> '{lines,data,0,subscription}'] END)
                          WITH ORDINALITY AS x(c, n)
                    WHERE (jsonb_typeof(c) = 'string' AND c #>> '{}' <> '') OR (jsonb_typeof(c) = 'object' AND jsonb_typeof(c -> 'id') = 'string')
                    ORDER BY n LIMIT 1) AS sub
            FROM webhook_events e CROSS JOIN LATERAL (SELECT e.payload #> '{data,object}' AS o) AS obj
           WHERE e.subscription_id IS NULL) AS found
       WHERE w.id = found.id AND found.sub IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE webhook_events DROP COLUMN IF EXISTS raw_body, DROP COLUMN IF EXISTS signature`);
  }
}
