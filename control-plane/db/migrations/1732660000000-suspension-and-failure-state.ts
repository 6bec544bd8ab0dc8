import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Who suspended a tenant and what failed are data, not prefixes of a free-text reason (issue #14):
 * an admin suspension with the reason "billing: fraud" was lifted by the next paid invoice.
 * Existing rows are classified from the audit log's cause of the last suspension (admin, a Stripe
 * event, or the system's grace-period sweep), falling back to the old reason prefixes.
 */
export class SuspensionAndFailureState1732660000000 implements MigrationInterface {
  name = 'SuspensionAndFailureState1732660000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      ALTER TABLE tenants
        ADD COLUMN suspended_by text CHECK (suspended_by IN ('billing','admin','system')),
        ADD COLUMN suspend_cause text CHECK (suspend_cause IN ('subscription_paused','subscription_canceled','payment_past_due','payment_unpaid','admin','database_missing')),
        ADD COLUMN failed_during text CHECK (failed_during IN ('provisioning','offboarding'))`);
    await q.query(`
      WITH last AS (
        SELECT DISTINCT ON (a.tenant_id) a.tenant_id, a.cause_type, a.cause_id FROM audit_log a
         WHERE a.action = 'status_changed' AND a.to_status = 'suspended' ORDER BY a.tenant_id, a.created_at DESC)
      UPDATE tenants t SET
        suspend_cause = CASE
          WHEN t.suspend_reason = 'billing: subscription paused' THEN 'subscription_paused'
          WHEN t.suspend_reason = 'billing: subscription canceled' THEN 'subscription_canceled'
          WHEN t.suspend_reason ~ '^(billing: )?payment past_due$' THEN 'payment_past_due'
          WHEN t.suspend_reason ~ '^(billing: )?payment unpaid$' THEN 'payment_unpaid'
          WHEN t.failure_reason LIKE 'reconciler: %' THEN 'database_missing'
          ELSE 'admin' END,
        suspended_by = CASE
          WHEN last.cause_type = 'admin' THEN 'admin'
          WHEN last.cause_type = 'stripe_event' OR (last.cause_type = 'system' AND last.cause_id = 'grace-period') THEN 'billing'
          WHEN last.cause_type = 'system' THEN 'system'
          WHEN t.suspend_reason LIKE 'billing:%' OR t.suspend_reason ~ '^payment (past_due|unpaid)$' THEN 'billing'
          ELSE 'admin' END
        FROM tenants t2 LEFT JOIN last ON last.tenant_id = t2.id
       WHERE t2.id = t.id AND t.status = 'suspended'`);
    // An admin suspension whose reason merely looked like billing's keeps the admin cause.
    await q.query(`UPDATE tenants SET suspend_cause = 'admin' WHERE suspended_by = 'admin'`);
    await q.query(`UPDATE tenants SET failed_during = CASE WHEN failure_reason LIKE 'offboarding:%' THEN 'offboarding' ELSE 'provisioning' END WHERE status = 'failed'`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE tenants DROP COLUMN IF EXISTS suspended_by, DROP COLUMN IF EXISTS suspend_cause, DROP COLUMN IF EXISTS failed_during`);
  }
}
