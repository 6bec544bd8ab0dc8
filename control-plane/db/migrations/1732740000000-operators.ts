import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Named operators and their personal API tokens (issue #18), and who acted on every audit row.
 * Roles are not checked here: control-plane/common/permissions.ts is their one declaration, and a
 * role it does not know holds no permission. Tokens keep only a SHA-256 of the token (256 random
 * bits). Rows from before this migration were all written with ADMIN_TOKEN (admin cause), by a
 * Stripe event (billing) or by the worker (system), and are attributed so.
 */
export class Operators1732740000000 implements MigrationInterface {
  name = 'Operators1732740000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE operators (
        id uuid PRIMARY KEY,
        email text NOT NULL,
        name text NOT NULL,
        role text NOT NULL,
        disabled_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE UNIQUE INDEX operators_email_key ON operators (lower(email))`);
    await q.query(`
      CREATE TABLE operator_tokens (
        id uuid PRIMARY KEY,
        operator_id uuid NOT NULL REFERENCES operators(id),
        name text NOT NULL,
        prefix text NOT NULL UNIQUE,
        hash text NOT NULL,
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz,
        last_used_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now()
      )`);
    await q.query(`CREATE INDEX operator_tokens_operator_idx ON operator_tokens (operator_id, created_at)`);

    await q.query(`
      ALTER TABLE audit_log
        ADD COLUMN actor_kind text,
        ADD COLUMN actor_operator_id uuid REFERENCES operators(id),
        ADD COLUMN actor_email text,
        ADD COLUMN actor_token_id uuid REFERENCES operator_tokens(id),
        ADD COLUMN actor_token_prefix text`);
    await q.query(`UPDATE audit_log SET actor_kind = CASE cause_type WHEN 'admin' THEN 'break-glass' WHEN 'stripe_event' THEN 'billing' ELSE 'system' END`);
    await q.query(`ALTER TABLE audit_log ALTER COLUMN actor_kind SET NOT NULL`);
    await q.query(`ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind CHECK (actor_kind IN ('operator','break-glass','billing','system'))`);
    await q.query(`ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_operator CHECK ((actor_kind = 'operator') = (actor_operator_id IS NOT NULL))`);
    await q.query(`CREATE INDEX audit_log_actor_operator_idx ON audit_log (actor_operator_id, id) WHERE actor_operator_id IS NOT NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX IF EXISTS audit_log_actor_operator_idx`);
    await q.query(`ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_actor_operator, DROP CONSTRAINT IF EXISTS audit_log_actor_kind`);
    await q.query(`ALTER TABLE audit_log DROP COLUMN IF EXISTS actor_token_prefix, DROP COLUMN IF EXISTS actor_token_id, DROP COLUMN IF EXISTS actor_email, DROP COLUMN IF EXISTS actor_operator_id, DROP COLUMN IF EXISTS actor_kind`);
    await q.query(`DROP TABLE IF EXISTS operator_tokens`);
    await q.query(`DROP TABLE IF EXISTS operators`);
  }
}
