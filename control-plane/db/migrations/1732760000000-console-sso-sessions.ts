import { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Console sessions made by single sign-on (issue #18 item 2): kind `sso`, which points at its
 * operator only (there is no token behind it), so disabling the operator ends it on the next request.
 */
export class ConsoleSsoSessions1732760000000 implements MigrationInterface {
  name = 'ConsoleSsoSessions1732760000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE console_sessions DROP CONSTRAINT console_sessions_kind_check, DROP CONSTRAINT console_sessions_owner`);
    await q.query(`
      ALTER TABLE console_sessions
        ADD CONSTRAINT console_sessions_kind_check CHECK (kind IN ('operator','break-glass','sso')),
        ADD CONSTRAINT console_sessions_owner CHECK (
          (kind = 'operator' AND operator_id IS NOT NULL AND token_id IS NOT NULL AND token_prefix IS NOT NULL AND break_glass_fingerprint IS NULL)
          OR (kind = 'sso' AND operator_id IS NOT NULL AND token_id IS NULL AND token_prefix IS NULL AND break_glass_fingerprint IS NULL)
          OR (kind = 'break-glass' AND operator_id IS NULL AND token_id IS NULL AND token_prefix IS NULL AND break_glass_fingerprint IS NOT NULL))`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`DELETE FROM console_sessions WHERE kind = 'sso'`);
    await q.query(`ALTER TABLE console_sessions DROP CONSTRAINT console_sessions_kind_check, DROP CONSTRAINT console_sessions_owner`);
    await q.query(`
      ALTER TABLE console_sessions
        ADD CONSTRAINT console_sessions_kind_check CHECK (kind IN ('operator','break-glass')),
        ADD CONSTRAINT console_sessions_owner CHECK (
          (kind = 'operator' AND operator_id IS NOT NULL AND token_id IS NOT NULL AND token_prefix IS NOT NULL AND break_glass_fingerprint IS NULL)
          OR (kind = 'break-glass' AND operator_id IS NULL AND token_id IS NULL AND token_prefix IS NULL AND break_glass_fingerprint IS NOT NULL))`);
  }
}
